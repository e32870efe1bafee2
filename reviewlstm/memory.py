"""Keep freed memory in the process instead of handing it back to the kernel after every step.

glibc returns each freed block over 32 MB straight to the kernel (and trims the heap top), and a
training step of the study's models at batch 5000 frees and re-allocates about 1.6 GB of such
blocks: the kernel then spends the step faulting in and zeroing fresh pages (43% of a step's CPU
time was system time). Raising the two thresholds keeps those blocks for reuse: a step takes
about half the wall time, computes the same numbers bit for bit, and the process's resident
memory stays at its peak instead of shrinking between steps (bench/RESULTS.md, "Allocator").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_LARGEST = 2**31 - 1  # mallopt takes an int
OPT_OUT = "REVIEWLSTM_MALLOC"  # "default": leave glibc's settings alone (for benchmarks)
_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where it does not apply."""
    global _done
    if _done or os.environ.get(OPT_OUT) == "default":
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _LARGEST)) and bool(mallopt(_M_TRIM_THRESHOLD, _LARGEST))
    return _done
