"""Scoring with a trained ReviewLSTM: loading its weights, its outputs batch by batch."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reviewlstm.config import ModelConfig
from reviewlstm.encode import Split
from reviewlstm.errors import InputError
from reviewlstm.lstm_steps import can_project, projected_last_hidden
from reviewlstm.models import ReviewLSTM


def resolve_device(device: str) -> torch.device:
    """'auto' is CUDA when present, else CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def outputs(model: nn.Module, ids: np.ndarray, lengths: np.ndarray, batch_size: int,
            project: bool = True) -> torch.Tensor:
    """Raw model outputs for every row, in eval mode, its ids gathered batch by batch (`ids` may
    be a memory-mapped file: encode.read_split).

    project: the study's shapes through lstm_steps.projected_last_hidden, faster than nn.LSTM
    (bench/RESULTS.md, "Prediction throughput"); False gives nn.LSTM's outputs, for comparison."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lengths = torch.as_tensor(np.asarray(lengths), dtype=torch.int64)
    # A variable-length model reads no step past a review's length, so rows sorted by length
    # and each batch cut at its longest give the same outputs for fewer steps.
    order = torch.argsort(lengths, stable=True) if getattr(model, "variable", False) else None
    project = project and can_project(model)  # the study's shapes: a faster way to the same outputs
    with torch.inference_mode():
        parts = []
        for i in range(0, len(lengths), batch_size):
            rows = slice(i, i + batch_size) if order is None else order[i : i + batch_size].numpy()
            x = torch.from_numpy(np.array(ids[rows], dtype=np.int64)).to(device)
            n = lengths[rows].to(device)
            if order is not None:
                x = x[:, : max(int(n.max()), 1)]
            parts.append(model.output(projected_last_hidden(model, x, n)) if project else model(x, n))
        out = torch.cat(parts)
    model.train(was_training)
    if order is not None:
        out = out[torch.argsort(order)]
    return out.float().cpu()


def predict_proba(
    model: nn.Module,
    split_or_ids: Split | np.ndarray,
    lengths: np.ndarray | None = None,
    batch_size: int = 500,
    project: bool = True,
) -> np.ndarray:
    """Class probabilities (n, C) from a classifier, the predicted ratings (n,) from a regressor.

    Batches of 500 score as fast as batches of 5000 on a CPU and hold a tenth of the memory."""
    if isinstance(split_or_ids, Split):
        split_or_ids, lengths = split_or_ids.ids, split_or_ids.lengths
    if lengths is None:
        raise ValueError("lengths are required with an ids array")
    out = outputs(model, split_or_ids, lengths, batch_size, project)
    return (out if out.ndim == 1 else out.softmax(-1)).numpy()


def load_model(
    cfg: ModelConfig, vocab_size: int, state_dict_path: str | Path, num_classes: int = 5, device: str = "cpu"
) -> ReviewLSTM:
    """A trained model in eval mode; a file that is unreadable or written for another
    vocabulary or architecture is an InputError naming the file."""
    path = Path(state_dict_path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's message advises weights_only=False: never here
        if "global" in str(exc).lower():  # "Unsupported global", "unsupported GLOBAL ... is blocked"
            raise InputError(f"{path}: holds Python objects besides tensors, which are not loaded (loading them "
                             "could run code); expected the state_dict the train stage saves") from None
        raise InputError(f"{path}: cannot load model weights (not a file torch.save wrote); expected the state_dict "
                         "the train stage saves") from None
    except Exception as exc:  # missing, truncated, not a torch file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot load model weights ({reason})") from None
    model = ReviewLSTM(cfg, vocab_size, num_classes)
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise InputError(f"{path}: expected a state_dict with keys {sorted(expected)}, found {got}")
    for key, value in expected.items():
        shape = tuple(getattr(state[key], "shape", ()))
        if shape != tuple(value.shape):
            raise InputError(
                f"{path}: {key} has shape {shape}, expected {tuple(value.shape)} "
                f"(written for another vocabulary size or model config?)"
            )
    model.load_state_dict(state)
    return model.to(resolve_device(device)).eval()
