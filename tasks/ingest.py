"""ingest: the user's raw table -> validated (text, label) Parquet."""

import polars as pl

from reviewlstm import ingest as lib
from reviewlstm.config import IngestConfig
from reviewlstm.storage import Record
from tasks.stage import output, stage_task


@stage_task("ingest")
def ingest(raw: Record, cfg: IngestConfig, data_dir: str) -> Record:
    """Read the reviews CSV/TSV/Parquet, validate text and label columns, store as Parquet; streamed."""
    with output("ingest", data_dir, raw=raw, cfg=cfg) as out:
        out.parquet("reviews.parquet", lib.load(raw["path"], cfg))  # checked, then streamed
        out.figures = lib.figures(pl.scan_parquet(out.path("reviews.parquet")))
    return out.record
