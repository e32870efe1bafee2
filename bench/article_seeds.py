"""The study's four variants with its epochs (`--profile article`), over several training seeds.

Runs `reviewlstm run --profile article --set train.seed=S --json` once per seed (the same data
split each time), then prints and saves each variant's mean and spread of the validation
metrics next to the study's published figures.

    python bench/article_seeds.py [--seeds 0 1 2] [--data-dir data]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from reviewlstm.reports import PUBLISHED  # noqa: E402

METRICS = ["accuracy", "rmse", "rmse_expected", "mae", "macro_f1", "within_one"]


def run(seed: int, data_dir: str, profile: str) -> dict:
    cmd = [sys.executable, "-m", "flows.cli", "run", "--profile", profile, "--data-dir", data_dir,
           "--set", f"train.seed={seed}", "--json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"seed {seed} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--profile", default="article")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "article_seeds.json"))
    args = ap.parse_args()

    runs = {seed: run(seed, args.data_dir, args.profile) for seed in args.seeds}
    for seed, s in runs.items():
        print(f"seed {seed}: {s['wall_seconds']} s, " + ", ".join(f"{x['stage']}={x['status']}" for x in s["stages"]), flush=True)
    variants = list(next(iter(runs.values()))["metrics"])
    table = {}
    for v in variants:
        row = {}
        for m in METRICS:
            values = [s["metrics"][v][m] for s in runs.values() if m in s["metrics"][v]]
            if values:
                row[m] = {"mean": round(statistics.mean(values), 4),
                          "spread": round(max(values) - min(values), 4), "values": [round(x, 4) for x in values]}
        row["train_seconds"] = [next(x["seconds"] for x in s["stages"] if x["stage"] == f"train[{v}]") for s in runs.values()]
        table[v] = row
    result = {"command": " ".join(["python", "bench/article_seeds.py", "--seeds", *map(str, args.seeds)]),
              "profile": args.profile, "seeds": args.seeds, "cores": len(os.sched_getaffinity(0)), "variants": table}
    Path(args.out).write_text(json.dumps(result, indent=1))

    print(f"\n| variant | accuracy | RMSE | RMSE (expected) | MAE | macro-F1 | study accuracy | study RMSE |")
    print("|---|---|---|---|---|---|---|---|")
    for v, row in table.items():
        cell = lambda m: f"{row[m]['mean']:.3f} ± {row[m]['spread'] / 2:.3f}" if m in row else ""  # noqa: E731
        study = PUBLISHED.get(v, {})
        print(f"| {v} | {cell('accuracy')} | {cell('rmse')} | {cell('rmse_expected')} | {cell('mae')} | "
              f"{cell('macro_f1')} | {study.get('accuracy', '')} | {study.get('rmse', '')} |")


if __name__ == "__main__":
    main()
