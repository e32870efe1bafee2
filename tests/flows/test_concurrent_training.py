"""Variants train as tasks submitted together through the flow's task runner (threads, or Dask),
each in its own child process, and get exactly the weights they get when trained alone."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import ROOT
from flows.pipeline import pipeline
from reviewlstm.config import ModelConfig, PipelineConfig, Round, TrainConfig
from reviewlstm.encode import Split
from reviewlstm.errors import InputError
from reviewlstm.train import train_model
from reviewlstm.child import train_in_child


def tiny_split(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, n)
    ids = np.where(np.arange(12) < lengths[:, None], rng.integers(2, 40, (n, 12)), 0)
    return Split(ids.astype(np.int64), lengths.astype(np.int64), rng.integers(0, 5, n).astype(np.int64))


def job(**over) -> dict:
    cfg = ModelConfig(length="variable", embedding_dim=8, hidden_dim=6, batch_size=32,
                      rounds=[Round(epochs=2, lr=0.01)])
    return {"cfg": cfg, "train": tiny_split(100, 1), "valid": tiny_split(40, 2), "vocab_size": 40,
            "seed": 3, "threads": 1, **over}


def test_child_process_training_equals_training_in_this_process(tmp_path):
    seen = []
    history = train_in_child(job(), tmp_path / "model.pt", on_epoch=seen.append)
    state = torch.load(tmp_path / "model.pt", weights_only=True)  # saved by the child
    here_state, here_history = train_model(**job())
    assert history == here_history and seen == here_history  # every epoch streamed back
    assert state.keys() == here_state.keys()
    assert all(torch.equal(state[k], here_state[k]) for k in state)


def test_child_process_input_error_comes_back_as_input_error(tmp_path):
    bad = tiny_split(20, 4)
    bad = Split(bad.ids + 100, bad.lengths, bad.labels)  # ids beyond the vocabulary
    with pytest.raises(InputError, match="another vocabulary"):
        train_in_child(job(train=bad), tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


def two_variants(parallel: int | None = None) -> PipelineConfig:
    small = dict(embedding_dim=8, hidden_dim=4, batch_size=16, rounds=[Round(epochs=2, lr=0.01)])
    return PipelineConfig(train=TrainConfig(parallel=parallel, threads=1),  # same threads: same floats
                          variants={"a": ModelConfig(**small), "b": ModelConfig(length="variable", **small)})


def weights(summary: dict) -> dict[str, str]:
    return {s["stage"]: hashlib.sha256((Path(s["output"]) / "model.pt").read_bytes()).hexdigest()
            for s in summary["stages"] if s["stage"].startswith("train[")}


def train_runs(flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            return [r for r in runs if r.name.startswith("train")]

    return asyncio.run(read())


def test_variants_train_at_the_same_time_with_the_weights_of_one_at_a_time(prefect_server, sample_csv, tmp_path):
    together = pipeline(raw=str(sample_csv), data_dir=str(tmp_path / "together"), config=two_variants(2),
                        return_state=True)
    summary = together.result()
    runs = train_runs(str(together.state_details.flow_run_id))
    assert len(runs) == 2 and all(r.start_time and r.end_time for r in runs)
    first, second = sorted(runs, key=lambda r: r.start_time)
    assert second.start_time < first.end_time, "the second variant started only after the first ended"

    alone = pipeline(raw=str(sample_csv), data_dir=str(tmp_path / "alone"), config=two_variants(1))
    assert weights(summary) == weights(alone)


def test_dask_task_runner_trains_the_variants_on_a_local_two_worker_cluster(prefect_server, sample_csv, tmp_path):
    pytest.importorskip("prefect_dask")
    data = tmp_path / "data"
    config = tmp_path / "config.json"
    config.write_text(two_variants().model_dump_json())
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--raw", str(sample_csv), "--data-dir", str(data),
                           "--config", str(config), "--task-runner", "dask", "--json"],
                          cwd=ROOT, env=prefect_server, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert {s["stage"]: s["status"] for s in summary["stages"]}["train[a]"] == "ran"
    threads = pipeline(raw=str(sample_csv), data_dir=str(tmp_path / "threads"), config=two_variants())
    assert weights(summary) == weights(threads)  # the same weights, wherever they trained


def test_dask_address_that_does_not_answer_is_one_line(tmp_path):
    pytest.importorskip("prefect_dask")
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--dask-address", "tcp://127.0.0.1:9",
                           "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no Dask scheduler answers" in proc.stderr


def test_a_running_dask_scheduler_and_its_workers_train_the_variants(prefect_server, sample_csv, tmp_path):
    """The README's cluster recipe on one machine: `dask scheduler`, `dask worker` processes, and
    the command pointed at the scheduler; the models land in the data folder the workers see."""
    pytest.importorskip("prefect_dask")
    from flows.server import free_port

    port, bin_dir = free_port(), Path(sys.executable).parent
    env = prefect_server
    cluster = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                 "--no-dashboard"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        cluster.append(subprocess.Popen([str(bin_dir / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "2",
                                         "--nthreads", "1", "--no-dashboard"], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        data, config = tmp_path / "data", tmp_path / "config.json"
        config.write_text(two_variants().model_dump_json())
        proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--raw", str(sample_csv), "--data-dir", str(data),
                               "--config", str(config), "--dask-address", f"tcp://127.0.0.1:{port}", "--json"],
                              cwd=ROOT, env=prefect_server, capture_output=True, text=True, timeout=600)
    finally:
        for p in cluster:
            p.terminate()
        for p in cluster:
            p.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert {s["stage"]: s["status"] for s in summary["stages"]}["train[a]"] == "ran"
    threads = pipeline(raw=str(sample_csv), data_dir=str(tmp_path / "threads"), config=two_variants())
    assert weights(summary) == weights(threads)
