"""train: one model variant, its weights, config and per-epoch history."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from reviewlstm.config import BaselineConfig, EnsembleConfig, ModelConfig, TrainConfig
from reviewlstm.encode import read_split
from reviewlstm.storage import LAYERS, Record, file_of, remove_with_leftovers
from tasks.stage import folder_key, in_run, output, run_logger, stage_task


def epoch_line(name: str, row: dict, epochs: int, seconds: float) -> str:
    """One epoch of a history row as a log line: losses, the validation metrics, its seconds."""
    losses = [f"{k.replace('_', ' ')} {row[k]:.4f}" for k in ("train_loss", "holdout_loss", "valid_loss") if k in row]
    metrics = [f"{k} {row[k]:.4f}" for k in ("accuracy", "rmse_expected", "macro_f1") if k in row] or [f"rmse {row['rmse']:.4f}"]
    return f"{name}: epoch {row['epoch']}/{epochs}, {', '.join(losses + metrics)}, {seconds:.1f} s"


class Progress:
    """Training progress, epoch by epoch: a line in the run's logs (the Prefect UI) and a progress
    artifact, or outside a run the command's log line. Variants train at the same time, so the
    terminal gets whole lines, not a bar redrawn in place that the others would overwrite."""

    def __init__(self, name: str, epochs: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self.name, self.epochs, self.last, self.logger = name, max(epochs, 1), time.monotonic(), run_logger()
        self.artifact = create_progress_artifact(0.0, key=f"train-{name.lower().replace('_', '-')}",
                                                 description=f"training {name}") if in_run() else None
        self.echo = self.artifact is not None and sys.stderr.isatty()  # the command keeps Prefect's console quiet

    def __call__(self, row: dict) -> None:
        from prefect.artifacts import update_progress_artifact

        if self.artifact is not None:
            update_progress_artifact(self.artifact, 100.0 * row["epoch"] / self.epochs)
        now = time.monotonic()
        line = epoch_line(self.name, row, self.epochs, now - self.last)
        self.last = now
        self.logger.info(line)
        if self.echo:
            print(line, file=sys.stderr, flush=True)

    def finish(self) -> None:
        """Early stopping ends before the last planned epoch: the work is done all the same."""
        from prefect.artifacts import update_progress_artifact

        if self.artifact is not None:
            update_progress_artifact(self.artifact, 100.0)


@stage_task("train")
def train(encoded: Record, vocab: Record, glove: Record | None, pretrained: Record | None, name: str,
          cfg: ModelConfig, trainer: TrainConfig, num_classes: int, data_dir: str) -> Record:
    """Train one variant on the training split, validating after every epoch.

    A run that was killed mid-training continues from its last finished epoch: the checkpoint
    lives beside the layer's outputs under the stage's key, and goes once the model is stored.
    """
    from reviewlstm.child import train_in_child  # torch stays in the child (reviewlstm/child.py)

    inputs = dict(encoded=encoded, vocab=vocab, glove=glove, pretrained=pretrained, name=name, cfg=cfg,
                  trainer=trainer, num_classes=num_classes)
    checkpoint = checkpoint_path(data_dir, folder_key("train", inputs))
    with output("train", data_dir, **inputs) as out, out.scratch() as scratch:
        encoded_file = file_of(encoded, "encoded.parquet")
        embeddings = np.load(file_of(glove, "embeddings.npy")) if glove else None
        vocab_size = vocab["figures"]["vocab_size"]
        resumed = lambda done: run_logger().info(  # noqa: E731
            "train[%s]: resuming from the checkpoint after epoch %d of %d (%s)", name, done, cfg.epochs, checkpoint)
        # in a child process: variants trained at the same time must not share torch's state
        history = train_in_child(dict(
            cfg=cfg, train=read_split(encoded_file, "train", scratch), valid=read_split(encoded_file, "valid", scratch),
            vocab_size=vocab_size,
            seed=trainer.seed + cfg.seed, threads=trainer.threads, embeddings=embeddings, num_classes=num_classes,
            device=trainer.device, checkpoint=checkpoint,
            **({"encoder_file": str(file_of(pretrained, "encoder.pt"))} if pretrained else {}),
        ), out.path("model.pt"), on_epoch=(progress := Progress(name, cfg.epochs)), on_resume=resumed)
        progress.finish()
        out.json("model.json", {"name": name, "config": cfg.model_dump(mode="json"), "vocab_digest": vocab["digest"],
                                "vocab_size": vocab_size, "num_classes": num_classes, "history": history})
        last = next((row for row in history if row.get("kept")), history[-1] if history else {})
        out.figures = {k: round(v, 4) for k, v in last.items() if k in ("accuracy", "rmse", "train_loss")}
    remove_with_leftovers(checkpoint)  # the model is published: nothing left to resume
    return out.record


def checkpoint_path(data_dir: str, key: str) -> Path:
    """Where training under this stage key keeps its per-epoch checkpoint."""
    return Path(data_dir).resolve() / LAYERS["train"] / ".checkpoints" / f"{key}.pt"


@stage_task("train-baseline")
def train_baseline(reviews: Record, encoded: Record, name: str, cfg: BaselineConfig, num_classes: int,
                   data_dir: str) -> Record:
    """Fit the TF-IDF + logistic regression baseline on the training split's review text."""
    from reviewlstm import baseline

    with output("train-baseline", data_dir, reviews=reviews, encoded=encoded, name=name, cfg=cfg,
                num_classes=num_classes) as out:
        texts, labels = split_texts(reviews, encoded, "train")
        model = baseline.fit(cfg, texts, labels, num_classes)
        baseline.save(model, out.tmp)
        out.json("model.json", {"name": name, "config": cfg.model_dump(mode="json"), "num_classes": num_classes,
                                "features": int(model.coef.shape[1]), "history": []})
        out.figures = {"features": int(model.coef.shape[1])}
    return out.record


@stage_task("train-ensemble")
def train_ensemble(members: dict[str, Record], name: str, cfg: EnsembleConfig, num_classes: int,
                   data_dir: str) -> Record:
    """An ensemble has nothing to fit: its folder names its members' outputs and their weights."""
    from reviewlstm import ensemble

    with output("train-ensemble", data_dir, members=members, name=name, cfg=cfg, num_classes=num_classes) as out:
        out.json("model.json", ensemble.description(name, cfg, num_classes, {
            m: {"folder": f"../{Path(r['path']).name}", "digest": r["digest"]} for m, r in members.items()}))
        out.figures = {"members": len(members)}
    return out.record


def split_texts(reviews: Record, encoded: Record, split: str) -> tuple[list[str], np.ndarray]:
    """The ingested text and class of the rows of one split, in the encoded table's order."""
    rows = pl.read_parquet(file_of(encoded, "encoded.parquet"), columns=["split"])["split"] == split
    table = pl.read_parquet(file_of(reviews, "reviews.parquet"), columns=["text", "label"]).filter(rows)
    return table["text"].to_list(), table["label"].to_numpy()
