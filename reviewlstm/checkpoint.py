"""Training's per-epoch checkpoint: what identifies a run, and the file's atomic read and write.

After every epoch the model, the optimizer, the position (round, epoch), the history and both
random generators are written; a later call of the same run continues from there (reviewlstm.train).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from reviewlstm.config import ModelConfig
from reviewlstm.encode import Split
from reviewlstm.storage import atomic_file

CHECKPOINT_FORMAT = "reviewlstm-train-checkpoint/3"  # 3: torch.optim.Adam's optimizer state


def run_fingerprint(cfg: ModelConfig, train: Split, valid: Split, vocab_size: int, seed: int,
                    embeddings: np.ndarray | None, num_classes: int, device: torch.device,
                    encoder: dict[str, torch.Tensor] | None = None) -> str:
    """What makes two train_model calls the same run: config, data, seed, sizes, device type."""
    h = hashlib.sha256(json.dumps({"cfg": cfg.model_dump(mode="json"), "seed": seed, "vocab_size": vocab_size,
                                   "num_classes": num_classes, "device": device.type}, sort_keys=True).encode())
    for array in (train.ids, train.lengths, train.labels, valid.ids, valid.lengths, valid.labels,
                  *([] if embeddings is None else [embeddings]),
                  *(v.numpy() for _, v in sorted((encoder or {}).items()))):
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(memoryview(array).cast("B"))
    return h.hexdigest()


def checkpoint_epochs(path: str | Path) -> int | None:
    """Epochs a checkpoint file holds (None: no readable checkpoint), whichever run it is of."""
    state = read_checkpoint(Path(path), None)
    return None if state is None else len(state["history"])


def read_checkpoint(path: Path, run_id: str | None) -> dict | None:
    """The checkpoint at `path` if it is a readable one of this run (any run when run_id is None).

    Loaded with weights_only=True: tensors and plain data only, never code.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception:  # truncated or foreign: only an optimisation, so start over
        return None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        return None
    if run_id is not None and state.get("run") != run_id:
        return None
    return state


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a temporary file beside it, fsynced, renamed over the previous one."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:  # a file object: a full disk is an OSError naming ENOSPC
        torch.save(state, f)
