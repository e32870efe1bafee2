"""Ensembles: other variants' class probabilities averaged with fixed weights.

The weights (and the decision rule's class weights) are settings, chosen on a tuning split carved
from the training rows (bench/candidates.py), so an ensemble has nothing to fit in the pipeline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reviewlstm.config import EnsembleConfig


def weights(cfg: EnsembleConfig) -> dict[str, float]:
    """Member -> weight, normalised to sum to 1."""
    total = sum(cfg.members.values())
    return {name: w / total for name, w in cfg.members.items()}


def combine(scores: dict[str, np.ndarray], cfg: EnsembleConfig) -> np.ndarray:
    """The weighted mean of the members' class probabilities (n, C)."""
    return sum(w * np.asarray(scores[name], dtype=np.float64) for name, w in weights(cfg).items())


def description(name: str, cfg: EnsembleConfig, num_classes: int, members: dict[str, dict[str, Any]]) -> dict:
    """model.json of an ensemble: members' folders (relative to this one) and their digests."""
    return {"name": name, "config": cfg.model_dump(mode="json"), "num_classes": num_classes,
            "members": members, "history": []}
