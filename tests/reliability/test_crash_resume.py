"""Crash and resume: a run killed with SIGKILL (mid-epoch, mid-write, holding a stage's lock)
leaves nothing a later run would trust, and the next run continues from the last finished epoch
to exactly the weights and history of a run that was never interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch

from helpers import SAMPLE, write_reviews
from reliability_helpers import (ROOT, assert_all_published_intact, cli_cmd, cli_env, leftovers, published,
                                 synthetic_split, tiny_config)
from reviewlstm.config import ModelConfig, PipelineConfig
from reviewlstm.encode import to_split
from reviewlstm.storage import LAYERS, read_record, stage_output, sweep_leftovers, verify
from reviewlstm.train import train_model
from reviewlstm.checkpoint import CHECKPOINT_FORMAT, checkpoint_epochs

HERE = Path(__file__).resolve().parent
VOCAB = 30
# 400 rows in batches of 64: 7 batches an epoch; two rounds, 3 + 2 epochs: 35 batches in all
CFG = dict(embedding_dim=8, hidden_dim=4, batch_size=64, dropout=0.3,
           rounds=[{"epochs": 3, "lr": 0.02}, {"epochs": 2, "lr": 0.01}])

# Trains with a checkpoint; with a batch number, SIGKILLs itself inside that training batch.
TRAIN = r"""
import json, os, signal, sys
from pathlib import Path
import torch
sys.path.insert(0, sys.argv[5])
import reviewlstm.train as T
from reliability_helpers import synthetic_split
from reviewlstm.config import ModelConfig

checkpoint, out, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
cfg = ModelConfig.model_validate_json(sys.argv[4])
if kill_at:
    loss, batches = T._loss, [0]

    def counting(*args):
        if args[0].requires_grad:  # a training batch, not the validation pass
            batches[0] += 1
            if batches[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return loss(*args)

    T._loss = counting
trained = []
state, history = T.train_model(cfg, synthetic_split(400, 1), synthetic_split(100, 2), 30, seed=7, threads=1,
                               checkpoint=checkpoint, on_epoch=lambda row: trained.append(row["epoch"]))
torch.save(state, out / "state.pt")
(out / "run.json").write_text(json.dumps({"history": history, "trained": trained}))
"""


def train_in_subprocess(checkpoint: Path, out: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    cfg = ModelConfig.model_validate(CFG).model_dump_json()
    return subprocess.run([sys.executable, "-c", TRAIN, str(checkpoint), str(out), str(kill_at), cfg, str(HERE)],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted():
    return train_model(ModelConfig.model_validate(CFG), synthetic_split(400, 1), synthetic_split(100, 2), VOCAB,
                       seed=7, threads=1)


def assert_same(state: dict, history: list, reference: tuple) -> None:
    ref_state, ref_history = reference
    assert state.keys() == ref_state.keys()
    for name in ref_state:
        assert torch.equal(state[name], ref_state[name]), name
    assert history == json.loads(json.dumps(ref_history))  # as it travelled: through JSON


def test_training_killed_twice_mid_epoch_resumes_to_the_same_weights_and_history(tmp_path, uninterrupted):
    """SIGKILL inside a training batch of epoch 2 (batch 10), then, resumed, inside epoch 3."""
    checkpoint = tmp_path / "ckpt" / "run.pt"
    held = [1, 2]
    for kill_at, epochs in zip([10, 12], held):  # a resumed attempt counts its batches from 1
        proc = train_in_subprocess(checkpoint, tmp_path, kill_at)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        assert checkpoint_epochs(checkpoint) == epochs
    saved = torch.load(checkpoint, weights_only=True)  # tensors and plain data only
    assert saved["format"] == CHECKPOINT_FORMAT and len(saved["history"]) == held[-1]
    proc = train_in_subprocess(checkpoint, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["trained"] == list(range(held[-1] + 1, 6))  # resumed, not started over
    assert_same(torch.load(tmp_path / "state.pt", weights_only=True), run["history"], uninterrupted)


class Crash(Exception):
    pass


# Epochs 1..5 are training batches 1-7, 8-14, 15-21 | round 2 (a fresh Adam): 22-28, 29-35.
@pytest.mark.parametrize("crash_at,held", [(1, 0), (10, 1), (21, 2), (22, 3), (26, 3), (35, 4)])
def test_training_stopped_at_any_batch_resumes_exactly(tmp_path, uninterrupted, monkeypatch, crash_at, held):
    """In process, the same at every position: round boundaries, first and last batch."""
    import reviewlstm.train as T

    loss, count = T._loss, [0]

    def crashing(*args):
        if args[0].requires_grad:  # a training batch, not the validation pass
            count[0] += 1
            if count[0] == crash_at:
                raise Crash
        return loss(*args)

    args = (ModelConfig.model_validate(CFG), synthetic_split(400, 1), synthetic_split(100, 2), VOCAB)
    checkpoint = tmp_path / "run.pt"
    monkeypatch.setattr(T, "_loss", crashing)
    with pytest.raises(Crash):
        train_model(*args, seed=7, threads=1, checkpoint=checkpoint)
    monkeypatch.setattr(T, "_loss", loss)
    assert (checkpoint_epochs(checkpoint) or 0) == held
    trained = []
    result = train_model(*args, seed=7, threads=1, checkpoint=checkpoint, on_epoch=lambda r: trained.append(r["epoch"]))
    assert trained == list(range(held + 1, 6))
    assert_same(*result, uninterrupted)


def test_checkpoint_none_and_a_finished_checkpoint_change_nothing(tmp_path, uninterrupted):
    cfg = ModelConfig.model_validate(CFG)
    args = (cfg, synthetic_split(400, 1), synthetic_split(100, 2), VOCAB)
    checkpoint = tmp_path / "run.pt"
    assert_same(*train_model(*args, seed=7, threads=1, checkpoint=checkpoint), uninterrupted)
    assert checkpoint_epochs(checkpoint) == 5
    calls = []
    assert_same(*train_model(*args, seed=7, threads=1, checkpoint=checkpoint, on_epoch=calls.append), uninterrupted)
    assert calls == []  # everything came from the checkpoint


def test_a_checkpoint_of_another_run_or_a_damaged_one_is_ignored(tmp_path, uninterrupted):
    cfg = ModelConfig.model_validate(CFG)
    args = (cfg, synthetic_split(400, 1), synthetic_split(100, 2), VOCAB)
    checkpoint = tmp_path / "run.pt"
    train_model(*args, seed=8, threads=1, checkpoint=checkpoint)  # another seed: another run
    assert_same(*train_model(*args, seed=7, threads=1, checkpoint=checkpoint), uninterrupted)
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # truncated
    assert checkpoint_epochs(checkpoint) is None
    assert_same(*train_model(*args, seed=7, threads=1, checkpoint=checkpoint), uninterrupted)


# --- a stage killed while it writes --------------------------------------------------------

WRITE_AND_HANG = r"""
import sys, time
from reviewlstm.storage import stage_output
with stage_output(sys.argv[1], "ingest", "k" * 24) as out:
    out.path("reviews.parquet").write_bytes(b"half a file")
    print("writing", flush=True)
    time.sleep(600)
"""


def test_a_stage_killed_while_writing_publishes_nothing_and_its_leftovers_go(tmp_path):
    key, layer = "k" * 24, tmp_path / LAYERS["ingest"]
    proc = subprocess.Popen([sys.executable, "-c", WRITE_AND_HANG, str(tmp_path)], cwd=ROOT, env=cli_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert not (layer / key).exists() and read_record(layer / key) is None  # nothing to trust
    temps = [p.name for p in layer.iterdir()]
    assert len(temps) == 1 and temps[0].startswith(f".{key}.")  # only the hidden temporary folder
    # a folder of a writer that still runs (this process) is left alone
    with stage_output(tmp_path, "ingest", "j" * 24) as out:
        out.path("a").write_text("a")
        assert sweep_leftovers(layer, "j" * 24) == []
    # the next writer of the key removes the dead one's folder, then publishes
    with stage_output(tmp_path, "ingest", key) as out:
        out.path("reviews.parquet").write_bytes(b"a whole file")
    assert sorted(p.name for p in layer.iterdir()) == ["j" * 24, key]
    assert verify(read_record(layer / key))


# --- the whole command, killed during training ---------------------------------------------

EPOCHS = 15


@pytest.fixture(scope="module")
def killed_and_rerun(prefect_server, tmp_path_factory):
    """`reviewlstm run --until train` SIGKILLed once its checkpoint exists, then run again."""
    base = tmp_path_factory.mktemp("crash")
    raw = write_reviews(base / "reviews.csv", SAMPLE * 30)
    config = tiny_config(base / "tiny.json", epochs=EPOCHS, batch_size=8)
    data = base / "data"
    args = ["run", "--raw", str(raw), "--data-dir", str(data), "--config", str(config), "--until", "train"]
    env = cli_env(prefect_server)
    first = subprocess.Popen(cli_cmd(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoints = data / LAYERS["train"] / ".checkpoints"
    deadline = time.monotonic() + 300
    try:
        while not any(checkpoints.glob("*.pt")):
            assert first.poll() is None, f"finished before it could be killed: {first.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
    finally:
        first.kill()  # SIGKILL
        first.communicate(timeout=60)
    (checkpoint,) = checkpoints.glob("*.pt")
    after_kill = {
        "returncode": first.returncode,
        "epochs": checkpoint_epochs(checkpoint),
        "models": published(data).get("train", []),
        "hidden": [p.name for p in (data / LAYERS["train"]).iterdir() if p.name.startswith(".") and p.is_dir()],
    }
    second = subprocess.run(cli_cmd(*args, "-v"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return {"data": data, "raw": raw, "config": config, "checkpoint": checkpoint, "after_kill": after_kill,
            "second": second}


def test_killed_run_left_no_model_and_a_checkpoint_mid_training(killed_and_rerun):
    after = killed_and_rerun["after_kill"]
    assert after["returncode"] == -signal.SIGKILL
    assert 1 <= after["epochs"] < EPOCHS
    assert after["models"] == []  # no published model folder
    assert len(after["hidden"]) == 2  # the checkpoints' folder and the stage's temporary folder


def test_rerun_resumes_is_not_blocked_by_the_dead_runs_lock_and_matches_an_uninterrupted_run(killed_and_rerun):
    second, data = killed_and_rerun["second"], killed_and_rerun["data"]
    assert second.returncode == 0, second.stderr[-3000:]
    epochs = killed_and_rerun["after_kill"]["epochs"]
    assert f"resuming from the checkpoint after epoch {epochs} of {EPOCHS}" in second.stdout + second.stderr
    assert not killed_and_rerun["checkpoint"].exists()  # gone once the model is published
    assert leftovers(data) == []  # the killed run's temporary folder was swept
    assert assert_all_published_intact(data) == 6  # ingest .. encode and the model
    (model_dir,) = published(data)["train"]
    (encoded_dir,) = published(data)["encode"]
    (vocab_dir,) = published(data)["prune"]
    cfg = PipelineConfig.model_validate_json(killed_and_rerun["config"].read_text())
    table = pl.read_parquet(encoded_dir / "encoded.parquet")
    reference = train_model(cfg.variants["tiny"], to_split(table, "train"), to_split(table, "valid"),
                            read_record(vocab_dir)["figures"]["vocab_size"], seed=cfg.train.seed, threads=1)
    saved = json.loads((model_dir / "model.json").read_text())
    assert_same(torch.load(model_dir / "model.pt", weights_only=True), saved["history"], reference)
