"""Every variant of a profile on the project's validation split, over training seeds, beside the
in-pipeline baseline and always predicting the most common rating (issue 17's goals).

For each seed it runs `reviewlstm run --profile PROFILE --set train.seed=S --json` from cold
(a fresh data folder, so the wall time is that of the whole default run) or on --data-dir; the
baseline is a variant of the profile, trained and scored by the pipeline on the same rows.

    python bench/compare.py [--seeds 0 1 2] [--profile best] [--set K=V ...] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from common import ROOT, cli, commit

sys.path.insert(0, str(ROOT))
from reviewlstm.metrics import classification_metrics  # noqa: E402

METRICS = ["accuracy", "rmse", "rmse_expected", "mae", "macro_f1", "within_one"]
# issue 17: the default model; lower is better for rmse and mae
GOAL = {"accuracy": 0.69, "rmse_expected": 0.61, "mae": 0.36, "macro_f1": 0.51}
LOWER = {"rmse", "rmse_expected", "mae"}


def run_pipeline(seed: int, data_dir: str, args: argparse.Namespace) -> tuple[dict, float]:
    argv = ["run", "--profile", args.profile, "--data-dir", data_dir,
            "--set", f"train.seed={seed}", *[x for kv in args.set for x in ("--set", kv)], "--json"]
    started = time.perf_counter()
    stdout = cli(*argv, what=f"seed {seed}")
    return json.loads(stdout), time.perf_counter() - started


def majority(summary: dict) -> dict:
    out = {s["stage"]: Path(s["output"]) for s in summary["stages"]}
    encoded = pl.read_parquet(out["encode"] / "encoded.parquet", columns=["label", "split"])
    train = encoded.filter(pl.col("split") == "train")["label"].to_numpy()
    valid = encoded.filter(pl.col("split") == "valid")["label"].to_numpy()
    probs = np.zeros((len(valid), 5))
    probs[:, np.bincount(train, minlength=5).argmax()] = 1.0
    return classification_metrics(valid, probs)


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
    ap.add_argument("--data-dir", help="reuse this data folder (default: a fresh one per seed: every stage cold)")
    ap.add_argument("--reuse", nargs="+", metavar="DIR",
                    help="one data folder per seed, of an earlier run: what is unchanged comes from cache")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "compare.json"))
    ap.add_argument("--render", action="store_true", help="train nothing: print the table of --out")
    ap.add_argument("--rerun-set", metavar="KEY=VALUE",
                    help="after the last seed, run again on its data folder with this one change and record what ran")
    args = ap.parse_args()
    if args.render:
        return render(json.loads(Path(args.out).read_text()))

    per_model: dict[str, list[dict]] = {}
    walls, stages = [], []
    for seed in args.seeds:
        data_dir = (args.reuse[args.seeds.index(seed)] if args.reuse else
                    args.data_dir or tempfile.mkdtemp(prefix=f"reviewlstm-compare-{seed}-"))
        summary, wall = run_pipeline(seed, data_dir, args)
        walls.append(round(wall, 1))
        seconds = {s["stage"]: s["seconds"] for s in summary["stages"]}
        stages.append(seconds)
        for name, m in summary["metrics"].items():
            per_model.setdefault(name, []).append({**m, "train_seconds": seconds[f"train[{name}]"]})
        print(f"seed {seed}: {wall:.0f} s; " + ", ".join(
            f"{n} acc {m['accuracy']:.4f} rmse_exp {m['rmse_expected']:.4f} mae {m['mae']:.4f} f1 {m['macro_f1']:.4f}"
            for n, m in summary["metrics"].items()), flush=True)
        if not args.data_dir:
            per_model.setdefault("majority (always the most common rating)", []).append(majority(summary))
    rerun = None
    if args.rerun_set:
        again, wall = run_pipeline(args.seeds[-1], data_dir, argparse.Namespace(**{**vars(args), "set": [*args.set, args.rerun_set]}))
        rerun = {"set": args.rerun_set, "wall_seconds": round(wall, 1),
                 "ran": [s["stage"] for s in again["stages"] if s["status"] == "ran"],
                 "cached": [s["stage"] for s in again["stages"] if s["status"] == "cached"]}
        print(f"rerun with {args.rerun_set}: ran {', '.join(rerun['ran'])} in {wall:.0f} s", flush=True)
    table = {name: summarise(runs) for name, runs in per_model.items()}
    command = " ".join(["python bench/compare.py --seeds", *map(str, args.seeds), "--profile", args.profile,
                        *[x for kv in args.set for x in ("--set", kv)], *(["--data-dir", args.data_dir] if args.data_dir else []),
                        *(["--reuse", *args.reuse] if args.reuse else []),
                        *(["--rerun-set", args.rerun_set] if args.rerun_set else [])])
    result = {"command": command, "commit": commit(), "cores": len(os.sched_getaffinity(0)),
              "load_average": os.getloadavg(), "wall_seconds": walls, "stage_seconds": stages, "rerun": rerun,
              "validation_rows": summary["figures"]["encode"]["valid_rows"], "goal": GOAL, "models": table}
    Path(args.out).write_text(json.dumps(result, indent=1))
    render(result)
    if not args.data_dir:
        print(f"(data folder of the last seed kept: {data_dir})")


def render(result: dict) -> None:
    cell = lambda row, m: (f"{row[m]['mean']:.3f} ± {row[m]['spread']:.3f}" if m in row else "")  # noqa: E731
    print(f"\n`{result['command']}` (commit {result.get('commit')}), {result['cores']} cores, "
          f"whole run {', '.join(f'{w:.0f}' for w in result['wall_seconds'])} s\n")
    print("| variant | accuracy | RMSE (class) | RMSE (expected) | MAE | macro-F1 | within one | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in result["models"].items():
        print(f"| {name} | " + " | ".join(cell(row, m) for m in [*METRICS, "train_seconds"]) + " |")
    base = result["models"].get("baseline")
    print("\n| variant | " + " | ".join(f"{m} (goal {g})" for m, g in result["goal"].items()) + " |")
    print("|---|" + "---|" * len(result["goal"]))
    for name, row in result["models"].items():
        if name in ("baseline",) or name.startswith("majority"):
            continue
        cells = []
        for m, goal in result["goal"].items():
            v = row[m]["mean"]
            met = v <= goal if m in LOWER else v >= goal
            beats = base is not None and (v < base[m]["mean"] if m in LOWER else v > base[m]["mean"])
            cells.append(f"{v:.4f} {'met' if met else 'not met'}, {'beats' if beats else 'does not beat'} baseline")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
