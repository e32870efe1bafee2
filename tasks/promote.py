"""promote: the run's best variant becomes the champion if it beats the current one.

Not cached, on purpose: its outcome depends on the registry (state outside the task's inputs: the
current champion, which another run may have changed) and each promotion must name the flow run
that made it. It is cheap (a JSON file, at most one scoring pass of the old champion) and
idempotent: run again with the same models, it finds the champion already in place.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from reviewlstm import registry
from reviewlstm.config import PipelineConfig
from reviewlstm.predict import Preprocess
from reviewlstm.storage import Record, file_of
from tasks.publish import metrics_of


def _relative(path: str, data_dir: str) -> str:
    try:
        return os.path.relpath(path, Path(data_dir).resolve())
    except ValueError:  # another drive (Windows)
        return path


@task(name="promote", cache_policy=NO_CACHE, persist_result=False)
def promote(reviews: Record, encoded: Record, vocab: Record, evaluation: Record, models: dict[str, Record],
            cfg: PipelineConfig, data_dir: str) -> dict:
    """Compare the best variant by cfg.evaluate.select_by with the champion; register it if better,
    naming this flow run; the verdict as an artifact."""
    from prefect.runtime import flow_run

    run = {"id": flow_run.get_id(), "name": flow_run.get_name(), "flow": flow_run.get_flow_name()}
    decision = decide(reviews, encoded, vocab, evaluation, models, cfg, data_dir, run)
    verdict = "promoted to champion" if decision["promoted"] else "kept the champion"
    create_markdown_artifact(
        f"# Promotion: {verdict}\n\n{decision['reason']}\n\n"
        f"| | |\n|---|---|\n| best variant | {decision['variant']} |\n| {decision['select_by']} | {decision['score']:.4f} |\n"
        f"| previous champion | {decision['previous'] or '-'} |\n| champion now | {decision['champion']} |\n",
        key="promotion", description=f"{decision['variant']}: {verdict}")
    return decision


def decide(reviews: Record, encoded: Record, vocab: Record, evaluation: Record, models: dict[str, Record],
           cfg: PipelineConfig, data_dir: str, run: dict | None) -> dict:
    """The promotion itself; `run` the flow run that made it (None: a command with no server)."""
    split = pl.read_parquet(file_of(encoded, "encoded.parquet"), columns=["split"])["split"] == "valid"
    valid = pl.read_parquet(file_of(reviews, "reviews.parquet")).filter(split)
    cand = registry.Candidate(
        metrics=metrics_of(evaluation),
        models=models,
        vocab=vocab,
        prep=Preprocess.of(cfg),
        valid_texts=valid["text"].to_list(),
        valid_labels=valid["label"].to_numpy(),
        select_by=cfg.evaluate.select_by,
        run=run,
        sources={"vocab": _relative(vocab["path"], data_dir), "metrics": _relative(evaluation["path"], data_dir),
                 **{f"model[{n}]": _relative(r["path"], data_dir) for n, r in models.items()}},
    )
    return registry.promote(data_dir, cand)
