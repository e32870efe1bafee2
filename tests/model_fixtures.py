"""Tiny trained models laid out as the train and prune stages write them, made with the library
alone (no Prefect): for the predict and registry tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from helpers import SAMPLE
from reviewlstm import text, vocab
from reviewlstm.config import CleanConfig, ModelConfig, Round, TokenizeConfig
from reviewlstm.encode import Split, encode_tokens, split_labels
from reviewlstm.fingerprint import dir_digest
from reviewlstm.predict import Preprocess
from reviewlstm.train import train_model


@dataclass
class Trained:
    name: str
    model: dict  # a train record: path, digest
    vocab: dict  # a prune record: path, digest
    prep: Preprocess
    valid_texts: list[str]
    valid_labels: np.ndarray


def texts_and_labels(rows=SAMPLE * 3) -> tuple[list[str], np.ndarray]:
    return [f"{t} {r}" for t, r, _ in rows], np.array([int(s) - 1 for _, _, s in rows], dtype=np.int64)


def make_model(root: Path, name: str = "fixed", *, head: str = "classify", min_count: int = 1, seed: int = 0,
               epochs: int = 2, max_len: int = 20, rows=SAMPLE * 3) -> Trained:
    prep = Preprocess(clean=CleanConfig(), tokenize=TokenizeConfig(drop_whitespace=True), max_len=max_len)
    texts, labels = texts_and_labels(rows)
    tokens = text.tokenize(text.clean(pl.Series(texts), prep.clean).to_list(), prep.tokenize)
    table = vocab.vocabulary(vocab.count_tokens(tokens), min_count)
    vocab_dir = root / f"vocab-{name}-{min_count}"
    vocab_dir.mkdir(parents=True, exist_ok=True)
    table.write_parquet(vocab_dir / "vocab.parquet", statistics=False)
    vocab_record = {"stage": "prune", "path": str(vocab_dir), "digest": dir_digest(vocab_dir, skip=["record.json"])}

    index = dict(zip(table["word"].to_list(), table["id"].to_list()))
    ids, lengths = encode_tokens(tokens, index, max_len)
    valid = split_labels(labels, 0.25, 0, False)
    part = lambda m: Split(ids[m].astype(np.int64), lengths[m].astype(np.int64), labels[m])  # noqa: E731
    cfg = ModelConfig(head=head, embedding_dim=8, hidden_dim=6, batch_size=16, rounds=[Round(epochs=epochs, lr=0.05)])
    state, history = train_model(cfg, part(~valid), part(valid), len(table), seed=seed, threads=1)
    model_dir = root / f"model-{name}-{seed}-{head}-{min_count}"
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state, model_dir / "model.pt")
    (model_dir / "model.json").write_text(json.dumps({
        "name": name, "config": cfg.model_dump(mode="json"), "vocab_digest": vocab_record["digest"],
        "vocab_size": len(table), "num_classes": 5, "history": history}))
    model_record = {"stage": "train", "path": str(model_dir), "digest": dir_digest(model_dir)}
    return Trained(name, model_record, vocab_record, prep,
                   [t for t, v in zip(texts, valid) if v], labels[valid])
