"""tokenize: cleaned text -> spaCy tokens per review."""

from __future__ import annotations

import polars as pl

from reviewlstm import text
from reviewlstm.config import TokenizeConfig
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("tokenize")
def tokenize(cleaned: Record, cfg: TokenizeConfig, data_dir: str) -> Record:
    """Split every cleaned review into spaCy English tokens, streamed in batches."""
    with output("tokenize", data_dir, cleaned=cleaned, cfg=cfg) as out:
        source = pl.scan_parquet(file_of(cleaned, "clean.parquet"))
        out.parquet("tokens.parquet", source.select(text.tokenized(pl.col("text"), cfg).alias("tokens"), "label"))
        lengths = pl.scan_parquet(out.path("tokens.parquet")).select(n=pl.len(), mean=pl.col("tokens").list.len().mean())
        figures = lengths.collect().row(0, named=True)
        out.figures = {"rows": figures["n"], "mean_tokens": round(float(figures["mean"] or 0.0), 2)}
    return out.record
