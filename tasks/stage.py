"""What every stage task shares: a cache key from content, parameters and code; JSON records."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prefect import get_run_logger, task
from prefect.cache_policies import CachePolicy
from prefect.context import FlowRunContext, TaskRunContext

from reviewlstm.storage import Output, Record, stage_output
from tasks.keys import KEYS, folder_key, reusable
from tasks.locks import LOCKS


def cache_key(stage: str, inputs: dict[str, Any]) -> str:
    """Prefect's key: the folder key, and the data directory the folder lives in."""
    where = hashlib.sha256(str(Path(inputs["data_dir"]).resolve()).encode()).hexdigest()[:8]
    return f"{stage}-{folder_key(stage, inputs)}-{where}"


@dataclass
class StageCache(CachePolicy):
    """Reuse a stage's output while its inputs' content, parameters and library code match.

    Prefect's TASK_SOURCE sees only the task's own source; this also hashes the library modules
    the stage calls. Isolation is SERIALIZABLE: a run that finds another run computing the same
    key waits for it to finish and reuses its record, so concurrent runs compute a stage once.
    """

    stage: str = ""
    modules: tuple[str, ...] = field(default_factory=tuple)

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs) -> str:
        return cache_key(self.stage, inputs)


def stage_task(key: str) -> Callable:
    """Declare a stage task: cached by StageCache, its result persisted as a JSON record.

    `key`: its entry in tasks.keys.KEYS (the stage's name, or a model kind's: train-baseline)."""

    def decorate(fn: Callable) -> Callable:
        if fn.__module__ not in KEYS[key][1]:
            raise ValueError(f"tasks.keys.KEYS[{key!r}] does not name {fn.__module__}, the module of its task")
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def from_folder_or_run(*args: Any, **kwargs: Any) -> Record:
            # Prefect's store may not know the key (another Prefect home, a copied data folder)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            context = TaskRunContext.get()
            forced = context is not None and context.task.refresh_cache  # `reviewlstm stage NAME` computes anew
            found = None if forced else reusable(key, bound.arguments)
            return {**found, "reused": True} if found is not None else fn(*args, **kwargs)

        return task(
            from_folder_or_run,
            name=key,
            cache_policy=StageCache(stage=key, modules=KEYS[key][1], isolation_level="SERIALIZABLE",
                                    lock_manager=LOCKS),
            persist_result=True,
            result_serializer="json",
            cache_result_in_memory=False,
        )

    return decorate


def in_run() -> bool:
    """Inside a Prefect task run, rather than called by a command with no server (flows.pipeline.run_plain)."""
    return TaskRunContext.get() is not None


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger (its lines show in the Prefect UI); outside a run, the command's."""
    return get_run_logger() if in_run() or FlowRunContext.get() is not None else logging.getLogger("reviewlstm")


def output(key: str, data_dir: str, **inputs: Any) -> Any:
    """The stage's temporary output folder, published under its key when the block ends."""
    return stage_output(data_dir, KEYS[key][0], folder_key(key, inputs))


__all__ = ["KEYS", "Output", "StageCache", "cache_key", "folder_key", "in_run", "output", "reusable", "run_logger", "stage_task"]
