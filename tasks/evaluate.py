"""evaluate: every trained variant scored on the validation split; the run's report."""

from __future__ import annotations

import json

import polars as pl

from reviewlstm import reports
from reviewlstm.config import ModelConfig
from reviewlstm.encode import to_split
from reviewlstm.metrics import classification_metrics, regression_metrics
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("evaluate", "reviewlstm.metrics", "reviewlstm.train", "reviewlstm.models", "reviewlstm.reports")
def evaluate(encoded: Record, models: dict[str, Record], data_dir: str) -> Record:
    """Accuracy, RMSE (class and expected), MAE, macro-F1, confusion matrix per variant; plots."""
    from reviewlstm.train import load_model, predict_proba

    with output("evaluate", data_dir, encoded=encoded, models=models) as out:
        valid = to_split(pl.read_parquet(file_of(encoded, "encoded.parquet")), "valid")
        metrics, images = {}, {}
        for name, record in models.items():
            meta = json.loads(file_of(record, "model.json").read_text())
            cfg = ModelConfig.model_validate(meta["config"])
            model = load_model(cfg, meta["vocab_size"], file_of(record, "model.pt"), meta["num_classes"])
            scores = predict_proba(model, valid)
            metrics[name] = (regression_metrics(valid.labels, scores, 0, meta["num_classes"] - 1)
                             if cfg.head == "regress" else classification_metrics(valid.labels, scores))
            images[name] = [reports.confusion_png(metrics[name]["confusion"], f"{name}: confusion", out.path(f"confusion_{name}.png"))]
            if meta["history"]:
                images[name].insert(0, reports.curves_png(meta["history"], name, out.path(f"curves_{name}.png")))
        rows = reports.comparison(metrics)
        out.json("metrics.json", metrics)
        out.path("report.md").write_text(reports.markdown_report(rows, images, embed=False))
        out.figures = {"variants": len(metrics)}
    return out.record
