"""The whole `article` profile, measured: the study's code against `reviewlstm run`, one script run.

- study: a fresh process prepares the data with the project's library functions (not timed:
  this only flatters the study, whose own spaCy preprocessing is slower) and trains the study's four models (bench/study_reference.py: per-item
  Dataset, DataLoader at batch 5000, `pack_padded_sequence` for the variable one, validation
  without no_grad after every epoch) for the study's rounds and epochs, one after another, with
  torch's default threads (one per core), as the study's notebook would. Its time is the sum
  of the four trainings; the process's start, imports and data preparation are left out.
- pipeline: `reviewlstm run --profile article --json` in a fresh data folder and a fresh Prefect
  home (its temporary server's start included), every stage cold: ingest .. evaluate, promote.

Both use seed 0 and the same shuffles, so the metrics are comparable run to run. While each side
runs, its process tree is sampled every 0.5 s: the sum of resident memory (RSS, which counts the
shared torch libraries once per process), the sum of proportional set sizes (PSS, which shares
them out: the memory the run really holds) and the largest single process.

    .venv/bin/python bench/article_wall.py [--scale 1.0] [--order study pipeline]

--scale multiplies every round's epochs (at least 1): 0.02 is a smoke run of the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, environ_without

sys.path.insert(0, str(ROOT))


def scaled_rounds(scale: float) -> dict[str, list[dict]]:
    from reviewlstm.config import article

    return {name: [{"epochs": max(1, round(r.epochs * scale)), "lr": r.lr} for r in v.rounds]
            for name, v in article().variants.items() if hasattr(v, "rounds")}  # the LSTMs


def study_child(scale: float) -> None:
    """The study's training of the four variants, in this fresh process; prints one JSON line."""
    import resource

    import torch

    import speed  # the article profile's data, by the library functions the stages call
    import study_reference as ref

    _, _, train, valid, vocab_size, emb, _ = speed.prepare(speed.REAL)
    out = {"threads": torch.get_num_threads(), "variants": {}}
    for variant, rounds in scaled_rounds(scale).items():
        started = time.perf_counter()
        torch.manual_seed(0)
        model = ref.build(variant, vocab_size, emb)
        train_dl, val_dl = ref.loaders(train, valid, 5000, shuffle_seed=0)
        for r in rounds:  # the study calls train_model once per round: a fresh Adam each time
            for row in ref.epochs(variant, model, train_dl, val_dl, r["epochs"], r["lr"]):
                last = row
        out["variants"][variant] = {"seconds": round(time.perf_counter() - started, 1), **last}
        print(variant, out["variants"][variant], file=sys.stderr, flush=True)
    out["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))


class TreeMemory(threading.Thread):
    """Peak memory of a process and its descendants, sampled from /proc."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every, self.done = pid, every, threading.Event()
        self.peak = {"rss_sum_mb": 0.0, "pss_sum_mb": 0.0, "largest_process_rss_mb": 0.0, "processes": 0}
        self.by_process: dict[str, float] = {}  # peak PSS by what the process runs
        self.at_peak: dict[str, float] = {}  # PSS of each process when the sum peaked

    @staticmethod
    def name(pid: int) -> str:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return "?"
        words = [a.decode(errors="replace") for a in argv if a and not a.startswith(b"/")][:3]
        return " ".join(words)[:60] or "?"

    def tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    @staticmethod
    def sizes(pid: int) -> tuple[float, float]:
        rss = pss = 0.0
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) / 1024
        except OSError:
            pass
        return rss, pss

    def run(self) -> None:
        while not self.done.wait(self.every):
            pids = self.tree()
            sizes = [self.sizes(pid) for pid in pids]
            p = self.peak
            p["rss_sum_mb"] = max(p["rss_sum_mb"], sum(r for r, _ in sizes))
            if (pss_sum := sum(s for _, s in sizes)) > p["pss_sum_mb"]:  # what each process held at the peak
                p["pss_sum_mb"] = pss_sum
                self.at_peak = {f"{self.name(pid)} [{pid}]": pss for pid, (_, pss) in zip(pids, sizes)}
            p["largest_process_rss_mb"] = max(p["largest_process_rss_mb"], max((r for r, _ in sizes), default=0))
            p["processes"] = max(p["processes"], len(sizes))
            for pid, (rss, pss) in zip(pids, sizes):
                name = self.name(pid)
                self.by_process[name] = max(self.by_process.get(name, 0.0), pss)

    def stop(self) -> dict:
        self.done.set()
        self.join()
        return {**{k: round(v) for k, v in self.peak.items()},
                "peak_pss_by_process_mb": {k: round(v) for k, v in self.by_process.items()},
                "pss_at_peak_mb": {k: round(v) for k, v in self.at_peak.items()}}


def timed(cmd: list[str], env: dict) -> tuple[float, str, dict]:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    memory.start()
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    peak = memory.stop()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return seconds, stdout, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="times the study's epochs per round")
    ap.add_argument("--order", nargs=2, default=["pipeline", "study"], choices=["pipeline", "study"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to reviewlstm run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "article_wall.json"))
    ap.add_argument("--study-child", type=float, metavar="SCALE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.study_child is not None:
        return study_child(args.study_child)

    rounds = scaled_rounds(args.scale)
    work = Path(tempfile.mkdtemp(prefix="article-wall-"))
    env = {**environ_without("PREFECT_", "MALLOC_"), "PREFECT_HOME": str(work / "prefect")}
    run_cmd = [sys.executable, "-m", "flows.cli", "run", "--profile", "article", "--data-dir", str(work / "data"), "--json"]
    run_cmd += [x for kv in args.set for x in ("--set", kv)]
    if args.scale != 1.0:
        run_cmd += [x for name, r in rounds.items() for x in ("--set", f"variants.{name}.rounds={json.dumps(r)}")]
    result = {"command": f"python bench/article_wall.py --scale {args.scale} --order {' '.join(args.order)}"
                         + "".join(f" --set {kv}" for kv in args.set),
              "cores": len(os.sched_getaffinity(0)), "rounds": rounds, "load_before": os.getloadavg()}
    sides = {}
    for side in dict.fromkeys(args.order):
        load = os.getloadavg()
        if side == "pipeline":
            seconds, stdout, peak = timed(run_cmd, env)
            summary = json.loads(stdout)
            sides[side] = {"seconds": round(seconds, 1), "memory": peak, "load_before": load,
                           "stages": {s["stage"]: s["seconds"] for s in summary["stages"]},
                           "metrics": {v: {m: summary["metrics"][v].get(m) for m in ("accuracy", "rmse")}
                                       for v in summary["metrics"]}}
        else:
            seconds, stdout, peak = timed([sys.executable, __file__, "--study-child", str(args.scale)], env)
            child = json.loads(stdout.strip().splitlines()[-1])
            sides[side] = {"seconds": round(sum(r["seconds"] for r in child["variants"].values()), 1),
                           "process_seconds": round(seconds, 1), "memory": peak, "load_before": load,
                           "threads": child["threads"],
                           "variant_seconds": {v: r["seconds"] for v, r in child["variants"].items()},
                           "metrics": {v: {m: r.get(m) for m in ("accuracy", "rmse")}
                                       for v, r in child["variants"].items()}}
        print(side, json.dumps(sides[side]), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    result.update(sides=sides, load_after=os.getloadavg())
    if len(sides) == 2:  # else one side only (--order pipeline pipeline): its time and memory
        result["ratio"] = round(sides["pipeline"]["seconds"] / sides["study"]["seconds"], 3)
    Path(args.out).write_text(json.dumps(result, indent=1))
    if "ratio" not in result:
        return
    print(f"\npipeline {sides['pipeline']['seconds']:.0f} s / study {sides['study']['seconds']:.0f} s = "
          f"{result['ratio']:.3f}x")
    print("| variant | study accuracy | pipeline accuracy | study RMSE | pipeline RMSE |")
    print("|---|---|---|---|---|")
    for v in rounds:
        s, p = sides["study"]["metrics"][v], sides["pipeline"]["metrics"][v]
        cell = lambda x: "" if x is None else f"{x:.4f}"  # noqa: E731
        print(f"| {v} | {cell(s['accuracy'])} | {cell(p['accuracy'])} | {cell(s['rmse'])} | {cell(p['rmse'])} |")


if __name__ == "__main__":
    main()
