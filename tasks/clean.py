"""clean: the study's cleaning rules over every review's text."""

import polars as pl

from reviewlstm import text
from reviewlstm.config import CleanConfig
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("clean")
def clean(reviews: Record, cfg: CleanConfig, data_dir: str) -> Record:
    """Strip non-ASCII, punctuation and digits and lowercase the text."""
    with output("clean", data_dir, reviews=reviews, cfg=cfg) as out:
        table = pl.read_parquet(file_of(reviews, "reviews.parquet"))
        out.parquet("clean.parquet", table.with_columns(text=text.clean(table["text"], cfg)))
        out.figures = {"rows": len(table)}
    return out.record
