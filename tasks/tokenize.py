"""tokenize: cleaned text -> spaCy tokens per review."""

import polars as pl

from reviewlstm import text
from reviewlstm.config import TokenizeConfig
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("tokenize")
def tokenize(cleaned: Record, cfg: TokenizeConfig, data_dir: str) -> Record:
    """Split every cleaned review into spaCy English tokens, in batches."""
    with output("tokenize", data_dir, cleaned=cleaned, cfg=cfg) as out:
        table = pl.read_parquet(file_of(cleaned, "clean.parquet"))
        tokens = pl.Series("tokens", text.tokenize(table["text"].to_list(), cfg), dtype=pl.List(pl.Utf8))
        out.parquet("tokens.parquet", pl.DataFrame([tokens, table["label"]]))
        out.figures = {"rows": len(table), "mean_tokens": round(float(tokens.list.len().mean()), 2)}
    return out.record
