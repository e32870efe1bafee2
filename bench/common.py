"""Helpers that several benchmark scripts share; not a script to run by itself.

A script run as `python bench/NAME.py` has bench/ on sys.path, so it imports these with
`from common import ...`. It imports only the standard library (and polars lazily, in
`repeated`), so it adds no heavy import to a script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
REAL = ROOT.parent / "shared" / "data" / "womens_clothing_reviews.csv"  # the real reviews


def say(*a) -> None:
    """print, flushed at once (a benchmark's progress, seen while it runs)."""
    print(*a, flush=True)


def load() -> str:
    """The load averages over 1, 5 and 15 minutes, as text."""
    return "%.2f %.2f %.2f" % os.getloadavg()


def environ_without(*prefixes: str) -> dict[str, str]:
    """This process's environment less every variable whose name starts with one of prefixes
    (a child's environment: "PREFECT_" for a Prefect set-up of its own, "MALLOC_" for glibc's
    default allocator)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def cli(*args: str, what: str | None = None) -> str:
    """`python -m flows.cli ARGS` in a new process from the repository: its stdout. On failure,
    exits with what failed (default: the arguments) and the end of its stderr."""
    proc = subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{what or ' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def commit() -> str:
    """The short hash of the checkout's HEAD ("" outside git)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def timed_call(fn, *args) -> float:
    """Wall seconds of one call fn(*args)."""
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def repeated(table, n: int):
    """The first n rows of a polars table repeated end to end as often as it takes."""
    import polars as pl

    return pl.concat([table] * (n // len(table) + 1)).head(n)
