"""Stage outputs on disk: one content-addressed folder per stage and key, written atomically.

A stage writes into a hidden temporary folder; files are fsynced and the folder is renamed into
place only when everything is written, so a crash never leaves an output a later run would
trust. Each folder holds `record.json`: the small record Prefect persists, including a digest of
every other file, so an output that was deleted, truncated or edited is detected and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np
import polars as pl

from reviewlstm.fingerprint import dir_digest
from reviewlstm.layers import LAYERS

RECORD = "record.json"
# Rows per batch of a streamed stage: at polars' default, several batches of token lists and ids
# are in flight at once (bench/RESULTS.md, "10x data").
STREAM_ROWS = 2_000


Record = dict[str, Any]  # {"stage", "key", "path", "digest", "figures"}: JSON, small


def stage_dir(data_dir: str | Path, stage: str, key: str) -> Path:
    return Path(data_dir) / LAYERS[stage] / key


def file_of(record: Record, name: str) -> Path:
    return Path(record["path"]) / name


def read_record(folder: Path) -> Record | None:
    """The record of an output folder, its path the folder itself: a copied or moved data folder
    reads and verifies its own outputs (record.json holds the path inside the data folder)."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return {**record, "path": str(Path(folder).resolve())} if isinstance(record, dict) else None


def verify(record: Record) -> bool:
    """True when the output folder still holds exactly what the record describes."""
    folder = Path(record["path"])
    return folder.is_dir() and dir_digest(folder, skip=[RECORD]) == record["digest"]


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk (a folder: so a rename in it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    for path in [*root.rglob("*"), root]:
        fsync_path(path)


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write `path` all or nothing: a temporary file beside it, fsynced, renamed over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes it 0600: the file gets the mode it had, or what the umask gives a new one
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def _umask() -> int:
    try:  # read, not set: setting it to read it would race other threads' file creation
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_with_leftovers(path: str | Path) -> None:
    """Delete a file and the temporary files of atomic_file writes to it that were cut short."""
    path = Path(path)
    for leftover in [path, *path.parent.glob(f".{path.name}.*.tmp")]:
        leftover.unlink(missing_ok=True)


class Output:
    """The temporary folder a stage writes into; `figures` travel in the record."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.figures: dict[str, Any] = {}
        self.record: Record | None = None  # set once the folder is in place

    def path(self, name: str) -> Path:
        return self.tmp / name

    def parquet(self, name: str, table: pl.DataFrame | pl.LazyFrame) -> None:
        """A table, or a lazy one streamed to the file in bounded memory (the same bytes)."""
        if isinstance(table, pl.LazyFrame):
            with pl.Config(streaming_chunk_size=STREAM_ROWS):
                table.sink_parquet(self.path(name), statistics=False)
        else:
            table.write_parquet(self.path(name), statistics=False)

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A folder for working files that are not part of the output: gone before it is published."""
        folder = self.tmp / ".scratch"
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def npy(self, name: str, array: np.ndarray) -> None:
        np.save(self.path(name), array)

    def json(self, name: str, obj: Any) -> None:
        self.path(name).write_text(json.dumps(obj, indent=1, sort_keys=True))


# Temporary folders are named .<key>.<host>-<pid>.<random>: a later run can tell one whose
# writer is gone (killed mid-write) from one still being written, and remove only the former.
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_leftovers(layer_dir: Path, key: str) -> list[Path]:
    """Remove what killed writers of `key` left in its layer: temporary folders of processes of
    this host that no longer run, and damaged outputs moved aside. Never read by any run anyway."""
    removed = []
    for path in layer_dir.glob(f".{key}.*"):
        owner = path.name[len(key) + 2 :].split(".", 1)[0]
        host, _, pid = owner.partition("-")
        stale = owner.startswith("stale-") or (host == HOST and pid.isdigit() and not alive(int(pid)))
        if stale and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def temp_dir(kind: str) -> Path:
    """A temporary folder of this process, named so that sweep_temp can tell when its owner is gone."""
    return Path(tempfile.mkdtemp(prefix=f"reviewlstm-{kind}-{os.getpid()}-"))


def sweep_temp() -> list[Path]:
    """Remove the temporary folders of this host's reviewlstm processes that no longer run (a
    command SIGKILLed mid-run cannot remove its own)."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob("reviewlstm-*-*-*"):
        pid = path.name.split("-")[2]
        if path.is_dir() and pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextmanager
def stage_output(data_dir: str | Path, stage: str, key: str) -> Iterator[Output]:
    """Yield an Output to fill; on success it becomes `<layer>/<key>/` with its record."""
    root = Path(data_dir).resolve()
    final = stage_dir(root, stage, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(final.parent, key)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.{HOST}-{os.getpid()}.", dir=final.parent))
    out = Output(tmp)
    try:
        yield out
        record = {"stage": stage, "key": key, "path": final.relative_to(root).as_posix(), "digest": dir_digest(tmp),
                  "figures": out.figures}
        out.json(RECORD, record)
        fsync_tree(tmp)
        out.record = _publish(tmp, final, {**record, "path": str(final)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, final: Path, record: Record) -> Record:
    """Rename tmp to final. A valid folder already there (a concurrent run's) is kept as is."""
    existing = read_record(final) if final.exists() else None
    if existing is not None and verify(existing):
        return existing
    if final.exists():  # stale or damaged: move aside first, a directory cannot be renamed over
        stale = final.with_name(f".{final.name}.stale-{uuid.uuid4().hex[:8]}")
        os.rename(final, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(tmp, final)
    except OSError:  # a concurrent run published between the check above and this rename
        existing = read_record(final)
        if existing is not None and verify(existing):
            return existing
        raise
    fsync_path(final.parent)
    return record
