"""pretrain: a language model of the training split's text, whose encoder the variants start from."""

from __future__ import annotations

import numpy as np

from reviewlstm.config import LMConfig
from reviewlstm.encode import read_split
from reviewlstm.storage import Record, file_of
from tasks.stage import output, run_logger, stage_task


@stage_task("pretrain")
def pretrain(encoded: Record, vocab: Record, glove: Record | None, cfg: LMConfig, seed: int, threads: int,
             data_dir: str) -> Record:
    """Train the encoder as next- and previous-word predictor on the training rows (never the
    validation rows), in a child process as training does; save its weights."""
    from reviewlstm.child import train_in_child

    logger = run_logger()
    with output("pretrain", data_dir, encoded=encoded, vocab=vocab, glove=glove, cfg=cfg, seed=seed,
                threads=threads) as out, out.scratch() as scratch:
        train = read_split(file_of(encoded, "encoded.parquet"), "train", scratch)
        history = train_in_child(dict(
            lm=cfg, train=train, vocab_size=vocab["figures"]["vocab_size"],
            embeddings=np.load(file_of(glove, "embeddings.npy")) if glove else None, seed=seed, threads=threads,
        ), out.path("encoder.pt"), job_kind="pretrain",
            on_epoch=lambda r: logger.info("pretrain: epoch %d/%d, loss %.4f", r["epoch"], cfg.epochs, r["train_loss"]))
        out.json("lm.json", {"config": cfg.model_dump(mode="json"), "vocab_digest": vocab["digest"], "history": history})
        out.figures = {"train_loss": round(history[-1]["train_loss"], 4), "epochs": len(history)}
    return out.record
