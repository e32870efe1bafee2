"""The study's four variants with its epochs (`--profile article`), over several training seeds.

Runs `reviewlstm run --profile article --set train.seed=S --json` once per seed (the same data
split each time), then prints and saves each variant's mean and spread of the validation
metrics next to the study's published figures. With --parallel the seeds run at the same time,
each with its own Prefect home (give them --set train.threads=1 on a 2-core machine). Each seed's
run summary is saved beside --out as OUT_seedS.json (OUT: --out's name without .json; with
--variant, OUT_seedS_V.json): article_seeds_seed0.json by default.

    python bench/article_seeds.py [--seeds 0 1 2] [--data-dir data] [--parallel] [--set K=V ...] [--variant V ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT

sys.path.insert(0, str(ROOT))
from reviewlstm.reports import PUBLISHED  # noqa: E402

METRICS = ["accuracy", "rmse", "rmse_expected", "mae", "macro_f1", "within_one"]


def start(seed: int, args: argparse.Namespace) -> tuple[subprocess.Popen, float]:
    cmd = [sys.executable, "-m", "flows.cli", "run", "--profile", args.profile, "--data-dir", args.data_dir,
           "--set", f"train.seed={seed}", *[x for kv in args.set for x in ("--set", kv)],
           *[x for v in args.variant for x in ("--variant", v)], "--json"]
    env = dict(os.environ)
    if args.parallel:  # one Prefect home (and temporary server) per run
        home = Path(args.data_dir).resolve() / f".prefect-seed{seed}"
        home.mkdir(parents=True, exist_ok=True)  # Prefect's server cannot create its database's folder
        env["PREFECT_HOME"] = str(home)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, time.perf_counter()


def seed_file(out: str, seed: int, variants: list[str]) -> Path:
    """Where a seed's run summary is kept: beside --out, named after it, the seed and --variant."""
    return Path(out).with_name(f"{Path(out).stem}_seed{seed}" + "".join(f"_{v}" for v in variants) + ".json")


def finish(seed: int, proc: subprocess.Popen, started: float, path: Path) -> dict:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"seed {seed} failed:\n{stderr[-3000:]}")
    summary = json.loads(stdout)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    # the largest resident set of any process this script has waited for so far (the run, or
    # the Prefect server it started): with runs one after another, a bound on each run's peak
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    path.write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--profile", default="article")
    ap.add_argument("--parallel", action="store_true", help="run the seeds at the same time")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to reviewlstm run")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME",
                    help="only these variants (passed to reviewlstm run; default: the profile's)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "article_seeds.json"))
    ap.add_argument("--reuse", type=int, nargs="*", default=[], metavar="SEED",
                    help="seeds whose finished run is read from its summary (OUT_seedS.json), not run again")
    args = ap.parse_args()

    path = lambda seed: seed_file(args.out, seed, args.variant)  # noqa: E731
    reused = {seed: json.loads(path(seed).read_text()) for seed in args.reuse}
    asked, args.seeds = args.seeds, [seed for seed in args.seeds if seed not in reused]
    if args.parallel:
        started = {seed: start(seed, args) for seed in args.seeds}
        runs = {seed: finish(seed, *started[seed], path(seed)) for seed in args.seeds}
    else:
        runs = {seed: finish(seed, *start(seed, args), path(seed)) for seed in args.seeds}
    runs = dict(sorted({**reused, **runs}.items()))
    for seed, s in runs.items():
        print(f"seed {seed}: {s['wall_seconds']} s, peak RSS {s['peak_rss_mb']} MB, " + ", ".join(f"{x['stage']}={x['status']}" for x in s["stages"]), flush=True)
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
    command = ["python", "bench/article_seeds.py", "--seeds", *map(str, asked)]
    command += ["--reuse", *map(str, reused)] if reused else []
    command += ["--parallel"] * args.parallel + [x for kv in args.set for x in ("--set", kv)]
    command += [x for v in args.variant for x in ("--variant", v)]
    result = {"command": " ".join(command),
              "peak_rss_mb": max(s["peak_rss_mb"] for s in runs.values()),
              "wall_seconds": {seed: s["wall_seconds"] for seed, s in runs.items()},
              "profile": args.profile, "seeds": list(runs), "cores": len(os.sched_getaffinity(0)), "variants": table}
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
