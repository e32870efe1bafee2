"""evaluate: every trained variant scored on the validation split; the run's report."""

from __future__ import annotations

import json

from reviewlstm import reports
from reviewlstm.config import BaselineConfig, EnsembleConfig, ModelConfig
from reviewlstm.encode import read_split
from reviewlstm.metrics import classification_metrics, regression_metrics
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task
from tasks.train import split_texts


@stage_task("evaluate")
def evaluate(reviews: Record, encoded: Record, models: dict[str, Record], data_dir: str) -> Record:
    """Accuracy, RMSE (class and expected), MAE, macro-F1, confusion matrix per variant; plots.

    LSTMs read the encoded validation rows, the baseline their ingested text, and an ensemble
    averages its members' probabilities (members are always among `models`)."""
    from reviewlstm import baseline, ensemble
    from reviewlstm.inference import load_model, predict_proba

    with output("evaluate", data_dir, reviews=reviews, encoded=encoded, models=models) as out, out.scratch() as scratch:
        valid = read_split(file_of(encoded, "encoded.parquet"), "valid", scratch)
        metas = {name: json.loads(file_of(record, "model.json").read_text()) for name, record in models.items()}
        kinds = {name: meta["config"].get("kind", "lstm") for name, meta in metas.items()}
        texts = split_texts(reviews, encoded, "valid")[0] if "baseline" in kinds.values() else None
        scores, metrics, images = {}, {}, {}
        for name in sorted(models, key=lambda n: kinds[n] == "ensemble"):  # members first
            meta, folder = metas[name], file_of(models[name], "")
            if kinds[name] == "baseline":
                scores[name] = baseline.load(BaselineConfig.model_validate(meta["config"]), folder).proba(texts)
            elif kinds[name] == "ensemble":
                cfg = EnsembleConfig.model_validate(meta["config"])
                scores[name] = ensemble.combine(scores, cfg)
            else:
                cfg = ModelConfig.model_validate(meta["config"])
                model = load_model(cfg, meta["vocab_size"], folder / "model.pt", meta["num_classes"])
                scores[name] = predict_proba(model, valid)
        for name in models:  # in the profile's order
            cfg, meta = metas[name]["config"], metas[name]
            metrics[name] = (regression_metrics(valid.labels, scores[name], 0, meta["num_classes"] - 1)
                             if cfg.get("head") == "regress"
                             else classification_metrics(valid.labels, scores[name], cfg.get("class_weights")))
            images[name] = [reports.confusion_png(metrics[name]["confusion"], f"{name}: confusion", out.path(f"confusion_{name}.png"))]
            if meta["history"]:
                images[name].insert(0, reports.curves_png(meta["history"], name, out.path(f"curves_{name}.png")))
        rows = reports.comparison(metrics)
        out.json("metrics.json", metrics)
        out.path("report.md").write_text(reports.markdown_report(rows, images, embed=False))
        out.figures = {"variants": len(metrics)}
    return out.record
