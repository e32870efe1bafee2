"""predict: ratings for texts or for a file of reviews, with a table artifact of the results.

Not cached: a prediction is cheap next to its bookkeeping, and the model behind "the champion"
changes when the registry does.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from reviewlstm import predict as lib

SHOWN = 100  # rows in the artifact


@task(name="predict-texts", cache_policy=NO_CACHE, persist_result=False)
def predict_texts(ref: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """The rating (and class probabilities, for a classifier) of each text."""
    predictor = lib.load_ref(ref)
    pred = predictor.predict(texts)
    rows = []
    for i, t in enumerate(texts):
        row: dict[str, Any] = {"text": t, "rating": int(pred.ratings[i]), "expected_rating": round(float(pred.expected[i]), 4)}
        if pred.probabilities is not None:
            row["probabilities"] = {str(k + predictor.prep.label_min): round(float(p), 4) for k, p in enumerate(pred.probabilities[i])}
        rows.append(row)
    create_table_artifact([{k: v for k, v in r.items() if k != "probabilities"} for r in rows[:SHOWN]],
                          key="predictions", description=f"ratings from {ref.get('label', 'the model')}")
    return {"predictions": rows}


@task(name="predict-file", cache_policy=NO_CACHE, persist_result=False)
def predict_file(ref: dict[str, Any], input: str, output: str, text_columns: list[str]) -> dict[str, Any]:
    """Rate every review of a CSV/TSV/Parquet table; write it with its ratings (same format as `output`'s name)."""
    summary = lib.score_file(lib.load_ref(ref), input, output, text_columns)
    create_table_artifact([{"rating": k, "reviews": v} for k, v in summary["ratings"].items()], key="predictions",
                          description=f"{summary['rows']} reviews of {input} rated by {ref.get('label', 'the model')}")
    return summary
