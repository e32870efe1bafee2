"""Every model on the same split, side by side: the LSTM variants, TF-IDF + logistic regression
and always predicting the most common rating (issue 6).

For each seed it runs `reviewlstm run --profile PROFILE --set train.seed=S --json` (the variants
train as the pipeline trains them, and are evaluated on the project's validation split), then fits
the references on that run's training rows and scores them on its validation rows. The study's
four variants are read from bench/results/article_seeds.json (bench/article_seeds.py), which used
the same split. Needs the `bench` extra (scikit-learn).

    python bench/compare.py [--seeds 0 1 2] [--profile best] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from reviewlstm.metrics import classification_metrics  # noqa: E402

METRICS = ["accuracy", "rmse", "rmse_expected", "mae", "mae_median", "macro_f1", "within_one"]
GOAL = {"accuracy": 0.68, "rmse_expected": 0.64, "mae": 0.40, "macro_f1": 0.50}


def run_pipeline(seed: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "flows.cli", "run", "--profile", args.profile, "--data-dir", args.data_dir,
           "--set", f"train.seed={seed}", *[x for kv in args.set for x in ("--set", kv)], "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def split_texts(summary: dict) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """The run's raw review texts and classes, as its training and validation rows."""
    out = {s["stage"]: Path(s["output"]) for s in summary["stages"]}
    reviews = pl.read_parquet(out["ingest"] / "reviews.parquet")
    split = pl.read_parquet(out["encode"] / "encoded.parquet", columns=["split"])["split"]
    train, valid = reviews.filter(split == "train"), reviews.filter(split == "valid")
    return train["text"].to_list(), train["label"].to_numpy(), valid["text"].to_list(), valid["label"].to_numpy()


def tfidf_logreg(train_x, train_y, valid_x) -> tuple[np.ndarray, float]:
    """Word 1-2 grams + character 2-5 grams, TF-IDF, multinomial logistic regression (C=1)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    fit = hstack([words.fit_transform(train_x), chars.fit_transform(train_x)]).tocsr()
    model = LogisticRegression(C=1.0, max_iter=2000).fit(fit, train_y)
    seconds = time.perf_counter() - started
    return model.predict_proba(hstack([words.transform(valid_x), chars.transform(valid_x)]).tocsr()), seconds


def majority(train_y, n_valid: int, num_classes: int) -> np.ndarray:
    probs = np.zeros((n_valid, num_classes))
    probs[:, np.bincount(train_y, minlength=num_classes).argmax()] = 1.0
    return probs


def summarise(runs: list[dict]) -> dict:
    """Mean, half the range and the values of each metric over the seeds."""
    row = {}
    for m in [*METRICS, "train_seconds"]:
        values = [r[m] for r in runs if m in r]
        if values:
            row[m] = {"mean": round(statistics.mean(values), 4), "spread": round((max(values) - min(values)) / 2, 4),
                      "values": [round(v, 4) for v in values]}
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--profile", default="best")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--article", default=str(ROOT / "bench" / "results" / "article_seeds.json"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "compare.json"))
    ap.add_argument("--render", action="store_true",
                    help="train nothing: print the table of --out, with the article seeds as they are now")
    args = ap.parse_args()
    if args.render:
        result = json.loads(Path(args.out).read_text())
        result["models"] = {k: v for k, v in result["models"].items() if not k.startswith("article: ")}
        result["models"].update(article_rows(args.article))
        Path(args.out).write_text(json.dumps(result, indent=1))
        return render(result)

    per_model: dict[str, list[dict]] = {}
    for seed in args.seeds:
        summary = run_pipeline(seed, args)
        seconds = {s["stage"]: s["seconds"] for s in summary["stages"]}
        for name, m in summary["metrics"].items():
            per_model.setdefault(f"{args.profile}: {name}", []).append({**m, "train_seconds": seconds[f"train[{name}]"]})
        print(f"seed {seed}: " + ", ".join(f"{n} acc {m['accuracy']:.4f} rmse_exp {m['rmse_expected']:.4f}"
                                           for n, m in summary["metrics"].items()), flush=True)
    train_x, train_y, valid_x, valid_y = split_texts(summary)  # the split does not depend on the seed
    probs, seconds = tfidf_logreg(train_x, train_y, valid_x)
    per_model["TF-IDF + logistic regression"] = [{**classification_metrics(valid_y, probs), "train_seconds": seconds}]
    per_model["majority (always the most common rating)"] = [classification_metrics(valid_y, majority(train_y, len(valid_y), probs.shape[1]))]

    table = {name: summarise(runs) for name, runs in per_model.items()}
    table.update(article_rows(args.article))
    command = " ".join(["python bench/compare.py --seeds", *map(str, args.seeds), "--profile", args.profile,
                        *[x for kv in args.set for x in ("--set", kv)]])
    result = {"command": command, "cores": len(os.sched_getaffinity(0)), "load_average": os.getloadavg(),
              "validation_rows": len(valid_y), "goal": GOAL, "models": table}
    Path(args.out).write_text(json.dumps(result, indent=1))
    render(result)


def article_rows(path: str) -> dict:
    """The study's variants from bench/article_seeds.py's result (the same split), if present."""
    if not Path(path).is_file():
        return {}
    article, rows = json.loads(Path(path).read_text()), {}
    for name, row in article["variants"].items():
        row = {k: ({**v, "spread": round(v["spread"] / 2, 4)} if isinstance(v, dict) else v) for k, v in row.items()}
        ts = row.pop("train_seconds", None)
        if ts:  # a run resumed from a checkpoint counts only the epochs it trained itself
            row["train_seconds"] = {"mean": round(statistics.mean(ts), 1), "spread": round((max(ts) - min(ts)) / 2, 1), "values": ts}
        rows[f"article: {name} ({len(article['seeds'])} seeds, `{article['command']}`)"] = row
    return rows


def render(result: dict) -> None:
    cell = lambda row, m: (f"{row[m]['mean']:.3f} ± {row[m]['spread']:.3f}" if m in row else "")  # noqa: E731
    print(f"\n`{result['command']}`, {result['cores']} cores, load {', '.join(f'{x:.1f}' for x in result['load_average'])}\n")
    print("| model | accuracy | RMSE (class) | RMSE (expected) | MAE | MAE (median) | macro-F1 | within one | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in result["models"].items():
        print(f"| {name} | " + " | ".join(cell(row, m) for m in [*METRICS, "train_seconds"]) + " |")


if __name__ == "__main__":
    main()
