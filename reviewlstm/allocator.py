"""Freed memory kept in the process instead of handed back to the kernel after every step:
glibc's mallopt thresholds raised, in place of its defaults (REVIEWLSTM_MALLOC=default keeps them).

glibc hands each freed block over 32 MB back to the kernel, and a training step at batch 5000
frees and re-allocates many such blocks, so the kernel spends the step zeroing fresh pages.
Keeping them computes the same numbers, bit for bit, faster (bench/RESULTS.md, "Allocator").
Training also asks for one arena, as each thread's arena keeps its own freed memory; in one arena
an epoch's peak still varies from run to run (bench/RESULTS.md, "10x data").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_LARGEST = 2**31 - 1  # mallopt takes an int
OPT_OUT = "REVIEWLSTM_MALLOC"  # "default": leave glibc's settings alone (for benchmarks)
_done = False


def keep_freed_memory(one_arena: bool = False) -> bool:
    """Raise glibc's mmap and trim thresholds once per process (and with one_arena, let every
    thread allocate from one arena); False where it does not apply."""
    global _done
    if os.environ.get(OPT_OUT) == "default":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    if one_arena:
        mallopt(_M_ARENA_MAX, 1)
    if not _done:
        _done = bool(mallopt(_M_MMAP_THRESHOLD, _LARGEST)) and bool(mallopt(_M_TRIM_THRESHOLD, _LARGEST))
    return _done
