"""File-to-file prediction with a data folder's champion (the default profile's model), and with
each of its members alone, on the first N real reviews repeated to `--reviews` rows.

    python bench/predict_default.py --data-dir DIR [--reviews 20000] [--repeat 3]

The command (`reviewlstm predict --input reviews.csv --output rated.parquet`, process start and
imports included) and, inside one process with the model loaded, the scoring alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from reviewlstm import registry  # noqa: E402
from reviewlstm.predict import load_bundle, review_texts  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "womens_clothing_reviews.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--reviews", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "predict_default.json"))
    args = ap.parse_args()

    table = pl.read_csv(REAL, infer_schema=False)
    table = pl.concat([table] * (args.reviews // len(table) + 1)).head(args.reviews)
    tmp = Path(tempfile.mkdtemp(prefix="reviewlstm-predict-"))
    table.write_csv(tmp / "reviews.csv")
    item, bundle = registry.champion_bundle(args.data_dir)
    result = {"command": "python bench/predict_default.py " + " ".join(sys.argv[1:]), "champion": item["id"],
              "reviews": args.reviews, "command_seconds": [], "in_process": {}}
    for _ in range(args.repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "flows.cli", "predict", "--input", str(tmp / "reviews.csv"),
                        "--output", str(tmp / "rated.parquet"), "--data-dir", args.data_dir], cwd=ROOT, check=True,
                       capture_output=True)
        result["command_seconds"].append(round(time.perf_counter() - started, 2))
    best = min(result["command_seconds"])
    result["command_reviews_per_s"] = round(args.reviews / best)
    print(f"command, file to file: {args.reviews / best:,.0f} reviews/s (best of {args.repeat}: {best:.2f} s)")
    predictor = load_bundle(bundle)
    texts = review_texts(table, ["Title", "Review Text"], "bench")
    parts = {"champion": predictor, **getattr(predictor, "members", {})}
    for name, p in parts.items():
        p.scores(texts[:2000])  # warm: first-call compilation and allocations
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            p.scores(texts)
            times.append(time.perf_counter() - started)
        result["in_process"][name] = round(len(texts) / min(times))
        print(f"in process, scoring only, {name}: {len(texts) / min(times):,.0f} reviews/s")
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
