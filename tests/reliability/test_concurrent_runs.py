"""Concurrent runs: two `reviewlstm run` started together on the same settings and data folder
both succeed, each stage is computed once (the other run waits for it and reuses it), and
nothing is corrupted; a stage lock never outlives the process that held it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SAMPLE, write_reviews
from reliability_helpers import ROOT, assert_all_published_intact, cli_cmd, cli_env, leftovers, published, tiny_config
from reviewlstm.registry import load as load_registry
from tasks.locks import ProcessLockManager


def test_stage_tasks_are_serializable_with_a_file_lock_manager():
    from prefect.locking.filesystem import FileSystemLockManager

    from tasks.ingest import ingest
    from tasks.train import train

    for task in (ingest, train):
        assert task.cache_policy.isolation_level == "SERIALIZABLE"
        assert isinstance(task.cache_policy.lock_manager, FileSystemLockManager)


def test_two_runs_started_together_compute_each_stage_once(prefect_server, tmp_path):
    raw = write_reviews(tmp_path / "reviews.csv", SAMPLE * 3)
    config = tiny_config(tmp_path / "tiny.json", epochs=2)
    data = tmp_path / "data"
    args = ["run", "--raw", str(raw), "--data-dir", str(data), "--config", str(config), "--json"]
    env = cli_env(prefect_server)
    procs = [subprocess.Popen(cli_cmd(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err[-3000:]
    a, b = (json.loads(out) for out, _ in outs)
    stages = [s["stage"] for s in a["stages"]]
    assert stages == ["ingest", "clean", "tokenize", "prune", "encode", "train[tiny]", "evaluate"]
    for i, stage in enumerate(stages):  # one run computed it, the other waited and reused it
        assert sorted([a["stages"][i]["status"], b["stages"][i]["status"]]) == ["cached", "ran"], stage
        assert a["stages"][i]["output"] == b["stages"][i]["output"]
    assert a["metrics"] == b["metrics"]
    # one output folder per stage, each exactly as its record says, no temporary folders left
    assert {stage: len(folders) for stage, folders in published(data).items()} == {
        "ingest": 1, "clean": 1, "tokenize": 1, "prune": 1, "encode": 1, "train": 1, "evaluate": 1}
    assert assert_all_published_intact(data) == 7
    assert leftovers(data) == []
    # promotion, under the registry's own lock: one run promoted, the other found it in place
    assert sorted([a["promotion"]["promoted"], b["promotion"]["promoted"]]) == [False, True]
    assert len(load_registry(data)["models"]) == 1


# A process takes a stage lock with the given manager, then dies with SIGKILL.
TAKE_AND_DIE = r"""
import os, signal, sys
from pathlib import Path
from prefect.locking.filesystem import FileSystemLockManager
from tasks.locks import ProcessLockManager
kind, folder = sys.argv[1], Path(sys.argv[2])
manager = ProcessLockManager(folder) if kind == "ours" else FileSystemLockManager(lock_files_directory=folder)
assert manager.acquire_lock("ingest-key", holder="dead run")
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("kind", ["prefect", "ours"])
def test_a_lock_dies_with_its_holder(tmp_path, kind):
    """Prefect's FileSystemLockManager keeps the lock of a killed run forever (the task engine sets
    no expiry), so every later run of that stage would wait forever; ours is released by the kernel."""
    from prefect.locking.filesystem import FileSystemLockManager

    proc = subprocess.run([sys.executable, "-c", TAKE_AND_DIE, kind, str(tmp_path)], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (tmp_path / "ingest-key.lock").exists()  # the file stays either way
    manager = ProcessLockManager(tmp_path) if kind == "ours" else FileSystemLockManager(lock_files_directory=tmp_path)
    got = manager.acquire_lock("ingest-key", holder="next run", acquire_timeout=1.0)
    assert got is (kind == "ours")
    if got:
        assert manager.is_lock_holder("ingest-key", "next run")
        manager.release_lock("ingest-key", "next run")
        assert not manager.is_locked("ingest-key") and not (tmp_path / "ingest-key.lock").exists()


def test_a_lock_excludes_other_holders_until_released(tmp_path):
    first, second = ProcessLockManager(tmp_path), ProcessLockManager(tmp_path)  # as two processes see it
    assert first.acquire_lock("k", holder="a")
    assert second.is_locked("k") and not second.is_lock_holder("k", "b")
    assert second.acquire_lock("k", holder="b", acquire_timeout=0.3) is False
    assert second.wait_for_lock("k", timeout=0.3) is False
    first.release_lock("k", holder="a")
    assert second.wait_for_lock("k", timeout=1) and second.acquire_lock("k", holder="b", acquire_timeout=1)
    assert first.is_locked("k")
    with pytest.raises(ValueError):
        first.release_lock("k", holder="a")
    second.release_lock("k", holder="b")


def test_the_lock_folder_follows_prefect_home(tmp_path):
    from prefect.settings import PREFECT_HOME, temporary_settings

    manager = ProcessLockManager()
    with temporary_settings(updates={PREFECT_HOME: str(tmp_path / "home")}):
        assert manager.lock_files_directory == (tmp_path / "home" / "locks").resolve()
