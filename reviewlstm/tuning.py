"""A tuning split carved from the training rows, for choosing settings without the validation split.

Rows whose text is also the text of a validation review are never tuning rows (the data set has
duplicated reviews), so nothing chosen on the tuning split has seen a validation review's text.
"""

from __future__ import annotations

import numpy as np


def tuning_split(train_texts: list[str], valid_texts: list[str], fraction: float = 0.2,
                 seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    """(rows to fit on, tuning rows): sorted indices into the training split."""
    seen = set(valid_texts)
    eligible = np.array([i for i, t in enumerate(train_texts) if t not in seen], dtype=np.int64)
    chosen = np.random.default_rng(seed).permutation(eligible)[: int(round(len(train_texts) * fraction))]
    tune = np.sort(chosen)
    fit = np.setdiff1d(np.arange(len(train_texts)), tune)
    return fit, tune
