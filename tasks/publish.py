"""publish: the run's metrics and report as Prefect UI artifacts (every run, cached or not)."""

from __future__ import annotations

import json

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from reviewlstm import reports
from reviewlstm.storage import Record, file_of


@task(name="publish")
def publish(evaluation: Record) -> dict:
    """Create the metrics table and the report (curves, confusion matrices) artifacts."""
    metrics = metrics_of(evaluation)
    rows = reports.comparison(metrics)
    create_table_artifact(rows, key="metrics", description="Validation metrics per variant, with the study's figures")
    images = {name: [p for kind in ("curves", "confusion") if (p := file_of(evaluation, f"{kind}_{name}.png")).is_file()]
              for name in metrics}
    create_markdown_artifact(reports.markdown_report(rows, images, embed=True), key="report",
                             description="Training curves and confusion matrices")
    return metrics


def metrics_of(evaluation: Record) -> dict:
    """Each variant's validation metrics, as evaluate wrote them."""
    return json.loads(file_of(evaluation, "metrics.json").read_text())
