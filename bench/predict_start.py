"""`reviewlstm predict` with the champion, this checkout against an earlier one, side by side.

    python bench/predict_start.py --data-dir DIR --before CHECKOUT [--reps 5] [--reviews 20000]

DIR holds a finished run's champion (registry.json, champions/). Each side gets its own copy of
those two; this checkout's copy gets the ONNX export a promotion by this version writes
(registry._export_lstms: the champion was promoted before it existed). Measured as a user types
it, a new process each time (`python -m flows.cli predict ...`, run in each checkout): one review
(median and range of --reps), and file to file on the first real reviews repeated to --reviews
(best of 2). The ratings of both sides are compared row by row. Then in this process, scoring
only (text in, probabilities out, best of 2): the champion and each of its LSTMs through torch
(the copy without the export) and through ONNX Runtime.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
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


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{cwd}: {' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the earlier commit")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--reviews", type=int, default=20000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "predict_start.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="predict-start-"))
    sides = {"before": args.before.resolve(), "now": ROOT}
    for side in sides:
        (work / side).mkdir()
        shutil.copy2(args.data_dir / "registry.json", work / side / "registry.json")
        shutil.copytree(args.data_dir / "champions", work / side / "champions")
    _, bundle = registry.champion_bundle(work / "now")
    started = time.perf_counter()
    registry._export_lstms(bundle)
    export_seconds = time.perf_counter() - started
    table = pl.read_csv(REAL, infer_schema_length=0)
    table = repeated(table, args.reviews)
    table.write_csv(work / "reviews.csv")
    py = str(ROOT / ".venv" / "bin" / "python")
    result = {"data_dir": str(args.data_dir), "before": str(args.before), "reps": args.reps, "reviews": args.reviews,
              "export_seconds": round(export_seconds, 2), "one_review": {}, "file": {}}
    for side, cwd in sides.items():
        one = [py, "-m", "flows.cli", "predict", "Lovely dress, the fabric is soft", "--data-dir", str(work / side)]
        timed(one, cwd)  # warm the file cache
        times = [timed(one, cwd) for _ in range(args.reps)]
        result["one_review"][side] = {"median": round(statistics.median(times), 3),
                                      "min": round(min(times), 3), "max": round(max(times), 3)}
        out = work / f"{side}.parquet"
        f = [py, "-m", "flows.cli", "predict", "--input", str(work / "reviews.csv"), "--output", str(out),
             "--data-dir", str(work / side)]
        best = min(timed(f, cwd) for _ in range(2))
        result["file"][side] = {"seconds": round(best, 2), "reviews_per_s": round(args.reviews / best)}
        print(side, result["one_review"][side], result["file"][side], flush=True)
    a, b = (pl.read_parquet(work / f"{s}.parquet") for s in sides)
    probs = [c for c in a.columns if c.startswith("p_")]
    result["ratings_differ"] = int((a["predicted_rating"] != b["predicted_rating"]).sum())
    result["max_probability_difference"] = float(np.abs(a.select(probs).to_numpy() - b.select(probs).to_numpy()).max())
    result["in_process"] = in_process(work, table)
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(work)


def in_process(work: Path, table: pl.DataFrame) -> dict:
    from reviewlstm.predict import Predictor, load_bundle, review_texts

    texts = review_texts(table, ["Title", "Review Text"], "reviews")
    rates: dict = {}
    for side, runtime in (("before", "torch"), ("now", "onnxruntime")):
        champion = load_bundle(registry.champion_bundle(work / side)[1])
        lstms = {n: m for n, m in getattr(champion, "members", {"champion": champion}).items() if isinstance(m, Predictor)}
        for name, predictor in {"champion": champion, **lstms}.items():
            predictor.scores(texts[:2000])  # warm
            best = min(timed_call(predictor.scores, texts) for _ in range(2))
            rates.setdefault(name, {})[runtime] = round(len(texts) / best)
            print(name, runtime, rates[name][runtime], "reviews/s", flush=True)
    return rates


if __name__ == "__main__":
    main()
