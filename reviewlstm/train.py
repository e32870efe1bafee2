"""Training of a ReviewLSTM, with the study's loop semantics.

The study calls its train function once per round: each round builds a fresh Adam at that
round's learning rate (so the moment estimates restart) and runs its epochs; every epoch
shuffles the training rows, and ends with a pass over the validation split. Speed on CPU comes
from slicing pre-built tensors (no Dataset/DataLoader per item) and inference_mode for the
validation pass; determinism from one seed for the weights, dropout and the shuffles.

With a `checkpoint` path, training survives a crash: after every epoch the model, the optimizer,
the position (round, epoch), the history and both random generators are written atomically, and
a later call for the same run (same config, data, seed) continues from there, ending with the
same weights and history, bit for bit, as a run that was never interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reviewlstm.checkpoint import CHECKPOINT_FORMAT, read_checkpoint, run_fingerprint, save_checkpoint
from reviewlstm.config import ModelConfig
from reviewlstm.cores import available_cores
from reviewlstm.encode import Split
from reviewlstm.errors import InputError
from reviewlstm.inference import outputs, resolve_device
from reviewlstm.allocator import keep_freed_memory
from reviewlstm.metrics import classification_metrics, regression_metrics
from reviewlstm.models import ENCODER, ReviewLSTM, build_model


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


def adam(params: list[torch.Tensor], lr: float, scales: list[float] | None = None) -> torch.optim.Adam:
    """torch's Adam, a parameter group per learning-rate scale (ULMFiT's discriminative rates)."""
    groups: dict[float, list[torch.Tensor]] = {}
    for p, scale in zip(params, scales or [1.0] * len(params)):
        groups.setdefault(scale, []).append(p)
    return torch.optim.Adam([{"params": ps, "lr": lr * scale} for scale, ps in groups.items()], lr=lr)


def _loss(out: torch.Tensor, target: torch.Tensor, regress: bool, expected_weight: float = 0.0) -> torch.Tensor:
    # regression: MSE against the class index as a float rating 0..4, as in the study
    if regress:
        return F.mse_loss(out, target.float())
    loss = F.cross_entropy(out, target)
    if expected_weight:  # RMSE is measured on the expected rating: train it too
        scale = torch.arange(out.shape[-1], dtype=out.dtype, device=out.device)
        expected = out.softmax(-1) @ scale
        rating = target @ scale if target.ndim == 2 else target.to(out.dtype)  # soft targets: their expectation
        loss = loss + expected_weight * F.mse_loss(expected, rating)
    return loss


def _backward(model: ReviewLSTM, ids: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor,
              expected_weight: float, micro_batch: int | None) -> float:
    """The batch's mean loss, its gradients accumulated: in one pass, or micro-batch by
    micro-batch from the embedding to the head, so that at batch 5000 the LSTM's saved
    activations and the embedded batch with its gradients are never all alive. The embedding dropout is drawn once for the whole batch, the same draw as one
    pass; the sum of the parts' gradients equals the batch's to float rounding."""
    n = len(target)
    if not micro_batch or n <= micro_batch:
        loss = _loss(model(ids, lengths), target, model.regress, expected_weight)
        loss.backward()
        return loss.item()
    keep = model.dropout_mask(ids)
    total = 0.0
    for at in range(0, n, micro_batch):
        part = slice(at, at + micro_batch)
        x = model.embedding(ids[part])
        if keep is not None:
            x = model.dropped(x, keep[part])
        out = model.output(model.features(x, lengths[part]))
        loss = _loss(out, target[part], model.regress, expected_weight) * (len(target[part]) / n)  # a mean's share
        loss.backward()
        total += loss.item()
    return total


def _evaluate(model: ReviewLSTM, split: Split, batch_size: int, num_classes: int,
              expected_weight: float = 0.0) -> dict[str, float]:
    """Validation loss and metrics (scalars only: the confusion matrix is left to evaluation)."""
    out = outputs(model, split.ids, split.lengths, batch_size)
    labels = torch.from_numpy(split.labels)
    row = {"valid_loss": _loss(out, labels, model.regress, expected_weight).item()}
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
    checkpoint: Path | None = None,
    encoder: dict[str, torch.Tensor] | None = None,
    teacher: np.ndarray | None = None,
    teacher_weight: float = 0.5,
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Train one variant; returns (state_dict on CPU, one history row per epoch).

    A history row: epoch (1-based, over all rounds), round (1-based), lr, train_loss (mean per
    sample over the epoch, the study's sum_loss/total), valid_loss and the validation metrics.
    Same seed, threads and device -> the same history and weights, bit for bit, on CPU.

    With cfg.holdout > 0, that fraction of the training rows (drawn with the seed) is not trained
    on: after every epoch its loss decides when to stop (cfg.patience epochs without a new best),
    and the returned weights are the best epoch's, marked "kept" in the history. The validation
    split is only ever reported on.

    `checkpoint`: a file written after every epoch; when it holds an earlier, interrupted call of
    the same run, training continues from its last epoch (on_epoch is called for the new epochs
    only). A checkpoint of another run, or one that cannot be read, is ignored and overwritten.
    The caller deletes it once the result is safely stored.
    """
    for split, name in ((train, "training"), (valid, "validation")):
        _check_split(split, name, vocab_size, num_classes)
    keep_freed_memory(one_arena=True)  # about twice as fast a step at batch 5000 (reviewlstm/allocator.py)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or available_cores())
    try:
        dev = resolve_device(device)
        torch.manual_seed(seed)  # initial weights and dropout masks
        shuffle = torch.Generator().manual_seed(seed)
        model = build_model(cfg, vocab_size, num_classes, embeddings, encoder).to(dev)
        # The ids stay where they are (in memory, or a memory-mapped file) and are gathered batch by
        # batch; the rows trained on are indices into them.
        rows, holdout = _hold_out(train, cfg.holdout, seed)
        lengths, labels = torch.from_numpy(train.lengths[rows]), torch.from_numpy(train.labels[rows])
        if teacher is not None:  # distillation: the labels mixed with a teacher's probabilities
            soft = torch.from_numpy(np.asarray(teacher, dtype=np.float32)[rows])
            labels = (1 - teacher_weight) * F.one_hot(labels, num_classes).float() + teacher_weight * soft
        n, bs, weight = len(rows), cfg.batch_size, cfg.expected_weight
        eval_bs = min(bs, cfg.micro_batch or bs)  # inference too holds a whole batch's activations
        best = {"loss": float("inf"), "epoch": 0, "state": None}  # early stopping's best epoch
        named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
        params = [p for _, p in named]
        scales = [cfg.encoder_lr if k.startswith(ENCODER) else 1.0 for k, _ in named]
        history: list[dict] = []
        run_id = resume = None
        if checkpoint is not None:
            run_id = run_fingerprint(cfg, train, valid, vocab_size, seed, embeddings, num_classes, dev, encoder)
            resume = read_checkpoint(checkpoint, run_id)
        if resume is not None:  # continue where the interrupted call stopped
            model.load_state_dict(resume["model"])
            history = list(resume["history"])
            torch.set_rng_state(resume["torch_rng"])
            shuffle.set_state(resume["shuffle_rng"])
            if dev.type == "cuda" and resume.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(resume["cuda_rng"], dev)
            best = resume.get("best") or best
        for round_no, rnd in enumerate(cfg.rounds, 1):
            done = 0  # epochs of this round already trained (by an interrupted call)
            if resume is not None:
                if round_no < resume["round"]:
                    continue
                if round_no == resume["round"]:
                    done = resume["round_epochs"]
            optimizer = adam(params, rnd.lr, scales)  # fresh each round, as in the study
            if done:
                optimizer.load_state_dict(resume["optimizer"])
            for epoch_in_round in range(done + 1, rnd.epochs + 1):
                if _stopped(best, history, cfg):
                    break
                model.train()
                if cfg.gradual_unfreeze:
                    _unfreeze(named, len(history) + 1)
                perm = torch.randperm(n, generator=shuffle)
                take, l, y = rows[perm.numpy()], lengths[perm], labels[perm]
                sum_loss = 0.0
                for batch in _batches(l, bs, cfg.bucket, shuffle):
                    xb = torch.from_numpy(train.ids[take[batch]]).to(dev)
                    lb, yb = l[batch].to(dev), y[batch].to(dev)
                    if cfg.bucket:  # similar lengths: cut the padding no review of the batch reaches
                        xb = xb[:, : max(int(lb.max()), 1)]
                    optimizer.zero_grad()
                    loss = _backward(model, xb, lb, yb, weight, cfg.micro_batch)
                    optimizer.step()
                    sum_loss += loss * len(yb)
                row = {"epoch": len(history) + 1, "round": round_no, "lr": rnd.lr, "train_loss": sum_loss / n}
                if holdout is not None:
                    row["holdout_loss"] = _evaluate(model, holdout, eval_bs, num_classes, weight)["valid_loss"]
                    if row["holdout_loss"] < best["loss"]:
                        best = {"loss": row["holdout_loss"], "epoch": row["epoch"],
                                "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
                row.update(_evaluate(model, valid, eval_bs, num_classes, weight))
                history.append(row)
                if checkpoint is not None:
                    save_checkpoint(checkpoint, {
                        "format": CHECKPOINT_FORMAT, "run": run_id, "round": round_no, "round_epochs": epoch_in_round,
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
                        "torch_rng": torch.get_rng_state(), "shuffle_rng": shuffle.get_state(),
                        "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                        "best": best,
                    })
                if on_epoch is not None:
                    on_epoch(row)
        if best["state"] is not None:  # early stopping: the best held-out epoch, not the last
            for row in history:
                row["kept"] = row["epoch"] == best["epoch"]
            return best["state"], history
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return state, history
    finally:
        torch.set_num_threads(previous_threads)


def _unfreeze(named: list[tuple[str, torch.Tensor]], epoch: int) -> None:
    """ULMFiT's gradual unfreezing for one LSTM layer: the head, then the LSTMs, then all."""
    frozen = ENCODER if epoch == 1 else ("embedding.",) if epoch == 2 else ()
    for k, p in named:
        p.requires_grad_(not k.startswith(frozen))


def _hold_out(train: Split, fraction: float, seed: int) -> tuple[np.ndarray, Split | None]:
    """(the rows to train on, held-out rows for early stopping), drawn with the seed."""
    if not fraction:
        return np.arange(len(train)), None
    order = np.random.default_rng(seed).permutation(len(train))
    cut = int(round(len(train) * fraction))
    if cut == 0 or cut == len(train):
        raise InputError(f"holdout={fraction} of {len(train)} training rows leaves nothing to train or to hold out")
    held = np.sort(order[:cut])
    return np.sort(order[cut:]), Split(train.ids[held], train.lengths[held], train.labels[held])


def _stopped(best: dict, history: list[dict], cfg: ModelConfig) -> bool:
    """Early stopping: patience epochs have passed since the best held-out loss."""
    return cfg.holdout > 0 and bool(history) and history[-1]["epoch"] - best["epoch"] >= cfg.patience


def _batches(lengths: torch.Tensor, batch_size: int, bucket: bool, generator: torch.Generator) -> list:
    """Row selections of one epoch over already shuffled rows: consecutive slices (the study);
    with bucket, rows sorted by length within pools of 50 batches, the batches in random order."""
    n = len(lengths)
    if not bucket:
        return [slice(i, i + batch_size) for i in range(0, n, batch_size)]
    pool = 50 * batch_size
    batches = []
    for start in range(0, n, pool):
        rows = start + torch.argsort(lengths[start : start + pool].cpu(), stable=True)
        batches += list(rows.split(batch_size))
    order = torch.randperm(len(batches), generator=generator)
    return [batches[i].numpy() for i in order]
