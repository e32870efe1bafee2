"""Validation metrics for ordered ratings, in numpy only.

Ratings are ordered, so besides accuracy the errors are measured as distances in stars: RMSE and
MAE of a point prediction. A classifier gives three point predictions: its most probable class
(what the study reports), the expected rating sum_k k * P_k (minimises squared error) and the
median class (minimises absolute error). Every value is a plain Python number, ready for JSON.
"""

from __future__ import annotations

import numpy as np


def _rmse(err: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(err))))


def _mae(err: np.ndarray) -> float:
    return float(np.mean(np.abs(err)))


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean F1 over the classes present in y or pred (sklearn's average="macro",
    zero_division=0): a class never true and never predicted is left out, not counted as 0."""
    labels = np.union1d(y, pred)
    tp = np.array([np.sum((y == c) & (pred == c)) for c in labels])
    # F1 = 2TP / (2TP + FP + FN), with FP + FN = (#pred == c) + (#y == c) - 2TP
    denom = np.array([np.sum(y == c) + np.sum(pred == c) for c in labels])
    return float(np.mean(2 * tp / denom))


def confusion(y: np.ndarray, pred: np.ndarray, num_classes: int) -> list[list[int]]:
    """C x C counts, rows = true class, columns = predicted class."""
    counts = np.bincount(y * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).tolist()


def _class_metrics(y: np.ndarray, pred: np.ndarray, num_classes: int) -> dict:
    """The metrics of one predicted class per row."""
    return {
        "accuracy": float(np.mean(pred == y)),
        "rmse": _rmse(pred - y),
        "mae": _mae(pred - y),
        "within_one": float(np.mean(np.abs(pred - y) <= 1)),
        "macro_f1": macro_f1(y, pred),
        "confusion": confusion(y, pred, num_classes),
    }


def _check(y: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.int64)
    if y.shape != (n,) or n == 0:
        raise ValueError(f"expected {n} > 0 true classes, got shape {y.shape}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"true classes must be in 0..{num_classes - 1}, got {y.min()}..{y.max()}")
    return y


def predicted_class(probs: np.ndarray, class_weights: list[float] | None = None) -> np.ndarray:
    """The most probable class, or with a decision rule the class of the largest p_k * w_k."""
    probs = np.asarray(probs, dtype=np.float64)
    return (probs if class_weights is None else probs * np.asarray(class_weights)).argmax(axis=1)


def classification_metrics(y: np.ndarray, probs: np.ndarray, class_weights: list[float] | None = None) -> dict:
    """Metrics of class probabilities P (n, C) against true classes y (n,) in 0..C-1.

    accuracy, rmse, mae, within_one, macro_f1, confusion: of the predicted class (the most
    probable one, or predicted_class's rule); rmse_expected, mae_expected: of the expected
    rating; mae_median: of the median class.
    """
    probs = np.asarray(probs, dtype=np.float64)
    n, num_classes = probs.shape
    y = _check(y, n, num_classes)
    expected = probs @ np.arange(num_classes)
    # median class: the first whose cumulative probability reaches one half
    median = np.argmax(np.cumsum(probs, axis=1) >= 0.5 - 1e-9, axis=1)
    return {
        **_class_metrics(y, predicted_class(probs, class_weights), num_classes),
        "rmse_expected": _rmse(expected - y),
        "mae_expected": _mae(expected - y),
        "mae_median": _mae(median - y),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray, lo: int = 0, hi: int = 4) -> dict:
    """Metrics of predicted ratings (n,) against true classes y in lo..hi.

    rmse, mae: of the prediction clipped to [lo, hi] (a rating outside the scale is never
    right); rmse_expected and mae_expected repeat them, so a regression variant can be ranked
    against classifiers by their expected rating. The class metrics (accuracy, within_one,
    macro_f1, confusion) are of the clipped prediction rounded half up.
    """
    pred = np.clip(np.asarray(pred, dtype=np.float64), lo, hi)
    y = _check(y, len(pred), hi + 1)
    rounded = np.floor(pred + 0.5).astype(np.int64)
    return {
        **_class_metrics(y, rounded, hi + 1),
        "rmse": _rmse(pred - y),
        "mae": _mae(pred - y),
        "rmse_expected": _rmse(pred - y),
        "mae_expected": _mae(pred - y),
    }
