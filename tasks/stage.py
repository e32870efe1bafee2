"""What every stage task shares: a cache key from content, parameters and code; JSON records."""

from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prefect import task
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext

from reviewlstm.fingerprint import stage_key
from reviewlstm.storage import Output, Record, read_record, stage_dir, stage_output, verify
from tasks.locks import LOCKS

# task key -> modules whose source is part of its key (the task module itself included)
MODULES: dict[str, tuple[str, ...]] = {}
# task key -> the stage (and so the data layer) it belongs to: the model kinds all train
STAGE_OF: dict[str, str] = {}


def folder_key(stage: str, inputs: dict[str, Any]) -> str:
    """The key naming the stage's output folder; the data directory is not part of it."""
    return stage_key(stage, MODULES[stage], {k: v for k, v in inputs.items() if k != "data_dir"})


def cache_key(stage: str, inputs: dict[str, Any]) -> str:
    """Prefect's key: the folder key, and the data directory the folder lives in."""
    where = hashlib.sha256(str(Path(inputs["data_dir"]).resolve()).encode()).hexdigest()[:8]
    return f"{stage}-{folder_key(stage, inputs)}-{where}"


def reusable(stage: str, inputs: dict[str, Any]) -> Record | None:
    """The output folder for these inputs, settings and code, when it is there and verifies:
    the cache itself. Prefect's records only index it."""
    record = read_record(stage_dir(Path(inputs["data_dir"]).resolve(), STAGE_OF[stage], folder_key(stage, inputs)))
    return record if record is not None and verify(record) else None


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


def stage_task(stage: str, *modules: str, key: str | None = None) -> Callable:
    """Declare a stage task: cached by StageCache, its result persisted as a JSON record.

    `key`: the name its cache keys use, where several tasks make one stage (the model kinds)."""
    key = key or stage

    def decorate(fn: Callable) -> Callable:
        MODULES[key] = (*modules, fn.__module__)
        STAGE_OF[key] = stage
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
            cache_policy=StageCache(stage=key, modules=MODULES[key], isolation_level="SERIALIZABLE",
                                    lock_manager=LOCKS),
            persist_result=True,
            result_serializer="json",
            cache_result_in_memory=False,
        )

    return decorate


def output(key: str, data_dir: str, **inputs: Any) -> Any:
    """The stage's temporary output folder, published under its key when the block ends."""
    return stage_output(data_dir, STAGE_OF[key], folder_key(key, inputs))


__all__ = ["MODULES", "STAGE_OF", "Output", "StageCache", "cache_key", "folder_key", "output", "reusable", "stage_task"]
