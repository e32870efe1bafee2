"""encode: tokens -> fixed-length ids, true lengths and the train/validation split."""

import polars as pl

from reviewlstm import encode as lib
from reviewlstm.config import EncodeConfig
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("encode")
def encode(tokens: Record, vocab: Record, cfg: EncodeConfig, data_dir: str) -> Record:
    """Map tokens to vocabulary ids, pad or cut to max_len, and split 80/20 by seed."""
    with output("encode", data_dir, tokens=tokens, vocab=vocab, cfg=cfg) as out:
        table = pl.read_parquet(file_of(tokens, "tokens.parquet"))
        encoded = lib.encode(table, pl.read_parquet(file_of(vocab, "vocab.parquet")), cfg)
        out.parquet("encoded.parquet", encoded)
        out.figures = lib.figures(encoded)
    return out.record
