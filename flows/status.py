"""Which stages a run would reuse and which it would run, found without running anything; and
the summary of a run with nothing to do, printed without a Prefect run (or a server to hold it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from flows.plan import STAGES, plan, sources
from reviewlstm import registry
from reviewlstm.config import PipelineConfig
from reviewlstm.storage import Record, file_of, read_record, stage_dir, verify
from tasks.keys import folder_key


def _walk(raw: str | None, data_dir: str, cfg: PipelineConfig, until: str) -> tuple[list[dict[str, Any]], dict[str, Record]]:
    records = sources(raw, data_dir, cfg)
    rows = []
    for step in plan(cfg, until):
        stale_inputs = [s for s in step.needs() if s not in records]
        if stale_inputs:
            rows.append({"stage": step.name, "status": "stale", "reason": f"input {stale_inputs[0]} is stale"})
            continue
        inputs = step.inputs(records, data_dir)
        record = read_record(stage_dir(Path(data_dir).resolve(), step.stage, folder_key(step.key, inputs)))
        if record is None:
            reason = "no output for these inputs, settings and code"
        elif not verify(record):
            reason = "output was changed or deleted"
        else:
            records[step.name] = record
            rows.append({"stage": step.name, "status": "fresh", "reason": "", "output": record["path"]})
            continue
        rows.append({"stage": step.name, "status": "stale", "reason": reason})
    return rows, records


def stage_status(raw: str | None, data_dir: str, cfg: PipelineConfig) -> list[dict[str, Any]]:
    """One row per step: fresh (a run would reuse it) or stale, and why."""
    return _walk(raw, data_dir, cfg, STAGES[-1])[0]


def fresh_summary(raw: str | None, data_dir: str, cfg: PipelineConfig, until: str, promote: bool) -> dict[str, Any] | None:
    """What `pipeline` would return when every step is fresh and, with `promote`, the best
    variant is already the champion; None when a run has something to do."""
    rows, records = _walk(raw, data_dir, cfg, until)
    if any(r["status"] != "fresh" for r in rows):
        return None
    summary: dict[str, Any] = {
        "profile": cfg.profile, "raw": records["raw"]["path"],
        "stages": [{"stage": r["stage"], "status": "cached", "seconds": 0.0, "output": r["output"]} for r in rows],
        "figures": {r["stage"]: records[r["stage"]]["figures"] for r in rows if r["stage"] != "evaluate"},
    }
    if "evaluate" not in records:
        return summary
    summary["metrics"] = json.loads(file_of(records["evaluate"], "metrics.json").read_text())
    if promote:
        summary["promotion"] = _kept(data_dir, cfg, summary["metrics"], records)
        if summary["promotion"] is None:  # a promotion to decide: that runs, and shows in the UI
            return None
    return summary


def _kept(data_dir: str, cfg: PipelineConfig, metrics: dict[str, Any], records: dict[str, Record]) -> dict[str, Any] | None:
    """registry.promote's decision when the run's best variant is already the champion, else None."""
    select_by = cfg.evaluate.select_by
    name = registry.best_variant(metrics, select_by)
    current = registry.champion(data_dir)
    if current is None or current.get("model_digest") != records[f"train[{name}]"]["digest"]:
        return None
    split = pl.read_parquet(file_of(records["encode"], "encoded.parquet"), columns=["split"])["split"] == "valid"
    valid = pl.read_parquet(file_of(records["ingest"], "reviews.parquet"), columns=["text", "label"]).filter(split)
    if current.get("validation", {}).get("digest") != registry.validation_digest(valid["text"].to_list(), valid["label"].to_numpy()):
        return None
    return {"variant": name, "select_by": select_by, "score": float(metrics[name][select_by]), "previous": current["id"],
            "previous_score": current.get("metrics", {}).get(select_by), "promoted": False, "champion": current["id"],
            "reason": "already the champion"}
