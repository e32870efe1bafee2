"""The cores this process may use: a container's or taskset's limit, not the machine's count,
which is what thread counts and parallel training must be sized to."""

from __future__ import annotations

import os


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
