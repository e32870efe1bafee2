"""Prediction speed of a data folder's champion (the default profile's ensemble), its members and
lighter mixes of them, each with its metrics on the folder's validation rows.

    python bench/predict_default.py --data-dir DIR [--reviews 20000 200000] [--repeat 3] [--plain]

- The command, file to file (`reviewlstm predict --input reviews.csv --output rated.parquet`,
  process start and imports included), on the first real reviews repeated to each `--reviews`.
- In one process with the model loaded, scoring only (text in, probabilities out), best of
  `--repeat`: the champion, each member, and each mix in MIXES (the champion's own weights for the
  members it keeps, its decision rule); `--plain` also scores the baseline through scikit-learn's
  own transform (the path reviewlstm/ngrams.py replaces).
- Validation metrics of the same predictors (the predict path: text -> probabilities).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from common import REAL, ROOT, repeated, timed_call

sys.path.insert(0, str(ROOT))
from reviewlstm import registry  # noqa: E402
from reviewlstm.metrics import classification_metrics  # noqa: E402
from reviewlstm.predict import EnsemblePredictor, load_bundle, review_texts  # noqa: E402

MIXES = {"one BiLSTM + baseline": ["bilstm", "baseline"], "two BiLSTMs + baseline": ["bilstm", "bilstm2", "baseline"]}


def newest(data_dir: Path, pattern: str) -> Path:
    return max(data_dir.glob(pattern), key=lambda p: p.stat().st_mtime)


def mix(champion: EnsemblePredictor, keep: list[str]) -> EnsemblePredictor:
    members = {n: champion.members[n] for n in keep}
    cfg = champion.cfg.model_copy(update={"members": {n: champion.cfg.members[n] for n in keep}})
    return EnsemblePredictor(name="+".join(keep), members=members, cfg=cfg, prep=champion.prep,
                             num_classes=champion.num_classes, source=champion.source)


def best_rate(fn, texts: list[str], repeat: int) -> int:
    fn(texts[:2000])  # warm: first-call compilation and allocations
    times = [timed_call(fn, texts) for _ in range(repeat)]
    return round(len(texts) / min(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--reviews", type=int, nargs="+", default=[20000, 200000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "predict_default.json"))
    args = ap.parse_args()
    data_dir = Path(args.data_dir)

    real = pl.read_csv(REAL, infer_schema=False)
    tmp = Path(tempfile.mkdtemp(prefix="reviewlstm-predict-"))
    item, bundle = registry.champion_bundle(data_dir)
    result = {"command": "python bench/predict_default.py " + " ".join(sys.argv[1:]), "champion": item["id"],
              "file_to_file": {}, "in_process": {}, "validation": {}}
    for n in args.reviews:
        table = repeated(real, n)
        table.write_csv(tmp / "reviews.csv")
        seconds = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "flows.cli", "predict", "--input", str(tmp / "reviews.csv"),
                            "--output", str(tmp / "rated.parquet"), "--data-dir", str(data_dir)], cwd=ROOT,
                           check=True, capture_output=True)
            seconds.append(round(time.perf_counter() - started, 2))
        result["file_to_file"][n] = {"seconds": seconds, "reviews_per_s": round(n / min(seconds))}
        print(f"command, file to file, {n:,} reviews: {n / min(seconds):,.0f} reviews/s (best of {args.repeat}: {min(seconds):.2f} s)")

    champion = load_bundle(bundle)
    predictors = {"champion": champion, **champion.members,
                  **{name: mix(champion, keep) for name, keep in MIXES.items() if set(keep) <= set(champion.members)}}
    texts = review_texts(real, ["Title", "Review Text"], "bench")[:20000]
    for name, p in predictors.items():
        result["in_process"][name] = best_rate(p.scores, texts, args.repeat)
        print(f"in process, scoring only, {name}: {result['in_process'][name]:,} reviews/s")
    if args.plain and "baseline" in champion.members:
        base = champion.members["baseline"].model
        result["in_process"]["baseline, scikit-learn's transform"] = rate = best_rate(
            lambda t: base.features(t, fast=False), texts, args.repeat)
        print(f"in process, baseline features through scikit-learn's transform: {rate:,} reviews/s")

    # validation rows: ingest's text and label, in the encoded table's order (as evaluate reads them)
    split = pl.read_parquet(newest(data_dir, "06_encoded/*/encoded.parquet"), columns=["split"])["split"] == "valid"
    valid = pl.read_parquet(newest(data_dir, "02_ingested/*/reviews.parquet"), columns=["text", "label"]).filter(split)
    for name, p in predictors.items():
        m = classification_metrics(valid["label"].to_numpy(), p.scores(valid["text"].to_list()),
                                   getattr(p, "class_weights", None))
        result["validation"][name] = {k: round(m[k], 4) for k in ("accuracy", "rmse_expected", "mae", "macro_f1")}
        print(f"validation, {name}: " + ", ".join(f"{k} {v}" for k, v in result["validation"][name].items()))
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
