"""What a rerun costs when nothing changed, against the floor: an empty Prefect flow.

    .venv/bin/python bench/rerun.py [--reps 5] [--out bench/results/rerun.json]

In one run, every process fresh and with the same Prefect set-up (no PREFECT_API_URL, so each
run starts its own temporary local server; PREFECT_HOME in a temporary folder):

1. the import check: `python -X importtime -m flows.cli --help` must not import torch or spaCy;
2. a cold `reviewlstm run --profile quick --json` into an empty data folder: each stage's seconds;
3. --reps rounds, in turn: (i) `python -c` running a trivial @flow, (ii) `reviewlstm run
   --until encode` (cached), (iii) `reviewlstm run --profile quick` (cached, every stage): the
   wall time of each process, median over the rounds; goal: (iii) <= (i) + 2 s.

Every process runs through a small wrapper (TRACE: `flows.cli.main(argv)`, as `python -m
flows.cli` does, or the trivial flow) that also times its phases, so the difference between
(iii) and (i) can be told apart from the temporary server's start, which dominates and varies.

Wall times are of whole processes (interpreter start, imports, the temporary server, the flow),
measured on a shared machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
# Each process runs through this wrapper, which times its phases: imports, until the flow's body
# starts (the temporary server's start and the flow run's creation), the body, what follows it.
# `-c TRACE empty` runs a trivial @flow; `-c TRACE <args>` is `python -m flows.cli <args>`.
TRACE = """
import atexit, json, sys, time
t0 = time.perf_counter(); m = {}
def mark(name): m[name] = round(time.perf_counter() - t0, 3)
atexit.register(lambda: sys.stderr.write("TRACE " + json.dumps(m) + "\\n"))
if sys.argv[1:] == ["empty"]:
    from prefect import flow
    mark("imported")
    @flow
    def empty():
        mark("body_start")
        return 1
    empty(); mark("body_end"); mark("returned")
else:
    import flows.cli, flows.pipeline as fp
    mark("imported")
    fn = fp.pipeline.fn
    def traced(*a, **k):
        mark("body_start"); out = fn(*a, **k); mark("body_end"); return out
    fp.pipeline.fn = traced
    code = flows.cli.main(sys.argv[1:]); mark("returned")
    sys.exit(code)
"""
PHASES = ["imports", "server_and_flow_start", "flow_body", "after_body", "exit"]


def load() -> str:
    return "%.2f %.2f %.2f" % os.getloadavg()


def say(*a) -> None:
    print(*a, flush=True)


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_UI_ENABLED="false")
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str, dict[str, float]]:
    """Wall seconds of a fresh process, its stdout, and its phases (seconds each)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    m = json.loads([ln for ln in proc.stderr.splitlines() if ln.startswith("TRACE ")][-1][6:])
    phases = dict(zip(PHASES, [m["imported"], m["body_start"] - m["imported"], m["body_end"] - m["body_start"],
                               m["returned"] - m["body_end"], seconds - m["returned"]]))
    return seconds, proc.stdout, phases


def import_check(env: dict[str, str]) -> dict:
    proc = subprocess.run([PY, "-X", "importtime", "-m", "flows.cli", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
    names = {ln.rsplit("|", 1)[-1].strip().split(".")[0] for ln in lines[1:]}
    total_us = sum(int(ln.split("|")[1]) for ln in lines[1:] if ln.split("|")[1].strip().isdigit())
    heavy = sorted(n for n in names if n in {"torch", "spacy", "prefect", "polars", "numpy", "thinc", "pydantic"})
    return {"modules": len(lines) - 1, "self_import_s": round(total_us / 1e6, 3), "heavy_imported": heavy,
            "torch": "torch" in names, "spacy": "spacy" in names}


def stages(summary: dict) -> dict[str, dict]:
    return {s["stage"]: {"status": s["status"], "seconds": s["seconds"]} for s in summary["stages"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--raw", default=None, help="reviews file (default: the CLI's own search)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "rerun.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rerun-bench-"))
    env = env_for(tmp / "prefect-home")
    data = str(tmp / "data")
    raw = ["--raw", args.raw] if args.raw else []
    res = {"command": " ".join([Path(PY).name, *sys.argv]), "nproc": os.cpu_count(), "load_start": load()}
    say(f"nproc {os.cpu_count()}, load {res['load_start']}, temporary folder {tmp}")
    try:
        res["import_check"] = import_check(env)
        say(f"import check: `-X importtime -m flows.cli --help` imports torch={res['import_check']['torch']} "
            f"spacy={res['import_check']['spacy']}; heavy modules imported: {res['import_check']['heavy_imported']}")

        cli = [PY, "-c", TRACE, "run", "--data-dir", data, "--json", *raw]
        before = load()
        seconds, out, _ = timed([*cli, "--profile", "quick"], env)
        cold = json.loads(out)
        res["cold_quick"] = {"wall_s": round(seconds, 2), "load": f"{before} -> {load()}", "stages": stages(cold)}
        say(f"cold quick run: {seconds:.1f} s (load {res['cold_quick']['load']})")
        for name, s in stages(cold).items():
            say(f"  {name:<22} {s['status']:<7} {s['seconds']:8.2f} s")

        sides = {
            "empty_flow": [PY, "-c", TRACE, "empty"],
            "cached_until_encode": [*cli, "--profile", "quick", "--until", "encode"],
            "cached_quick": [*cli, "--profile", "quick"],
        }
        walls: dict[str, list[float]] = {k: [] for k in sides}
        phases: dict[str, dict[str, list[float]]] = {k: {p: [] for p in PHASES} for k in sides}
        cached_stages: dict[str, list[float]] = {}
        loads = []
        for rep in range(args.reps):
            loads.append(load())
            for name, cmd in sides.items():
                seconds, out, ph = timed(cmd, env)
                walls[name].append(round(seconds, 2))
                for p, v in ph.items():
                    phases[name][p].append(round(v, 3))
                if name != "empty_flow":
                    summary = json.loads(out)
                    ran = [s["stage"] for s in summary["stages"] if s["status"] != "cached"]
                    assert not ran, f"{name}: stages ran on a rerun with nothing changed: {ran}"
                    if name == "cached_quick":
                        for st, s in stages(summary).items():
                            cached_stages.setdefault(st, []).append(s["seconds"])
            say(f"round {rep + 1} (load {loads[-1]}): " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in walls.items()))
        med = {k: statistics.median(v) for k, v in walls.items()}
        ph_med = {k: {p: round(statistics.median(v), 2) for p, v in d.items()} for k, d in phases.items()}
        res["reruns"] = {"wall_s": walls, "median_s": med, "loads": loads, "phases_s": phases, "phase_median_s": ph_med,
                         "cached_quick_over_empty_s": round(med["cached_quick"] - med["empty_flow"], 2),
                         "cached_until_encode_over_empty_s": round(med["cached_until_encode"] - med["empty_flow"], 2),
                         "goal_met": med["cached_quick"] <= med["empty_flow"] + 2.0,
                         "cached_stage_median_s": {k: statistics.median(v) for k, v in cached_stages.items()}}
        r = res["reruns"]
        say(f"median of {args.reps}: empty flow {med['empty_flow']:.2f} s, cached --until encode "
            f"{med['cached_until_encode']:.2f} s (+{r['cached_until_encode_over_empty_s']:.2f}), cached quick "
            f"{med['cached_quick']:.2f} s (+{r['cached_quick_over_empty_s']:.2f}); goal cached <= empty + 2 s: "
            f"{'met' if r['goal_met'] else 'NOT met'}")
        for k, d in ph_med.items():
            say(f"  {k:<20} phases (median s): " + ", ".join(f"{p} {v:.2f}" for p, v in d.items()))
        say("cached stage seconds (median): " + ", ".join(f"{k} {v:.2f}" for k, v in r["cached_stage_median_s"].items()))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    res["load_end"] = load()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
