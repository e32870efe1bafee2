"""Wall time of the local commands a user types, on a data folder whose every stage is cached.

For a `stage` command the overhead is also given: its wall time less the seconds the stage
itself took (the command's own figure for it), the goal being "own compute + <= 2 s".

    python bench/local_commands.py --data-dir data [--reps 5] [--out bench/results/local_commands.json]

Each command runs `--reps` times as a user runs it (`.venv/bin/reviewlstm ...`, a new process each
time, no Prefect server running, PREFECT_API_URL unset); median, min and max. The data folder must
hold a finished `reviewlstm run` of the default profile (and so a champion).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT

REVIEW = "Love this dress! The fabric is soft and it fits perfectly."


def commands(data_dir: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    other_home = tempfile.mkdtemp(prefix="bench-prefect-home-")
    return {
        "run, every stage cached": (["run", "--data-dir", data_dir, "--json"], {}),
        "run, every stage cached, another PREFECT_HOME": (["run", "--data-dir", data_dir, "--json"], {"PREFECT_HOME": other_home}),
        "status": (["status", "--data-dir", data_dir], {}),
        "stage clean (computes clean; its inputs cached)": (["stage", "clean", "--data-dir", data_dir, "--json"], {}),
        "stage evaluate (computes evaluate; its inputs cached)": (["stage", "evaluate", "--data-dir", data_dir, "--json"], {}),
        "stage train --variant baseline (fits the baseline)": (["stage", "train", "--variant", "baseline", "--data-dir", data_dir, "--json"], {}),
        "predict one review": (["predict", REVIEW, "--data-dir", data_dir], {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "local_commands.json"))
    args = ap.parse_args()
    exe = str(Path(sys.executable).parent / "reviewlstm")
    base = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = {"command": "python bench/local_commands.py " + " ".join(sys.argv[1:]), "commands": {}}
    for name, (argv, env) in commands(args.data_dir).items():
        seconds, statuses, overheads = [], None, []
        for _ in range(args.reps):
            started = time.perf_counter()
            proc = subprocess.run([exe, *argv], cwd=ROOT, env={**base, **env}, capture_output=True, text=True)
            seconds.append(round(time.perf_counter() - started, 3))
            if proc.returncode != 0:
                raise SystemExit(f"{name}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
            if "--json" in argv and argv[0] in ("run", "stage"):
                stages = json.loads(proc.stdout)["stages"]
                statuses = {s["stage"]: s["status"] for s in stages}
                if argv[0] == "stage":
                    overheads.append(round(seconds[-1] - sum(s["seconds"] for s in stages if s["stage"].split("[")[0] == argv[1]), 3))
        row = {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds), "seconds": seconds}
        if statuses is not None:
            row["ran"] = [s for s, status in statuses.items() if status == "ran"]
        if overheads:
            row["overhead"] = {"median": statistics.median(overheads), "min": min(overheads), "max": max(overheads)}
        result["commands"][name] = row
        print(f"{name:55s} median {row['median']:6.2f} s  (min {row['min']:.2f}, max {row['max']:.2f})"
              + (f"  ran: {row['ran'] or 'nothing'}" if "ran" in row else "")
              + (f"  overhead median {row['overhead']['median']:.2f} s" if "overhead" in row else ""), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
