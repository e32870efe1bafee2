"""A champion's LSTMs through ONNX Runtime: the export scores as torch does, and predict from a
bundle imports neither torch nor scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import ROOT
from model_fixtures import make_model
from reviewlstm import predict as lib
from reviewlstm import runtime
from reviewlstm.config import ModelConfig
from reviewlstm.errors import InputError
from reviewlstm.models import ReviewLSTM
from reviewlstm.registry import write_bundle
from reviewlstm.inference import predict_proba

SHAPES = {
    "the study's fixed": {},
    "variable, last state": {"length": "variable"},
    "bidirectional, max and mean": {"length": "variable", "bidirectional": True, "pooling": "max_mean"},
    "regression, two layers": {"head": "regress", "num_layers": 2},
}


def rows(n: int, steps: int, vocab: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, steps + 1, n)
    ids = rng.integers(1, vocab, (n, steps))
    ids[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    return ids, lengths


def test_each_model_shape_scores_as_torch_does(tmp_path):
    # all in one process: the exporter once fixed the steps of a process's second model
    for name, settings in SHAPES.items():
        torch.manual_seed(0)
        cfg = ModelConfig(embedding_dim=8, hidden_dim=6, **settings)
        model = ReviewLSTM(cfg, 50).eval()
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.onnx"
        assert runtime.export(model, path), name
        session = runtime.Session(path, variable=cfg.length == "variable")
        for steps in (30, 9):  # not the export's example length
            ids, lengths = rows(37, steps, 50)
            want = predict_proba(model, ids, lengths, batch_size=7)
            got = session.scores(ids, lengths, batch_size=7)
            assert got.shape == want.shape and np.abs(got - want).max() < 1e-5, name


def test_a_bundle_predicts_without_torch_or_scikit_learn(tmp_path):
    trained = make_model(tmp_path / "models")
    bundle = write_bundle(tmp_path, "m1", Path(trained.model["path"]), Path(trained.vocab["path"]), trained.prep)
    assert (bundle / runtime.ONNX).is_file() and (bundle / "model.pt").is_file()
    texts = ["Love this dress", "Cheap fabric, returned it", ""]
    code = ("import json, sys; from reviewlstm.predict import load_bundle; "
            f"p = load_bundle({str(bundle)!r}).predict({texts!r}); "
            "print(json.dumps([p.probabilities.tolist(), sorted({'torch', 'sklearn'} & set(sys.modules))]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    probabilities, imported = json.loads(proc.stdout)
    assert imported == []
    want = lib.load(trained.model["path"], trained.vocab["path"], trained.prep).predict(texts).probabilities
    assert np.abs(np.array(probabilities) - want).max() < 1e-5
    (bundle / runtime.ONNX).unlink()  # without the export: torch, the same scores
    assert isinstance(lib.load_bundle(bundle).model, torch.nn.Module)


def test_a_damaged_export_is_one_clear_error(tmp_path):
    trained = make_model(tmp_path / "models")
    bundle = write_bundle(tmp_path, "m1", Path(trained.model["path"]), Path(trained.vocab["path"]), trained.prep)
    (bundle / runtime.ONNX).write_bytes(b"not a model")
    with pytest.raises(InputError, match=r"model\.onnx: not a readable ONNX model"):
        lib.load_bundle(bundle)
