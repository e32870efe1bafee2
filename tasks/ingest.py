"""ingest: the user's raw table -> validated (text, label) Parquet."""

from reviewlstm import ingest as lib
from reviewlstm.config import IngestConfig
from reviewlstm.storage import Record
from tasks.stage import output, stage_task


@stage_task("ingest")
def ingest(raw: Record, cfg: IngestConfig, data_dir: str) -> Record:
    """Read the reviews CSV/TSV/Parquet, validate text and label columns, store as Parquet."""
    with output("ingest", data_dir, raw=raw, cfg=cfg) as out:
        reviews = lib.reviews(lib.read_table(raw["path"], cfg), cfg, source=raw["path"])
        out.parquet("reviews.parquet", reviews)
        out.figures = lib.figures(reviews)
    return out.record
