"""The pipeline as one Prefect flow: the plan's steps (flows/plan.py), each a cached stage task; and the
same steps as plain calls (run_plain) for a command with no server to report to."""

from __future__ import annotations

import inspect
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.plan import Stage, Step, parallel_trains, plan, resolve_config, sources, summary
from pydantic import ValidationError

from reviewlstm.config import DEFAULT_PROFILE, PipelineConfig, ProfileName, only_variants, settings_error, with_overrides
from reviewlstm.errors import InputError
from reviewlstm.storage import Record, verify
from reviewlstm.child import kill_children
from tasks.keys import reusable
from tasks.locks import LOCKS
from tasks.stage import cache_key
from tasks.clean import clean
from tasks.encode import encode
from tasks.evaluate import evaluate
from tasks.glove import glove
from tasks.ingest import ingest
from tasks.prune import prune
from tasks.promote import decide, promote as promote_champion
from tasks.publish import metrics_of, publish
from tasks.tokenize import tokenize
from tasks.pretrain import pretrain
from tasks.train import train, train_baseline, train_ensemble

STOPPED: list[str] = []  # ids of flow runs this process stopped on a signal

# a step's task by its key (tasks.keys.KEYS)
TASKS = {"ingest": ingest, "clean": clean, "tokenize": tokenize, "prune": prune, "encode": encode, "glove": glove,
         "pretrain": pretrain, "train": train, "train-baseline": train_baseline, "train-ensemble": train_ensemble,
         "evaluate": evaluate}


@flow(name="reviewlstm-pipeline", log_prints=True, task_runner=ThreadPoolTaskRunner())
def pipeline(
    raw: str | None = None,
    data_dir: str = "data",
    profile: ProfileName = DEFAULT_PROFILE,
    overrides: dict[str, Any] | None = None,
    config: PipelineConfig | None = None,
    until: Stage = "evaluate",
    force: list[str] | None = None,
    variants: list[str] | None = None,
    promote: bool = True,
) -> dict[str, Any]:
    """Run every stage up to `until`; stages whose inputs, settings and code match run from cache.

    Args:
        raw: The reviews file (CSV, TSV or Parquet); empty: the one table in `<data_dir>/01_raw/`,
            else the shared copy of the data set.
        data_dir: The folder that holds every stage's output, the registry and the champion.
        profile: The named settings to start from: `best` (the default model), `article` (the
            study's four LSTMs and the baseline) or `quick` (the article's models, a few epochs).
        overrides: Settings to change on top of the profile, as `--set` takes them: dotted name to
            value, e.g. {"prune.min_count": 3, "variants.bilstm.hidden_dim": 64}.
        config: A whole PipelineConfig instead of the profile (every setting; overrides still apply).
        until: The last stage to run.
        force: Stages to compute again even where their output is cached.
        variants: Only these variants of the profile (and an ensemble's members); empty: all.
        promote: After evaluate, make the best variant the champion if it beats the current one.
    """
    try:
        cfg = only_variants(with_overrides(resolve_config(profile, config), overrides or {}, "overrides"), variants)
    except ValidationError as e:
        raise InputError(settings_error(e, "overrides" if overrides else "config")) from None
    except ValueError as e:
        raise InputError(str(e)) from None
    try:
        return _run(cfg, raw, data_dir, until, force, promote)
    except BaseException as e:
        if not isinstance(e, Exception):  # Ctrl-C, or SIGTERM (Prefect's TerminationSignal)
            kill_children()
            STOPPED.append(str(flow_run.get_id()))  # the command marks it cancelled once the engine is done
        raise


def _run(cfg: PipelineConfig, raw: str | None, data_dir: str, until: str, force: list[str] | None,
         promote: bool, prefect: bool = True) -> dict[str, Any]:
    """The plan's steps in order, as Prefect tasks (`prefect`) or as plain calls; then the metrics
    and, after evaluate, the promotion."""
    steps = plan(cfg, until)
    records = sources(raw, data_dir, cfg)
    runs = []
    one, many = (_execute, _execute_concurrently) if prefect else (_call, _call_concurrently)

    def done(step: Step, record: Record, status: str, seconds: float) -> None:
        records[step.name] = record
        runs.append({"stage": step.name, "status": status, "seconds": round(seconds, 3), "output": record["path"]})

    # the models that fit something, consecutive in the plan; ensembles follow their members
    trains = [s for s in steps if s.stage == "train" and s.key != "train-ensemble"]
    for step in steps:
        if step not in trains:
            started = time.perf_counter()
            record, status = one(step, step.inputs(records, data_dir), step.stage in (force or ()))
            done(step, record, status, time.perf_counter() - started)
        elif step is trains[0]:  # every variant at once, each training in a child process
            many(trains, records, data_dir, "train" in (force or ()), parallel_trains(cfg), done)
    if prefect:
        get_run_logger().info("stages: %s", ", ".join(f"{r['stage']}={r['status']}" for r in runs))
    result = summary(cfg, records, runs)
    if "evaluate" in records:
        result["metrics"] = publish(records["evaluate"]) if prefect else metrics_of(records["evaluate"])
        if promote:
            models = {name: records[f"train[{name}]"] for name in cfg.variants}
            inputs = (records["ingest"], records["encode"], records["prune"], records["evaluate"], models, cfg, data_dir)
            result["promotion"] = promote_champion(*inputs) if prefect else decide(*inputs, run=None)
    return result


def run_plain(cfg: PipelineConfig, raw: str | None, data_dir: str, until: str, force: list[str],
              promote: bool) -> dict[str, Any]:
    """The pipeline without Prefect, for a command with no server to report to (nobody would see a
    temporary server's runs): what `pipeline` returns, in the time of its own work."""
    try:
        return _run(cfg, raw, data_dir, until, force, promote, prefect=False)
    except BaseException as e:
        if not isinstance(e, Exception):  # Ctrl-C, SIGTERM: the trainings go too
            kill_children()
        raise


def _call(step: Step, inputs: dict[str, Any], force: bool) -> tuple[Record, str]:
    """One step as a plain call: its folder reused, or its task's function called; under the lock
    Prefect's task run takes (the same key), so a command and a flow run compute a stage once."""
    key, holder = cache_key(step.key, inputs), f"{os.getpid()}-{threading.get_ident()}"
    LOCKS.acquire_lock(key, holder)
    try:
        found = None if force else reusable(step.key, inputs)
        return (found, "cached") if found is not None else (inspect.unwrap(TASKS[step.key].fn)(**inputs), "ran")
    finally:
        LOCKS.release_lock(key, holder)


def _call_concurrently(steps: list[Step], records: dict[str, Record], data_dir: str, force: bool,
                       parallel: int, done: Any) -> None:
    """_call for each step in threads, at most `parallel` at a time; all of them finish (or fail)
    before the first failure is raised."""
    def timed(step: Step) -> tuple[Record, str, float]:
        started = time.perf_counter()
        return *_call(step, step.inputs(records, data_dir), force), time.perf_counter() - started

    pool = ThreadPoolExecutor(parallel, thread_name_prefix="train")
    try:
        futures = [pool.submit(timed, step) for step in steps]
        wait(futures)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a signal: the caller kills the trainings
    for step, future in zip(steps, futures):
        done(step, *future.result())


def _task(step: Step, force: bool) -> Any:
    return TASKS[step.key].with_options(refresh_cache=True) if force else TASKS[step.key]


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
    return _task(step, True)(**inputs), "ran"
