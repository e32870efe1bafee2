"""encode: tokens -> fixed-length ids, true lengths and the train/validation split."""

from __future__ import annotations

import polars as pl

from reviewlstm import encode as lib
from reviewlstm.config import EncodeConfig
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("encode")
def encode(tokens: Record, vocab: Record, cfg: EncodeConfig, data_dir: str) -> Record:
    """Map tokens to vocabulary ids, pad or cut to max_len, and split 80/20 by seed; streamed."""
    with output("encode", data_dir, tokens=tokens, vocab=vocab, cfg=cfg) as out:
        table = pl.scan_parquet(file_of(tokens, "tokens.parquet"))
        out.parquet("encoded.parquet", lib.encode(table, pl.read_parquet(file_of(vocab, "vocab.parquet")), cfg))
        out.figures = lib.figures(pl.scan_parquet(out.path("encoded.parquet")))
    return out.record
