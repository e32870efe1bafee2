"""Faults of the machine, not of the input: a data folder that cannot be written, a full disk,
a Prefect API that does not answer. Each: one line naming the cause, a non-zero exit, no
traceback, and nothing half-written; the next run, once the fault is gone, completes."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SAMPLE, write_reviews
from reliability_helpers import (PY, ROOT, assert_all_published_intact, assert_one_line_error, cli, cli_env,
                                 leftovers, published, tiny_config)


@pytest.fixture
def inputs(tmp_path):
    return write_reviews(tmp_path / "reviews.csv", SAMPLE * 3), tiny_config(tmp_path / "tiny.json", epochs=2)


def run_args(raw: Path, config: Path, data: Path, until: str = "train") -> list[str]:
    return ["run", "--raw", str(raw), "--data-dir", str(data), "--config", str(config), "--until", until]


def mount_tmpfs(where: Path, options: str) -> None:
    """A small tmpfs (root only); the test is skipped, saying why, where mounting is not possible."""
    if shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs mount(8) and root; not available here")
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {(proc.stderr.strip().splitlines() or ['mount failed'])[0]}")


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def make(name: str, options: str) -> Path:
        where = tmp_path / name
        mount_tmpfs(where, options)
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        unmount(where)


# --- a data folder that cannot be written ---------------------------------------------------


def test_a_file_where_the_data_folder_should_be(prefect_server, inputs, tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    proc = cli(run_args(*inputs, blocker / "inner"), cli_env(prefect_server))
    assert_one_line_error(proc, str(blocker / "inner"), "not a directory", status=1)
    assert blocker.read_text() == "not a folder"


def permissions_stop_writes(tmp_path: Path) -> bool:
    """False for root (with CAP_DAC_OVERRIDE): chmod 555 does not stop its writes."""
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "x").write_text("x")
        return False
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)


def test_a_data_folder_that_cannot_be_written(prefect_server, inputs, tmp_path, tmpfs):
    """A folder with mode 555; where permissions do not stop writes (root), a read-only tmpfs."""
    by_mode = permissions_stop_writes(tmp_path)
    if by_mode:
        data, words = tmp_path / "readonly", "permission denied"
        data.mkdir()
        data.chmod(0o555)
    else:
        data, words = tmpfs("readonly", "ro,size=64k"), "read-only file system"
    assert not os.access(data, os.W_OK)
    try:
        proc = cli(run_args(*inputs, data), cli_env(prefect_server))
        assert_one_line_error(proc, str(data), words, status=1)
        assert list(data.iterdir()) == []
    finally:
        if by_mode:
            data.chmod(0o755)


def test_a_full_disk_leaves_only_complete_outputs_and_the_next_run_completes(prefect_server, inputs, tmpfs):
    disk = tmpfs("full", "size=1m")
    filler = disk / "filler"
    # about 40 KB of room: the preprocessing outputs fit, training's checkpoint and model do not
    filler.write_bytes(b"\0" * (shutil.disk_usage(disk).free - 44 * 1024))
    data, env = disk / "data", cli_env(prefect_server)
    proc = cli(run_args(*inputs, data), env)
    assert_one_line_error(proc, "no space left on device", status=1)
    assert leftovers(data) == []  # no temporary folder, no half-written checkpoint
    assert_all_published_intact(data)  # whatever was published is whole
    assert "train" not in published(data) or published(data)["train"] == []
    filler.unlink()
    proc = cli(run_args(*inputs, data), env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert assert_all_published_intact(data) == 6 and leftovers(data) == []


# --- a Prefect API that does not answer -----------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free again once closed: nothing listens there


def test_an_api_url_that_does_not_answer_is_named_before_anything_runs(inputs, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/api"
    data = tmp_path / "data"
    proc = cli(run_args(*inputs, data), cli_env(PREFECT_API_URL=url, PREFECT_HOME=str(tmp_path / "home")), timeout=120)
    assert_one_line_error(proc, f"Prefect API at {url} does not answer", "PREFECT_API_URL", status=2)
    assert not data.exists()


# The same, past the command's own check: the error Prefect's client raises is mapped too.
WITHOUT_PRECHECK = r"""
import sys
import flows.connect
flows.connect.answers = lambda *args, **kwargs: True
from flows.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_api_lost_after_the_check_is_one_line_too(inputs, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/api"
    data = tmp_path / "data"
    env = cli_env(PREFECT_API_URL=url, PREFECT_HOME=str(tmp_path / "home"))
    proc = subprocess.run([PY, "-c", WITHOUT_PRECHECK, *run_args(*inputs, data)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, f"Prefect API at {url} does not answer", "Connection refused", status=1)
    assert not data.exists() or leftovers(data) == []


# --- the mapping itself ---------------------------------------------------------------------


def test_environment_errors_are_recognised_by_errno_not_by_type(tmp_path):
    from flows.cli import environment_error

    def chained(outer: Exception, inner: BaseException) -> Exception:
        outer.__cause__ = inner
        return outer

    cases = [
        (OSError(errno.ENOSPC, "No space left on device", "/d/x.npy"), "/d/x.npy: no space left on device"),
        (PermissionError(errno.EACCES, "Permission denied", "/d"), "/d: permission denied"),
        (OSError(errno.EROFS, "Read-only file system", "/d/02_ingested"), "/d/02_ingested: read-only file system"),
        (RuntimeError("parquet: underlying IO error: No space left on device (os error 28)"), "no space left on device"),
        (chained(RuntimeError("write failed"), OSError(errno.EDQUOT, "Disk quota exceeded")), "disk quota exceeded"),
    ]
    for exc, words in cases:
        assert words in environment_error(exc, str(tmp_path)), exc
    assert environment_error(KeyError("a bug"), str(tmp_path)) is None  # a bug keeps its traceback
    assert environment_error(ValueError("a bug"), None) is None
