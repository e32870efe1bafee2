"""clean: the study's cleaning rules over every review's text."""

from __future__ import annotations

import polars as pl

from reviewlstm import text
from reviewlstm.config import CleanConfig
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("clean")
def clean(reviews: Record, cfg: CleanConfig, data_dir: str) -> Record:
    """Strip non-ASCII, punctuation and digits and lowercase the text, streamed in batches."""
    with output("clean", data_dir, reviews=reviews, cfg=cfg) as out:
        reviews_file = file_of(reviews, "reviews.parquet")
        out.parquet("clean.parquet", pl.scan_parquet(reviews_file).with_columns(text=text.clean(pl.col("text"), cfg)))
        out.figures = {"rows": pl.scan_parquet(reviews_file).select(pl.len()).collect().item()}
    return out.record
