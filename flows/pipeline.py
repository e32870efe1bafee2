"""The pipeline as one Prefect flow: a plan of steps, each a cached stage task.

`plan` is the single description of which stage feeds which; the flow executes it and
`reviewlstm status` walks it without running anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect import flow, get_run_logger

from reviewlstm.config import DEFAULT_PROFILE, PipelineConfig, profile as named_profile
from reviewlstm.paths import find_raw, raw_record
from reviewlstm.storage import Record, verify
from tasks.clean import clean
from tasks.encode import encode
from tasks.ingest import ingest
from tasks.prune import prune
from tasks.tokenize import tokenize

STAGES = ("ingest", "clean", "tokenize", "prune", "encode")
Stage = Literal["ingest", "clean", "tokenize", "prune", "encode"]


@dataclass
class Step:
    """One task call: records it takes from earlier steps, and its own parameters."""

    name: str
    stage: str
    task: Any
    upstream: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)

    def inputs(self, records: dict[str, Record], data_dir: str) -> dict[str, Any]:
        return {**{p: records[s] for p, s in self.upstream.items()}, **self.params, "data_dir": data_dir}


def plan(cfg: PipelineConfig, until: str = STAGES[-1]) -> list[Step]:
    """Every step from ingest up to and including the stage `until`, in run order."""
    steps = [
        Step("ingest", "ingest", ingest, {"raw": "raw"}, {"cfg": cfg.ingest}),
        Step("clean", "clean", clean, {"reviews": "ingest"}, {"cfg": cfg.clean}),
        Step("tokenize", "tokenize", tokenize, {"cleaned": "clean"}, {"cfg": cfg.tokenize}),
        Step("prune", "prune", prune, {"tokens": "tokenize"}, {"cfg": cfg.prune}),
        Step("encode", "encode", encode, {"tokens": "tokenize", "vocab": "prune"}, {"cfg": cfg.encode}),
    ]
    last = max(i for i, s in enumerate(steps) if s.stage == until)
    return steps[: last + 1]


def resolve_config(profile: str, config: PipelineConfig | None) -> PipelineConfig:
    return config if config is not None else named_profile(profile)


@flow(name="reviewlstm-pipeline", log_prints=True)
def pipeline(
    raw: str | None = None,
    data_dir: str = "data",
    profile: str = DEFAULT_PROFILE,
    config: PipelineConfig | None = None,
    until: Stage = "encode",
    force: list[str] | None = None,
) -> dict[str, Any]:
    """Run every stage up to `until`; stages whose inputs, settings and code match run from cache."""
    cfg = resolve_config(profile, config)
    records: dict[str, Record] = {"raw": raw_record(find_raw(raw, data_dir))}
    runs = []
    for step in plan(cfg, until):
        started = time.perf_counter()
        records[step.name], status = _execute(step, step.inputs(records, data_dir), step.stage in (force or ()))
        runs.append({"stage": step.name, "status": status, "seconds": round(time.perf_counter() - started, 3),
                     "output": records[step.name]["path"]})
    get_run_logger().info("stages: %s", ", ".join(f"{r['stage']}={r['status']}" for r in runs))
    return {
        "profile": cfg.profile,
        "raw": records["raw"]["path"],
        "stages": runs,
        "figures": {r["stage"]: records[r["stage"]]["figures"] for r in runs},
    }


def _execute(step: Step, inputs: dict[str, Any], force: bool) -> tuple[Record, str]:
    """Run or reuse one step; a cached record whose folder no longer matches is rebuilt."""
    task = step.task.with_options(refresh_cache=True) if force else step.task
    state = task(**inputs, return_state=True)
    record = state.result()
    if state.name != "Cached":
        return record, "ran"
    if verify(record):
        return record, "cached"
    return step.task.with_options(refresh_cache=True)(**inputs), "ran"
