"""The pipeline as one Prefect flow: a plan of steps, each a cached stage task.

`plan` is the single description of which stage feeds which; the flow executes it and
`reviewlstm status` walks it without running anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from reviewlstm.config import (DEFAULT_PROFILE, BaselineConfig, EnsembleConfig, ModelConfig, PipelineConfig, TrainConfig,
                               only_variants, profile as named_profile)
from reviewlstm.cores import available_cores
from reviewlstm.errors import InputError
from reviewlstm.paths import find_raw, glove_record, raw_record
from reviewlstm.storage import Record, verify
from tasks.clean import clean
from tasks.encode import encode
from tasks.evaluate import evaluate
from tasks.glove import glove
from tasks.ingest import ingest
from tasks.prune import prune
from tasks.promote import promote as promote_champion
from tasks.publish import publish
from tasks.tokenize import tokenize
from tasks.pretrain import pretrain
from tasks.train import train, train_baseline, train_ensemble

STAGES = ("ingest", "clean", "tokenize", "prune", "encode", "glove", "pretrain", "train", "evaluate")
Stage = Literal["ingest", "clean", "tokenize", "prune", "encode", "glove", "pretrain", "train", "evaluate"]


@dataclass
class Step:
    """One task call: records it takes from earlier steps, and its own parameters."""

    name: str
    stage: str
    task: Any
    upstream: dict[str, str | dict[str, str]]  # parameter -> step name (or name -> step name)
    params: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # the task's cache key name: the stage's, or a model kind's (train-baseline)

    def __post_init__(self) -> None:
        self.key = self.key or self.stage

    def inputs(self, records: dict[str, Record], data_dir: str) -> dict[str, Any]:
        taken = {p: {n: records[s] for n, s in src.items()} if isinstance(src, dict) else records[src]
                 for p, src in self.upstream.items()}
        return {**taken, **self.params, "data_dir": data_dir}

    def needs(self) -> list[str]:
        return [s for src in self.upstream.values() for s in (src.values() if isinstance(src, dict) else [src])]


def plan(cfg: PipelineConfig, until: str = STAGES[-1]) -> list[Step]:
    """Every step from ingest up to and including the stage `until`, in run order."""
    steps = [
        Step("ingest", "ingest", ingest, {"raw": "raw"}, {"cfg": cfg.ingest}),
        Step("clean", "clean", clean, {"reviews": "ingest"}, {"cfg": cfg.clean}),
        Step("tokenize", "tokenize", tokenize, {"cleaned": "clean"}, {"cfg": cfg.tokenize}),
        Step("prune", "prune", prune, {"tokens": "tokenize"}, {"cfg": cfg.prune}),
        Step("encode", "encode", encode, {"tokens": "tokenize", "vocab": "prune"}, {"cfg": cfg.encode}),
    ]
    lstms = {n: v for n, v in cfg.variants.items() if isinstance(v, ModelConfig)}
    pretrained = [n for n, v in lstms.items() if v.embeddings == "pretrained"]
    glove_dims = {v.embedding_dim for v in lstms.values() if v.embeddings.startswith("glove")}
    if pretrained and cfg.pretrain.init == "glove":
        glove_dims.add(cfg.pretrain.embedding_dim)
    if len(glove_dims) > 1:
        raise InputError(f"variants that use GloVe have embedding_dim {sorted(glove_dims)}; expected one size")
    if glove_dims:
        steps.append(Step("glove", "glove", glove, {"vocab": "prune", "source": "glove_source"},
                          {"cfg": cfg.glove, "dim": glove_dims.pop()}))
    if pretrained:
        upstream = {"encoded": "encode", "vocab": "prune", **({"glove": "glove"} if cfg.pretrain.init == "glove" else {})}
        params = {"cfg": cfg.pretrain, "seed": cfg.train.seed, "threads": cfg.train.threads or available_cores(),
                  **({} if "glove" in upstream else {"glove": None})}
        steps.append(Step("pretrain", "pretrain", pretrain, upstream, params))
    num_classes = cfg.ingest.num_classes
    for name, variant in cfg.variants.items():
        if isinstance(variant, BaselineConfig):
            steps.append(Step(f"train[{name}]", "train", train_baseline, {"reviews": "ingest", "encoded": "encode"},
                              {"name": name, "cfg": variant, "num_classes": num_classes}, key="train-baseline"))
        elif isinstance(variant, EnsembleConfig):
            continue  # after its members
        else:
            upstream = {"encoded": "encode", "vocab": "prune"}
            upstream |= {"glove": "glove"} if variant.embeddings.startswith("glove") else {}
            upstream |= {"pretrained": "pretrain"} if variant.embeddings == "pretrained" else {}
            params = {"name": name, "cfg": variant, "trainer": trainer_for(cfg), "num_classes": num_classes,
                      **({} if "glove" in upstream else {"glove": None}),
                      **({} if "pretrained" in upstream else {"pretrained": None})}
            steps.append(Step(f"train[{name}]", "train", train, upstream, params))
    for name, variant in cfg.variants.items():
        if isinstance(variant, EnsembleConfig):
            steps.append(Step(f"train[{name}]", "train", train_ensemble, {"members": {m: f"train[{m}]" for m in variant.members}},
                              {"name": name, "cfg": variant, "num_classes": num_classes}, key="train-ensemble"))
    if cfg.variants:
        models = {name: f"train[{name}]" for name in cfg.variants}
        steps.append(Step("evaluate", "evaluate", evaluate, {"reviews": "ingest", "encoded": "encode", "models": models}))
    order = list(dict.fromkeys(s.stage for s in steps))
    if until not in order:
        raise InputError(f"stage {until!r} is not part of this configuration; its stages: {', '.join(order)}")
    return [s for s in steps if order.index(s.stage) <= order.index(until)]


def parallel_trains(cfg: PipelineConfig) -> int:
    """How many LSTM variants train at the same time: the setting, else one per core."""
    lstms = sum(isinstance(v, ModelConfig) for v in cfg.variants.values())
    return max(1, min(cfg.train.parallel or available_cores(), lstms or 1))


def trainer_for(cfg: PipelineConfig) -> TrainConfig:
    """The train settings each variant gets: threads resolved, so that a cache key names the
    thread count that trained (float sums, and so results, may depend on it)."""
    threads = cfg.train.threads or max(1, available_cores() // parallel_trains(cfg))
    return cfg.train.model_copy(update={"threads": threads, "parallel": None})


def sources(raw: str | None, data_dir: str, cfg: PipelineConfig) -> dict[str, Record]:
    """The user's files as records: the first inputs of the plan."""
    return {"raw": raw_record(find_raw(raw, data_dir)), "glove_source": glove_record(cfg.glove.path)}


def resolve_config(profile: str, config: PipelineConfig | None) -> PipelineConfig:
    return config if config is not None else named_profile(profile)


@flow(name="reviewlstm-pipeline", log_prints=True, task_runner=ThreadPoolTaskRunner())
def pipeline(
    raw: str | None = None,
    data_dir: str = "data",
    profile: str = DEFAULT_PROFILE,
    config: PipelineConfig | None = None,
    until: Stage = "evaluate",
    force: list[str] | None = None,
    variants: list[str] | None = None,
    promote: bool = True,
) -> dict[str, Any]:
    """Run every stage up to `until`; stages whose inputs, settings and code match run from cache.

    `variants`: only these model variants of the config (default: all). `promote`: after
    evaluate, make the best variant the champion if it beats the current one (registry.json).
    """
    try:
        cfg = only_variants(resolve_config(profile, config), variants)
    except ValueError as e:
        raise InputError(str(e)) from None
    steps = plan(cfg, until)
    records = sources(raw, data_dir, cfg)
    runs = []

    def done(step: Step, record: Record, status: str, seconds: float) -> None:
        records[step.name] = record
        runs.append({"stage": step.name, "status": status, "seconds": round(seconds, 3), "output": record["path"]})

    # the models that fit something, consecutive in the plan; ensembles follow their members
    trains = [s for s in steps if s.stage == "train" and s.key != "train-ensemble"]
    for step in steps:
        if step not in trains:
            started = time.perf_counter()
            record, status = _execute(step, step.inputs(records, data_dir), step.stage in (force or ()))
            done(step, record, status, time.perf_counter() - started)
        elif step is trains[0]:  # every variant at once, through the flow's task runner
            _execute_concurrently(trains, records, data_dir, "train" in (force or ()), parallel_trains(cfg), done)
    get_run_logger().info("stages: %s", ", ".join(f"{r['stage']}={r['status']}" for r in runs))
    summary = {
        "profile": cfg.profile,
        "raw": records["raw"]["path"],
        "stages": runs,
        "figures": {r["stage"]: records[r["stage"]]["figures"] for r in runs if r["stage"] != "evaluate"},
    }
    if "evaluate" in records:
        summary["metrics"] = publish(records["evaluate"])
        if promote:
            models = {name: records[f"train[{name}]"] for name in cfg.variants}
            summary["promotion"] = promote_champion(records["ingest"], records["encode"], records["prune"],
                                                    records["evaluate"], models, cfg, data_dir)
    return summary


def _task(step: Step, force: bool) -> Any:
    return step.task.with_options(refresh_cache=True) if force else step.task


def _execute(step: Step, inputs: dict[str, Any], force: bool) -> tuple[Record, str]:
    """Run or reuse one step; a cached record whose folder no longer matches is rebuilt."""
    return _settle(step, inputs, _task(step, force)(**inputs, return_state=True))


def _execute_concurrently(steps: list[Step], records: dict[str, Record], data_dir: str, force: bool,
                          parallel: int, done: Any) -> None:
    """Submit the steps to the flow's task runner, at most `parallel` at a time; all of them
    finish (or fail) before the first failure is raised."""
    waiting, running = list(steps), {}
    settled: list[tuple[Step, float, Any]] = []
    while waiting or running:
        while waiting and len(running) < parallel:
            step = waiting.pop(0)
            inputs = step.inputs(records, data_dir)
            running[_task(step, force).submit(**inputs)] = (step, inputs, time.perf_counter())
        future: PrefectFuture = next(as_completed(list(running)))
        step, inputs, started = running.pop(future)
        outcome = _outcome(step, inputs, future)  # its own seconds, not the wait for the others
        settled.append((step, time.perf_counter() - started, outcome))
    for step, seconds, outcome in sorted(settled, key=lambda x: steps.index(x[0])):
        if isinstance(outcome, BaseException):
            raise outcome
        done(step, *outcome, seconds)


def _outcome(step: Step, inputs: dict[str, Any], future: PrefectFuture) -> tuple[Record, str] | BaseException:
    try:
        future.wait()  # sets the final state (as_completed only says the run has ended)
        return _settle(step, inputs, future.state)
    except Exception as exc:
        return exc


def _settle(step: Step, inputs: dict[str, Any], state: Any) -> tuple[Record, str]:
    """A finished task's record; a cached one whose folder no longer matches is rebuilt."""
    record = state.result()
    reused = record.pop("reused", False)  # the task found its output folder in place (tasks.stage.reusable)
    if state.name != "Cached":
        return record, "cached" if reused else "ran"
    if verify(record):
        return record, "cached"
    return step.task.with_options(refresh_cache=True)(**inputs), "ran"
