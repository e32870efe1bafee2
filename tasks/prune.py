"""prune: drop rare tokens; what remains is the vocabulary."""

from __future__ import annotations

import polars as pl

from reviewlstm import vocab
from reviewlstm.config import PruneConfig
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("prune")
def prune(tokens: Record, cfg: PruneConfig, data_dir: str) -> Record:
    """Count tokens over the corpus; keep those seen at least min_count times as the vocabulary."""
    with output("prune", data_dir, tokens=tokens, cfg=cfg) as out:
        counts = vocab.count_tokens(pl.scan_parquet(file_of(tokens, "tokens.parquet")))
        table = vocab.vocabulary(counts, cfg.min_count)
        out.parquet("vocab.parquet", table)
        out.figures = vocab.figures(counts, table)
    return out.record
