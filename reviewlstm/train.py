"""Training, prediction and loading of a ReviewLSTM, with the study's loop semantics.

The study calls its train function once per round: each round builds a fresh Adam at that
round's learning rate (so the moment estimates restart) and runs its epochs; every epoch
shuffles the training rows, and ends with a pass over the validation split. Speed on CPU comes
from slicing pre-built tensors (no Dataset/DataLoader per item) and inference_mode for the
validation pass; determinism from one seed for the weights, dropout and the shuffles.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reviewlstm.config import ModelConfig
from reviewlstm.encode import Split
from reviewlstm.errors import InputError
from reviewlstm.metrics import classification_metrics, regression_metrics
from reviewlstm.models import ReviewLSTM, build_model


def resolve_device(device: str) -> torch.device:
    """'auto' is CUDA when present, else CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def _cores() -> int:
    """The cores this process may use (a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _check_split(split: Split, name: str, vocab_size: int, num_classes: int) -> None:
    # Caught here, these would surface as an index error deep inside torch.
    if len(split) == 0:
        raise InputError(f"the {name} split has no rows; the input needs more reviews")
    if split.ids.min() < 0 or split.ids.max() >= vocab_size:
        raise InputError(
            f"the {name} split has word ids {split.ids.min()}..{split.ids.max()}, expected "
            f"0..{vocab_size - 1}: it was encoded with another vocabulary"
        )
    if split.labels.min() < 0 or split.labels.max() >= num_classes:
        raise InputError(
            f"the {name} split has labels {split.labels.min()}..{split.labels.max()}, "
            f"expected classes 0..{num_classes - 1}"
        )


def _outputs(model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Raw model outputs for every row, in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = torch.cat([
            model(ids[i : i + batch_size].to(device), lengths[i : i + batch_size].to(device))
            for i in range(0, len(ids), batch_size)
        ])
    model.train(was_training)
    return out.float().cpu()


def predict_proba(
    model: nn.Module,
    split_or_ids: Split | np.ndarray,
    lengths: np.ndarray | None = None,
    batch_size: int = 5000,
) -> np.ndarray:
    """Class probabilities (n, C) from a classifier, the predicted ratings (n,) from a regressor."""
    if isinstance(split_or_ids, Split):
        split_or_ids, lengths = split_or_ids.ids, split_or_ids.lengths
    if lengths is None:
        raise ValueError("lengths are required with an ids array")
    ids = torch.as_tensor(np.asarray(split_or_ids), dtype=torch.int64)
    out = _outputs(model, ids, torch.as_tensor(np.asarray(lengths), dtype=torch.int64), batch_size)
    return (out if out.ndim == 1 else out.softmax(-1)).numpy()


def _loss(out: torch.Tensor, target: torch.Tensor, regress: bool) -> torch.Tensor:
    # regression: MSE against the class index as a float rating 0..4, as in the study
    return F.mse_loss(out, target.float()) if regress else F.cross_entropy(out, target)


def _evaluate(model: ReviewLSTM, split: Split, batch_size: int, num_classes: int) -> dict[str, float]:
    """Validation loss and metrics (scalars only: the confusion matrix is left to evaluation)."""
    out = _outputs(model, torch.from_numpy(split.ids), torch.from_numpy(split.lengths), batch_size)
    labels = torch.from_numpy(split.labels)
    row = {"valid_loss": _loss(out, labels, model.regress).item()}
    if model.regress:
        metrics = regression_metrics(split.labels, out.numpy(), 0, num_classes - 1)
    else:
        metrics = classification_metrics(split.labels, out.softmax(-1).numpy())
    row.update({k: float(v) for k, v in metrics.items() if k != "confusion"})
    return row


def train_model(
    cfg: ModelConfig,
    train: Split,
    valid: Split,
    vocab_size: int,
    *,
    seed: int,
    threads: int | None = None,
    embeddings: np.ndarray | None = None,
    num_classes: int = 5,
    device: str = "cpu",
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Train one variant; returns (state_dict on CPU, one history row per epoch).

    A history row: epoch (1-based, over all rounds), round (1-based), lr, train_loss (mean per
    sample over the epoch, the study's sum_loss/total), valid_loss and the validation metrics.
    Same seed, threads and device -> the same history and weights, bit for bit, on CPU.
    """
    for split, name in ((train, "training"), (valid, "validation")):
        _check_split(split, name, vocab_size, num_classes)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or _cores())
    try:
        dev = resolve_device(device)
        torch.manual_seed(seed)  # initial weights and dropout masks
        shuffle = torch.Generator().manual_seed(seed)
        model = build_model(cfg, vocab_size, num_classes, embeddings).to(dev)
        ids, lengths = torch.from_numpy(train.ids).to(dev), torch.from_numpy(train.lengths).to(dev)
        labels = torch.from_numpy(train.labels).to(dev)
        n, bs = len(train), cfg.batch_size
        params = [p for p in model.parameters() if p.requires_grad]
        history: list[dict] = []
        for round_no, rnd in enumerate(cfg.rounds, 1):
            optimizer = torch.optim.Adam(params, lr=rnd.lr)  # fresh each round, as in the study
            for _ in range(rnd.epochs):
                model.train()
                perm = torch.randperm(n, generator=shuffle).to(dev)
                x, l, y = ids[perm], lengths[perm], labels[perm]  # one gather, then views
                sum_loss = 0.0
                for i in range(0, n, bs):
                    loss = _loss(model(x[i : i + bs], l[i : i + bs]), y[i : i + bs], model.regress)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    sum_loss += loss.item() * len(y[i : i + bs])
                row = {"epoch": len(history) + 1, "round": round_no, "lr": rnd.lr, "train_loss": sum_loss / n}
                row.update(_evaluate(model, valid, bs, num_classes))
                history.append(row)
                if on_epoch is not None:
                    on_epoch(row)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return state, history
    finally:
        torch.set_num_threads(previous_threads)


def load_model(
    cfg: ModelConfig, vocab_size: int, state_dict_path: str | Path, num_classes: int = 5, device: str = "cpu"
) -> ReviewLSTM:
    """A trained model in eval mode; a file that is unreadable or written for another
    vocabulary or architecture is an InputError naming the file."""
    path = Path(state_dict_path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # missing, truncated, not a torch file, unsafe pickle
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
