"""Reviews as fixed-length id sequences with their true lengths, split into train and validation.

The study pads after the text with 0 and truncates at `max_len`; a review's length is its token
count capped at `max_len`. Unknown words map to 1 (UNK).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path

import numpy as np
import polars as pl

from reviewlstm.config import EncodeConfig
from reviewlstm.storage import STREAM_ROWS

PAD, UNK = 0, 1
SLICE = 10_000  # rows whose tokens are Python strings at once (a batch can be a whole table)


@dataclass(frozen=True)
class Split:
    """One split as arrays: ids (n, max_len), lengths (n,), labels (n,) as classes 0..4; `file`:
    the .npy the ids are memory-mapped from (read_split), which is how the split pickles."""

    ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    file: str | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __reduce__(self):
        if self.file:  # to a training child: the file's name, not a copy of every id
            return _mapped, (self.file, self.lengths, self.labels)
        return Split, (self.ids, self.lengths, self.labels)


def _mapped(file: str, lengths: np.ndarray, labels: np.ndarray) -> Split:
    return Split(np.load(file, mmap_mode="r"), lengths, labels, file)


def encode_tokens(tokens: list[list[str]], index: dict[str, int], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Token lists -> (ids padded/truncated to max_len, true lengths capped at max_len).

    All rows' ids are looked up in one pass and laid into the padded matrix at once (row-major
    order is each row's tokens in turn): a numpy assignment per row cost more than the lookups."""
    lengths = np.fromiter(map(len, tokens), dtype=np.int32, count=len(tokens))
    np.minimum(lengths, max_len, out=lengths)
    kept = chain.from_iterable(words if len(words) <= max_len else words[:max_len] for words in tokens)
    flat = np.fromiter(map(index.get, kept, repeat(UNK)), dtype=np.int32, count=int(lengths.sum()))
    ids = np.zeros((len(tokens), max_len), dtype=np.int32)
    ids[np.arange(max_len) < lengths[:, None]] = flat
    return ids, lengths


def split_labels(labels: np.ndarray, valid_fraction: float, seed: int, stratify: bool) -> np.ndarray:
    """A seeded boolean mask, True for validation rows (per class when stratified)."""
    rng = np.random.default_rng(seed)
    valid = np.zeros(len(labels), dtype=bool)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify else [np.arange(len(labels))]
    for rows in groups:
        chosen = rng.permutation(rows)[: int(round(len(rows) * valid_fraction))]
        valid[chosen] = True
    return valid


def encode(tokens: pl.DataFrame | pl.LazyFrame, vocab: pl.DataFrame, cfg: EncodeConfig) -> pl.DataFrame | pl.LazyFrame:
    """Tokens table (tokens, label) + vocabulary (id, word) -> ids, length, label, split; a lazy
    table stays lazy, its rows encoded batch by batch (only the labels are read whole, for the split)."""
    lazy = tokens.lazy()
    index = dict(zip(vocab["word"].to_list(), vocab["id"].to_list()))
    labels = lazy.select("label").collect()["label"].to_numpy()
    valid = np.flatnonzero(split_labels(labels, cfg.valid_fraction, cfg.seed, cfg.stratify))
    ids = pl.Array(pl.Int32, cfg.max_len)

    def batch(s: pl.Series) -> pl.Series:  # SLICE rows' tokens as Python strings at a time
        parts = [encode_tokens(s.slice(i, SLICE).to_list(), index, cfg.max_len)[0] for i in range(0, len(s), SLICE)]
        return pl.Series("ids", np.concatenate(parts) if parts else np.zeros((0, cfg.max_len), np.int32), dtype=ids)

    encoded = lazy.with_row_index("row").select(
        pl.col("tokens").map_batches(batch, return_dtype=ids, is_elementwise=True).alias("ids"),
        pl.col("tokens").list.len().clip(upper_bound=cfg.max_len).cast(pl.Int32).alias("length"),
        pl.col("label").cast(pl.Int8),
        pl.when(pl.col("row").is_in(pl.Series(valid, dtype=pl.UInt32).implode())).then(pl.lit("valid")).otherwise(pl.lit("train"))
        .alias("split"),
    )
    return encoded if isinstance(tokens, pl.LazyFrame) else encoded.collect()


def to_split(encoded: pl.DataFrame, name: str) -> Split:
    """The rows of one split ("train" or "valid"): ids as stored, int32 (torch's embedding takes
    them as they are, trains bit-identically, at half the memory of int64), lengths and labels int64."""
    part = encoded.filter(pl.col("split") == name)
    return Split(
        ids=part["ids"].to_numpy().astype(np.int32, copy=False),
        lengths=part["length"].to_numpy().astype(np.int64),
        labels=part["label"].to_numpy().astype(np.int64),
    )


def read_split(path: str | Path, name: str, folder: str | Path) -> Split:
    """One split of an encoded Parquet file, its ids copied batch by batch into folder/NAME-ids.npy
    and memory-mapped from there: training and evaluation gather their batches from the file, so
    no process holds every row (the same values as to_split)."""
    rows = pl.scan_parquet(path).filter(pl.col("split") == name)
    meta = rows.select(pl.col("length").cast(pl.Int64), pl.col("label").cast(pl.Int64)).collect()
    max_len = rows.collect_schema()["ids"].size
    file = str(Path(folder) / f"{name}-ids.npy")
    ids = np.lib.format.open_memmap(file, mode="w+", dtype=np.int32, shape=(len(meta), max_len))
    at = 0
    for batch in rows.select("ids").collect_batches(chunk_size=STREAM_ROWS):
        ids[at : at + len(batch)] = batch["ids"].to_numpy()
        at += len(batch)
    ids.flush()
    del ids
    return _mapped(file, meta["length"].to_numpy(), meta["label"].to_numpy())


def figures(encoded: pl.DataFrame | pl.LazyFrame) -> dict[str, float]:
    """Rows per split, mean length, rows cut at max_len; of a lazy table without reading its ids."""
    lazy = encoded.lazy()
    max_len = lazy.collect_schema()["ids"].size
    row = lazy.select(
        train_rows=(pl.col("split") == "train").sum(), valid_rows=(pl.col("split") == "valid").sum(),
        mean_length=pl.col("length").mean(), at_max_len=(pl.col("length") == max_len).sum(),
    ).collect().row(0, named=True)
    return {"train_rows": int(row["train_rows"]), "valid_rows": int(row["valid_rows"]),
            "mean_length": round(float(row["mean_length"]), 2), "at_max_len": int(row["at_max_len"])}
