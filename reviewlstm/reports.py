"""What a run shows people: variants side by side with the study's figures, training curves and
confusion matrices as PNGs, and a markdown report that embeds them."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

# The study's published validation figures (after 90 epochs; 60 for regression).
PUBLISHED: dict[str, dict[str, float]] = {
    "fixed": {"accuracy": 0.639, "rmse": 0.817},
    "variable": {"accuracy": 0.61, "rmse": 0.88},
    "glove": {"accuracy": 0.621, "rmse": 0.890},
    "regression": {"rmse": 0.799},
}
COLUMNS = ["accuracy", "rmse", "rmse_expected", "mae", "macro_f1", "within_one"]


def comparison(metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant: its figures, then the study's for the same variant where published."""
    rows = []
    for name, m in metrics.items():
        row: dict[str, Any] = {"variant": name}
        row.update({c: round(float(m[c]), 4) if c in m else None for c in COLUMNS})
        study = PUBLISHED.get(name, {})
        row["study_accuracy"] = study.get("accuracy")
        row["study_rmse"] = study.get("rmse")
        rows.append(row)
    return rows


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and workers
    import matplotlib.pyplot as plt

    return plt


def curves_png(history: list[dict[str, float]], title: str, path: Path) -> Path:
    """Train/validation loss and the headline validation metric per epoch."""
    plt = _figure()
    epochs = [h["epoch"] for h in history]
    metric = "accuracy" if "accuracy" in history[0] and "rmse_expected" in history[0] else "rmse"
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [h["train_loss"] for h in history], label="train")
    left.plot(epochs, [h["valid_loss"] for h in history], label="validation")
    left.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    left.legend()
    right.plot(epochs, [h[metric] for h in history], color="tab:green")
    right.set(xlabel="epoch", ylabel=metric, title=f"{title}: validation {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def confusion_png(matrix: list[list[int]], title: str, path: Path, first_label: int = 1) -> Path:
    """Rows are true ratings, columns predicted, counts in the cells."""
    plt = _figure()
    n = len(matrix)
    labels = [str(first_label + i) for i in range(n)]
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues")
    top = max(max(r) for r in matrix) or 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, matrix[i][j], ha="center", va="center", fontsize=8,
                    color="white" if matrix[i][j] > top / 2 else "black")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def markdown_report(rows: list[dict[str, Any]], images: dict[str, list[Path]], embed: bool) -> str:
    """The run's report; with embed the PNGs travel inside it (for the Prefect UI)."""
    parts = ["# Validation metrics", "", markdown_table(rows), ""]
    for name, paths in images.items():
        parts += [f"## {name}", ""]
        for path in paths:
            src = f"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" if embed else path.name
            parts.append(f"![{path.stem}]({src})")
        parts.append("")
    return "\n".join(parts)
