"""What the output folders hold for a plan, found without running anything (and without Prefect):
which stages a run would reuse and which it would run; the summary of a run with nothing to do;
the trained model a variant's current settings lead to (`predict --model`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from flows.plan import Step, plan, sources, summary
from reviewlstm import registry
from reviewlstm.config import PipelineConfig, TrainConfig
from reviewlstm.cores import available_cores
from reviewlstm.errors import InputError
from reviewlstm.predict import Preprocess
from reviewlstm.storage import Record, file_of, read_record, verify
from tasks.keys import folder


THREADS_SEARCHED = 64  # thread counts a model may have trained with, for predict --model


def _walk(raw: str | None, data_dir: str, cfg: PipelineConfig, until: str | None) -> tuple[list[dict[str, Any]], dict[str, Record]]:
    records = sources(raw, data_dir, cfg)
    rows = []
    for step in plan(cfg, until):
        stale_inputs = [s for s in step.needs() if s not in records]
        if stale_inputs:
            rows.append({"stage": step.name, "status": "stale", "reason": f"input {stale_inputs[0]} is stale"})
            continue
        inputs = step.inputs(records, data_dir)
        record = read_record(folder(step.key, inputs))
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
    return _walk(raw, data_dir, cfg, None)[0]


def fresh_summary(raw: str | None, data_dir: str, cfg: PipelineConfig, until: str, promote: bool) -> dict[str, Any] | None:
    """What `pipeline` would return when every step is fresh and, with `promote`, promotion would
    keep the champion without scoring it (registry.kept); None when a run has something to do."""
    rows, records = _walk(raw, data_dir, cfg, until)
    if any(r["status"] != "fresh" for r in rows):
        return None
    result = summary(cfg, records, [{"stage": r["stage"], "status": "cached", "seconds": 0.0, "output": r["output"]}
                                    for r in rows])
    if "evaluate" not in records:
        return result
    result["metrics"] = json.loads(file_of(records["evaluate"], "metrics.json").read_text())
    if promote:
        result["promotion"] = _kept(data_dir, cfg, result["metrics"], records)
        if result["promotion"] is None:  # a promotion to decide: that runs, and shows in the UI
            return None
    return result


def _kept(data_dir: str, cfg: PipelineConfig, metrics: dict[str, Any], records: dict[str, Record]) -> dict[str, Any] | None:
    """registry.promote's decision when it keeps the champion without scoring it, else None."""
    split = pl.read_parquet(file_of(records["encode"], "encoded.parquet"), columns=["split"])["split"] == "valid"
    valid = pl.read_parquet(file_of(records["ingest"], "reviews.parquet"), columns=["text", "label"]).filter(split)
    digests = {name: records[f"train[{name}]"]["digest"] for name in metrics}
    return registry.kept(data_dir, metrics, cfg.evaluate.select_by, digests,
                         registry.validation_digest(valid["text"].to_list(), valid["label"].to_numpy()))


def _trained(step: Step, records: dict[str, Record], data_dir: str) -> tuple[Path, Record | None]:
    """The step's output folder and record for these settings. A model's key holds the thread
    count that trained it (float sums, and so weights, depend on it), and that count depends on
    how many variants a run trained at once: any count that trained these settings will do, the
    one the whole configuration resolves first."""
    inputs = step.inputs(records, data_dir)
    out = folder(step.key, inputs)
    record = read_record(out)
    for threads in range(1, max(THREADS_SEARCHED, available_cores()) + 1) if record is None else []:
        if isinstance(inputs.get("trainer"), TrainConfig):
            other = {**inputs, "trainer": inputs["trainer"].model_copy(update={"threads": threads})}
        elif "threads" in inputs:  # the language model's
            other = {**inputs, "threads": threads}
        else:
            break
        if (found := read_record(folder(step.key, other))) is not None:
            return folder(step.key, other), found
    return out, record


def variant_ref(variant: str, cfg: PipelineConfig, data_dir: str, raw: str | None = None) -> dict[str, Any]:
    """The trained model of `variant` that the current settings and data lead to, with its vocabulary."""
    if variant not in cfg.variants:
        raise InputError(f"--model {variant!r}: no such variant; valid: {', '.join(cfg.variants)}")
    # the whole config's plan: a train key holds the thread count the full run resolved
    steps = {s.name: s for s in plan(cfg, "train")}
    needed, todo = set(), [f"train[{variant}]"]
    while todo:  # the variant's step and every step it reads from (an ensemble's members too)
        name = todo.pop()
        if name in steps and name not in needed:
            needed.add(name)
            todo.extend(steps[name].needs())
    records = sources(raw, data_dir, cfg)
    for step in (s for s in steps.values() if s.name in needed):
        out, record = _trained(step, records, data_dir)
        if record is None:
            raise InputError(f"{out}: no {step.name} output for the current settings and data; expected a trained "
                             f"{variant!r} model (run `reviewlstm run --variant {variant}` first)")
        if not verify(record):
            missing = [f for f in ("model.pt", "model.json") if step.stage == "train" and not (out / f).is_file()]
            what = f"{out / missing[0]}: no such file" if missing else f"{out}: changed since it was written"
            raise InputError(f"{what}; expected the {step.name} output (run `reviewlstm run --variant {variant}` again)")
        records[step.name] = record
    return {"model_dir": records[f"train[{variant}]"]["path"], "vocab_dir": records["prune"]["path"],
            "prep": Preprocess.of(cfg).model_dump(mode="json"), "label": f"variant {variant} (current settings)",
            "variant": variant}
