"""Peak memory and time of the training child process (`python -m reviewlstm.child`), as
`reviewlstm run` starts it: the real worker on a pickled job (an article variant on the real data,
--epochs epochs of its first round, one torch thread) in a fresh process.

Per variant: the child's peak resident memory (its VmHWM), what was resident after its imports and
after each epoch, its wall seconds (process start, imports and training), and its per-epoch losses.

    .venv/bin/python bench/worker_memory.py [--epochs 2] [--reps 1] [--variants fixed variable glove regression]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT

sys.path.insert(0, str(ROOT))

SIDES = ("current",)  # the designs it was once compared with are gone

# The child: run the worker's main as `-m` would, noting what is resident along the way.
CHILD = r"""
import sys
def rss():  # resident now, MB
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) / 1024
stages = {"python": rss()}
import torch
stages["import torch"] = rss()
side, job_file = sys.argv[1], sys.argv[2]
from reviewlstm import child as worker, train
stages["reviewlstm imported"] = rss()
run = train.train_model
def train_model(on_epoch, **kwargs):  # each epoch's line also says what is resident then
    return run(on_epoch=lambda row: on_epoch({**row, "rss_mb": rss()}), **kwargs)
train.train_model = train_model
rc = worker.main(job_file)
# VmHWM, not ru_maxrss: Linux carries the parent's resident size over an exec into ru_maxrss,
# and this script's own process holds the prepared data
import json
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"maxrss_mb": hwm / 1024, "dynamo": "torch._dynamo" in sys.modules, "stages": stages}), file=sys.stderr)
sys.exit(rc)
"""


def make_jobs(variants: list[str], epochs: int, folder: Path) -> dict[str, Path]:
    import speed  # the article profile's data, by the library functions the stages call
    from reviewlstm.config import Round

    cfg, _, train, valid, vocab_size, emb, _ = speed.prepare(speed.REAL)
    jobs = {}
    for name in variants:
        m = cfg.variants[name]
        m = m.model_copy(update={"rounds": [Round(epochs=epochs, lr=m.rounds[0].lr)]})
        kwargs = dict(cfg=m, train=train, valid=valid, vocab_size=vocab_size, seed=0, threads=1,
                      embeddings=emb if m.embeddings != "learned" else None, num_classes=5, device="cpu")
        jobs[name] = folder / f"{name}.pkl"
        jobs[name].write_bytes(pickle.dumps({"kwargs": kwargs, "model": str(folder / f"{name}.pt"),
                                             "result": str(folder / f"{name}.json"), "parent": os.getpid()}))
    return jobs


def run_side(side: str, job: Path) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, side, str(job)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{side} {job.stem} failed:\n{stderr[-2000:]}")
    peak = json.loads(stderr.strip().splitlines()[-1])  # the child's own ru_maxrss, printed last
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {"seconds": seconds, "maxrss_mb": peak["maxrss_mb"], "dynamo": peak["dynamo"],
            "losses": [r["train_loss"] for r in rows],
            "rss_mb": {**peak["stages"], **{f"epoch {r['epoch']}": r["rss_mb"] for r in rows}}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=["fixed", "variable", "glove", "regression"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "worker_memory.json"))
    args = ap.parse_args()
    result = {"command": f"python bench/worker_memory.py --epochs {args.epochs} --reps {args.reps} --variants "
                         + " ".join(args.variants), "cores": len(os.sched_getaffinity(0)),
              "load_before": os.getloadavg(), "variants": {}}
    with tempfile.TemporaryDirectory(prefix="worker-memory-") as tmp:
        jobs = make_jobs(args.variants, args.epochs, Path(tmp))
        for name, job in jobs.items():
            rows: dict[str, list[dict]] = {side: [] for side in SIDES}
            for _ in range(args.reps):
                for side in SIDES:
                    rows[side].append(run_side(side, job))
            losses = {side: rows[side][0]["losses"] for side in SIDES}
            result["variants"][name] = {
                side: {"maxrss_mb": round(max(r["maxrss_mb"] for r in rows[side])),
                       "seconds": round(statistics.median(r["seconds"] for r in rows[side]), 2),
                       "imports_torch_dynamo": rows[side][0]["dynamo"],
                       "rss_mb_after": {k: round(v) for k, v in rows[side][0]["rss_mb"].items()}}
                for side in SIDES} | {"same_losses": all(l == losses["current"] for l in losses.values()),
                                      "losses": losses["current"]}
            print(name, json.dumps({k: v for k, v in result["variants"][name].items() if k != "losses"}), flush=True)
    result["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
