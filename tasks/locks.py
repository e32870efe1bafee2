"""Stage locks that die with their holder: Prefect's file-system lock manager, made crash-safe.

Stage tasks run with Prefect's SERIALIZABLE cache isolation: a run that finds another run
computing the same stage (same cache key) waits for it and then reuses its result, so two runs
started together compute each stage once. Prefect's FileSystemLockManager marks a lock by a
file's existence, without an expiry (the task engine sets none); a run killed while it holds
one (SIGKILL, power loss, OOM killer) leaves that file behind, and every later run of that stage
then waits forever. Here the lock is the kernel's `flock` on that file instead: it is released
when its holder's process ends, however it ends. The files live in `<PREFECT_HOME>/locks/`
(read when a lock is taken, so a changed PREFECT_HOME is honoured), beside the result records
they guard. flock works between processes of one machine; on a network file system it depends
on the server (NFSv4 supports it).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Optional

import anyio
import anyio.to_thread
from prefect.locking.filesystem import FileSystemLockManager

try:
    import fcntl
except ImportError:  # Windows: no flock; Prefect's own lock manager is used instead (see `stage_locks`)
    fcntl = None  # type: ignore[assignment]

POLL = 0.1  # seconds between attempts while another process holds a lock


class ProcessLockManager(FileSystemLockManager):
    """A FileSystemLockManager whose locks are flocks: never left behind by a dead process."""

    def __init__(self, lock_files_directory: Path | None = None) -> None:
        # no super().__init__: the directory is resolved when used, not at import
        self._directory = lock_files_directory
        self._locks: dict[str, dict[str, Any]] = {}  # key -> {"holder", "fd", "path"}, held here

    @property
    def lock_files_directory(self) -> Path:  # type: ignore[override]
        if self._directory is not None:
            return Path(self._directory).expanduser().resolve()
        from prefect.settings import get_current_settings

        return (Path(get_current_settings().home) / "locks").expanduser().resolve()

    @lock_files_directory.setter
    def lock_files_directory(self, value: Path) -> None:
        self._directory = value

    # One registry of held locks per process: copies share it (a task's options are copied).
    def __copy__(self) -> "ProcessLockManager":
        return self

    def __deepcopy__(self, memo: dict) -> "ProcessLockManager":
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {"_directory": self._directory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._directory, self._locks = state["_directory"], {}

    def _path(self, key: str) -> Path:
        return self.lock_files_directory / f"{key}.lock"

    def acquire_lock(self, key: str, holder: str, acquire_timeout: Optional[float] = None,
                     hold_timeout: Optional[float] = None) -> bool:
        """Take the lock, waiting up to acquire_timeout seconds (None: as long as it takes).

        hold_timeout is not needed: a lock lasts until it is released or its process ends.
        """
        if self.is_lock_holder(key, holder):
            return True
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(POLL)
                continue
            # A releaser unlinks the file before it unlocks: if the file we locked is no longer
            # the one at `path`, another process may lock that one too; try again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)  # who holds it, for people looking at the file
            os.write(fd, json.dumps({"holder": holder, "pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.time()}).encode())
            self._locks[key] = {"holder": holder, "fd": fd, "path": path, "expiration": None}
            return True

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: Optional[float] = None,
                            hold_timeout: Optional[float] = None) -> bool:
        return await anyio.to_thread.run_sync(self.acquire_lock, key, holder, acquire_timeout, hold_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        info = self._locks.get(key)
        if info is None:
            raise ValueError(f"No lock for transaction with key {key}")
        if info["holder"] != holder:
            raise ValueError(f"No lock held by {holder} for transaction with key {key}")
        del self._locks[key]
        try:
            Path(info["path"]).unlink(missing_ok=True)  # first unlink, then unlock: see acquire_lock
        finally:
            os.close(info["fd"])

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        if key in self._locks:
            return True
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False  # nobody holds it (a file left by a dead process does not count)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def is_lock_holder(self, key: str, holder: str) -> bool:
        info = self._locks.get(key)
        return info is not None and info["holder"] == holder

    def wait_for_lock(self, key: str, timeout: Optional[float] = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL)
        return True

    async def await_for_lock(self, key: str, timeout: Optional[float] = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await anyio.sleep(POLL)
        return True


def stage_locks() -> FileSystemLockManager:
    """The lock manager of every stage task: crash-safe where flock exists, Prefect's elsewhere."""
    if fcntl is None:
        from prefect.settings import get_current_settings

        return FileSystemLockManager(lock_files_directory=Path(get_current_settings().home) / "locks")
    return ProcessLockManager()


LOCKS = stage_locks()
