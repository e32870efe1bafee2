"""The preprocessing stages stream their tables (polars lazy frames, sunk to Parquet batch by
batch); on every real review they give what the whole-table calls give, and the same bytes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import REAL_DATA, needs_real_data
from reviewlstm import encode, ingest, text, vocab
from reviewlstm.config import profile
from reviewlstm.storage import Output


@pytest.fixture(scope="module")
def real():
    cfg = profile("best")
    return cfg, ingest.reviews(ingest.read_table(str(REAL_DATA)), cfg.ingest, source=str(REAL_DATA))


@needs_real_data
def test_streamed_stages_equal_the_whole_table_calls(real, tmp_path):
    cfg, reviews = real
    reviews.write_parquet(tmp_path / "reviews.parquet", statistics=False)
    out = Output(tmp_path)
    # ingest: checked in one pass, then streamed from the CSV; the same bytes as the whole table
    out.parquet("streamed.parquet", ingest.load(REAL_DATA, cfg.ingest))
    assert (tmp_path / "streamed.parquet").read_bytes() == (tmp_path / "reviews.parquet").read_bytes()
    # clean and tokenize, lazily and sunk to a file, against the whole column at once
    out.parquet("clean.parquet", pl.scan_parquet(tmp_path / "reviews.parquet").with_columns(text=text.clean(pl.col("text"), cfg.clean)))
    cleaned = text.clean(reviews["text"], cfg.clean)
    assert pl.read_parquet(tmp_path / "clean.parquet")["text"].equals(cleaned)
    tokens_file = "tokens.parquet"
    out.parquet(tokens_file, pl.scan_parquet(tmp_path / "clean.parquet")
                .select(text.tokenized(pl.col("text"), cfg.tokenize).alias("tokens"), "label"))
    token_lists = text.tokenize(cleaned.to_list(), cfg.tokenize)
    streamed = pl.read_parquet(tmp_path / tokens_file)
    assert streamed["tokens"].to_list() == token_lists
    # counting in polars, against a Counter over the lists: the same counts in the same order
    counts = vocab.count_tokens(pl.scan_parquet(tmp_path / tokens_file))
    expected: dict[str, int] = {}
    for words in token_lists:
        for w in words:
            expected[w] = expected.get(w, 0) + 1
    assert list(counts.items()) == list(expected.items())
    # encode, lazily, against encode_tokens and split_labels on the whole lists
    table = vocab.vocabulary(counts, cfg.prune.min_count)
    out.parquet("encoded.parquet", encode.encode(pl.scan_parquet(tmp_path / tokens_file), table, cfg.encode))
    got = pl.read_parquet(tmp_path / "encoded.parquet")
    ids, lengths = encode.encode_tokens(token_lists, dict(zip(table["word"], table["id"])), cfg.encode.max_len)
    labels = streamed["label"].to_numpy()
    valid = encode.split_labels(labels, cfg.encode.valid_fraction, cfg.encode.seed, cfg.encode.stratify)
    assert np.array_equal(got["ids"].to_numpy(), ids) and np.array_equal(got["length"].to_numpy(), lengths)
    assert np.array_equal(got["label"].to_numpy(), labels) and got["split"].to_list() == np.where(valid, "valid", "train").tolist()
    # each split copied into a memory-mapped file (what training reads): the arrays to_split gives
    for name in ("train", "valid"):
        mapped, whole = encode.read_split(tmp_path / "encoded.parquet", name, tmp_path), encode.to_split(got, name)
        assert isinstance(mapped.ids, np.memmap) and mapped.ids.dtype == whole.ids.dtype
        assert all(np.array_equal(getattr(mapped, k), getattr(whole, k)) for k in ("ids", "lengths", "labels"))
    # a lazy table sunk to a file: the same bytes as the collected table written
    encode.encode(streamed, table, cfg.encode).write_parquet(tmp_path / "eager.parquet", statistics=False)
    assert (tmp_path / "eager.parquet").read_bytes() == (tmp_path / "encoded.parquet").read_bytes()
