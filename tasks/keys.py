"""What names each stage's output folder, without Prefect: the library modules whose source is
part of a task's key (its own module included), and the folder a record's inputs lead to.

`reviewlstm status`, `predict --model` and a run with nothing to do read the cache through this
module alone, so they answer without importing Prefect (tasks/stage.py declares the tasks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reviewlstm.fingerprint import stage_key
from reviewlstm.storage import Record, read_record, stage_dir, verify

# task key -> (stage, modules whose source is part of its key)
KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ingest": ("ingest", ("reviewlstm.ingest", "tasks.ingest")),
    "clean": ("clean", ("reviewlstm.text", "tasks.clean")),
    "tokenize": ("tokenize", ("reviewlstm.text", "reviewlstm.array_tokenizer", "tasks.tokenize")),
    "prune": ("prune", ("reviewlstm.vocab", "tasks.prune")),
    "encode": ("encode", ("reviewlstm.encode", "tasks.encode")),
    "glove": ("glove", ("reviewlstm.glove", "tasks.glove")),
    "pretrain": ("pretrain", ("reviewlstm.lm", "reviewlstm.train", "reviewlstm.models", "reviewlstm.encode",
                              "tasks.pretrain")),
    # reviewlstm.child only carries the call to another process (tests/flows/test_concurrent_training.py
    # shows it trains bit-identically), so its code is not part of the key
    "train": ("train", ("reviewlstm.models", "reviewlstm.train", "reviewlstm.inference", "reviewlstm.lstm_steps",
                        "reviewlstm.checkpoint", "reviewlstm.metrics", "reviewlstm.encode", "tasks.train")),
    "train-baseline": ("train", ("reviewlstm.baseline", "reviewlstm.encode", "tasks.train")),
    "train-ensemble": ("train", ("reviewlstm.ensemble", "tasks.train")),
    "evaluate": ("evaluate", ("reviewlstm.metrics", "reviewlstm.inference", "reviewlstm.lstm_steps", "reviewlstm.models",
                              "reviewlstm.reports", "reviewlstm.baseline", "reviewlstm.ensemble", "reviewlstm.encode",
                              "tasks.evaluate")),
}


def folder_key(key: str, inputs: dict[str, Any]) -> str:
    """The key naming the task's output folder; the data directory is not part of it."""
    return stage_key(key, KEYS[key][1], {k: v for k, v in inputs.items() if k != "data_dir"})


def folder(key: str, inputs: dict[str, Any]) -> Path:
    return stage_dir(Path(inputs["data_dir"]).resolve(), KEYS[key][0], folder_key(key, inputs))


def reusable(key: str, inputs: dict[str, Any]) -> Record | None:
    """The output folder for these inputs, settings and code, when it is there and verifies:
    the cache itself. Prefect's records only index it."""
    record = read_record(folder(key, inputs))
    return record if record is not None and verify(record) else None
