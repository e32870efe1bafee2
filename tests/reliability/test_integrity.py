"""Integrity: a cached model or metrics file that was edited is found out by its content hash and
rebuilt; a model file is only ever loaded as tensors, so one carrying pickled code is refused
without running it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from helpers import SAMPLE, write_reviews
from reliability_helpers import assert_one_line_error, cli, cli_env, published, tiny_config
from reviewlstm.config import ModelConfig, PipelineConfig
from reviewlstm.errors import InputError
from reviewlstm.fingerprint import file_digest
from reviewlstm.models import ReviewLSTM
from reviewlstm.inference import load_model


def statuses(summary: dict) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in summary["stages"]}


@pytest.fixture(scope="module")
def trained(prefect_server, tmp_path_factory):
    """A tiny pipeline run in this process, up to evaluate and promotion."""
    from flows.pipeline import pipeline

    base = tmp_path_factory.mktemp("integrity")
    raw = write_reviews(base / "reviews.csv", SAMPLE * 3)
    cfg = PipelineConfig.model_validate_json(tiny_config(base / "tiny.json").read_text())
    data = base / "data"

    def run(**kw) -> dict:
        return pipeline(raw=str(raw), data_dir=str(data), config=cfg, **kw)

    first = run()
    assert set(statuses(first).values()) == {"ran"}
    return {"run": run, "data": data, "cfg": cfg}


def test_an_edited_model_file_is_rebuilt_not_trusted(trained):
    (model_dir,) = published(trained["data"])["train"]
    model = model_dir / "model.pt"
    before = file_digest(model)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: still loads, silently wrong
    model.write_bytes(bytes(data))
    again = trained["run"](promote=False)
    assert statuses(again)["train[tiny]"] == "ran"
    assert file_digest(model) == before  # rebuilt, bit for bit as before
    assert statuses(again)["evaluate"] == "cached"  # same model bytes: its evaluation still holds


def test_a_deleted_or_truncated_metrics_file_is_rebuilt(trained):
    (metrics_dir,) = published(trained["data"])["evaluate"]
    metrics = metrics_dir / "metrics.json"
    before = metrics.read_bytes()
    metrics.write_bytes(before[: len(before) // 2])
    assert statuses(trained["run"](promote=False))["evaluate"] == "ran"
    assert metrics.read_bytes() == before
    shutil.rmtree(metrics_dir)
    assert statuses(trained["run"](promote=False))["evaluate"] == "ran"
    assert metrics.read_bytes() == before


class RunsCode:
    """Unpickling this calls os.system: what a malicious model file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickled_code(path: Path, marker: Path, state: dict) -> Path:
    torch.save({**state, "head.bias": RunsCode(marker)}, path)
    return path


def test_a_model_file_with_pickled_code_is_refused_and_the_code_does_not_run(tmp_path):
    cfg = ModelConfig(embedding_dim=8, hidden_dim=4)
    state = ReviewLSTM(cfg, 30).state_dict()
    marker = tmp_path / "code-ran"
    path = pickled_code(tmp_path / "model.pt", marker, state)
    with pytest.raises(InputError) as info:
        load_model(cfg, 30, path)
    message = str(info.value)
    assert str(path) in message and "holds Python objects besides tensors" in message and "\n" not in message
    assert "weights_only" not in message  # torch's advice to load it the unsafe way is not passed on
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file does carry code: the unsafe way runs it
    assert marker.exists()


def test_predict_refuses_a_champion_with_pickled_code(trained, tmp_path):
    """The command, from a champion bundle whose model.pt was replaced: one line, exit 2, no code."""
    bundles = [p for p in (trained["data"] / "champions").iterdir() if p.is_dir()]
    assert len(bundles) == 1
    model = bundles[0] / "model.pt"
    state = torch.load(model, weights_only=True)
    original = model.read_bytes()
    marker = tmp_path / "code-ran"
    pickled_code(model, marker, state)
    try:
        proc = cli(["predict", "Lovely dress", "--data-dir", str(trained["data"])], cli_env())
        # the champion's files are checked against the registry first: the weights are never read
        assert_one_line_error(proc, str(model), "changed since it was promoted", status=2)
        assert not marker.exists()
    finally:
        model.write_bytes(original)
