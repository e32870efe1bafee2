"""Which stages a run would reuse and which it would run, found without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.pipeline import plan, sources
from reviewlstm.config import PipelineConfig
from reviewlstm.storage import read_record, stage_dir, verify
from tasks.stage import folder_key


def stage_status(raw: str | None, data_dir: str, cfg: PipelineConfig) -> list[dict[str, Any]]:
    """One row per step: fresh (a run would reuse it) or stale, and why."""
    records = sources(raw, data_dir, cfg)
    rows = []
    for step in plan(cfg):
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
    return rows
