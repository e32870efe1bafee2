"""A champion's LSTMs scored by ONNX Runtime, so that `predict` needs no torch.

Promotion exports each LSTM of the bundle to `model.onnx` beside its `model.pt` (`export`);
`reviewlstm.predict` scores through it (`Session`) when ONNX Runtime is installed, and through
torch otherwise. The graph is the model's own forward pass (ids and lengths in, probabilities or
the regression output out), so the two agree to float rounding (tests/library/test_runtime.py). An ONNX
file is a graph of operators and weights: loading one runs no Python code.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np

ONNX = "model.onnx"
TOLERANCE = 1e-4  # an export whose outputs differ from torch's by more is not kept


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export(model, path: Path) -> bool:
    """Write `model` (a ReviewLSTM) as ONNX to `path`, checked against torch on sample rows;
    False (and nothing written) where the exporter or the check fails: predict then uses torch."""
    import torch

    class Scores(torch.nn.Module):  # the outputs predict reads: probabilities, or the rating
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, lengths):
            out = self.m(ids, lengths)
            return out if self.m.regress else out.softmax(-1)

    scores = Scores(model).eval()  # the exporter puts each module back in the mode it found it in
    gen = torch.Generator().manual_seed(0)
    steps = 24
    lengths = torch.randint(1, steps + 1, (8,), generator=gen)
    ids = torch.randint(1, model.embedding.num_embeddings, (8, steps), generator=gen)
    ids[torch.arange(steps)[None, :] >= lengths[:, None]] = 0
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        # the exporter reports its passes on stdout and warns about internals: none of it is the user's
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            # TorchScript's exporter: it writes nn.LSTM as ONNX's LSTM operator for any number of
            # steps, where torch.export specializes the steps of the second model of a process
            torch.onnx.export(scores, (ids, lengths), str(tmp), dynamo=False, input_names=["ids", "lengths"],
                              output_names=["scores"], dynamic_axes={"ids": {0: "batch", 1: "steps"},
                                                                     "lengths": {0: "batch"}, "scores": {0: "batch"}})
        # checked on other shapes than the example's: an export must not have fixed them
        check = Session(tmp, variable=True)
        for rows, cut in ((slice(None), steps), (slice(0, 5), 17)):
            x, n = ids[rows, :cut], lengths[rows].clamp(max=cut)
            with torch.inference_mode():
                want = scores(x, n).numpy()
            got = check.run(x.numpy(), n.numpy())
            if got.shape != want.shape or not np.allclose(got, want, atol=TOLERANCE, rtol=0):
                return False
        tmp.rename(path)
        return True
    except Exception:  # an exporter that cannot express this model: torch serves it
        return False
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class Session:
    """One exported LSTM: scores (ids, lengths) as `train.predict_proba` does, on one thread
    (predict runs one model thread per core)."""

    def __init__(self, path: str | Path, variable: bool):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.variable = variable
        self.inputs = {i.name for i in self.session.get_inputs()}  # a fixed-length model reads no lengths

    def run(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        feed = {"ids": ids.astype(np.int64, copy=False), "lengths": lengths.astype(np.int64, copy=False)}
        return self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]

    def scores(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int = 500) -> np.ndarray:
        # as inference.outputs: a variable-length model's rows sorted by length, each batch cut at its longest
        order = np.argsort(lengths, kind="stable") if self.variable else np.arange(len(ids))
        parts = []
        for i in range(0, len(ids), batch_size):
            rows = order[i : i + batch_size]
            x, n = ids[rows], lengths[rows]
            if self.variable:
                x = x[:, : max(int(n.max()), 1)]
            parts.append(self.run(np.ascontiguousarray(x), n))
        out = np.concatenate(parts) if parts else np.zeros((0,), np.float32)
        result = np.empty_like(out)
        result[order] = out
        return result
