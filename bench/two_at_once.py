"""Two variants trained at once: what other designs would save in memory, and what splitting a
batch's micro-batches over threads would gain in time. None of these is what `reviewlstm run`
does; they are measured to know whether one would bring the article run under 1 GB with two
variants at a time (bench/RESULTS.md, "Memory: where two variants at a time stand").

Memory (the peak of the summed PSS of the side's process tree, sampled every 0.2 s), each side
training fixed and variable for --epochs epochs of the real data, one torch thread each:

- processes: two `python -m reviewlstm.child` children (as run);
- forked:    one process imports torch and reviewlstm.train, then forks the two workers, which
             share its pages until they write them;
- threads:   one process, two threads (the global random generator is shared, so the losses are
             not the variants' own: a memory figure only).

Time of one batch of 5000 (fixed, micro-batches of 250), best of --reps:

- 1 thread:  as a variant trains with train.threads=1;
- 2 threads: torch's intra-op threads (train.threads=2);
- 2 parts:   the micro-batches on two threads, each one-threaded, their gradients added in
             order: bit-identical to 1 thread (checked here).

    .venv/bin/python bench/two_at_once.py [--epochs 2] [--reps 3] [--out bench/results/two_at_once.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

VARIANTS = ["fixed", "variable"]


def side_processes(jobs: list[Path]) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "reviewlstm.child", str(j)], cwd=ROOT, stdout=subprocess.DEVNULL)
             for j in jobs]
    if any(p.wait() for p in procs):
        sys.exit("a worker failed")


def side_forked(jobs: list[Path]) -> None:
    import torch  # noqa: F401  (the pages the children share)

    import reviewlstm.train  # noqa: F401
    from reviewlstm import child as worker

    children = []
    for job in jobs:
        pid = os.fork()
        if pid == 0:  # the child: stdout to /dev/null, then the worker's main as `-m` runs it
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            os._exit(worker.main(str(job)))
        children.append(pid)
    if any(os.waitpid(pid, 0)[1] for pid in children):
        sys.exit("a forked worker failed")


def side_threads(jobs: list[Path]) -> None:
    import threading

    import torch

    from reviewlstm.train import train_model

    def run(job: Path) -> None:
        torch.set_num_threads(1)
        train_model(**pickle.loads(job.read_bytes())["kwargs"])

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    [t.start() for t in threads]
    [t.join() for t in threads]


def memory(side: str, jobs: list[Path]) -> dict:
    from article_wall import TreeMemory

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--side", side, *map(str, jobs)], cwd=ROOT)
    sampler = TreeMemory(proc.pid, every=0.2)
    sampler.start()
    if proc.wait():
        sys.exit(f"side {side} failed")
    peak = sampler.stop()
    return {"seconds": round(time.perf_counter() - started, 1), "pss_sum_mb": peak["pss_sum_mb"],
            "pss_at_peak_mb": peak["pss_at_peak_mb"]}


def batch_times(job: Path, reps: int) -> dict:
    """One batch of 5000 three ways, in this process; the parts' gradients checked bitwise."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from reviewlstm import train as T
    from reviewlstm.allocator import keep_freed_memory
    from reviewlstm.models import build_model

    keep_freed_memory()
    kw = pickle.loads(job.read_bytes())["kwargs"]
    mb = kw["cfg"].micro_batch
    torch.manual_seed(0)
    model = build_model(kw["cfg"], kw["vocab_size"], 5, None)
    ids, lengths, labels = (torch.from_numpy(a[:5000]) for a in (kw["train"].ids, kw["train"].lengths, kw["train"].labels))
    params = [p for p in model.parameters() if p.requires_grad]
    pool = ThreadPoolExecutor(2, initializer=torch.set_num_threads, initargs=(1,))

    def parts(model, ids, lengths, target, weight, micro_batch) -> float:
        n, keep = len(target), model.dropout_mask(ids)

        def part(at: int):
            s = slice(at, at + micro_batch)
            x = model.dropped(model.embedding(ids[s]), keep[s])
            loss = T._loss(model.output(model.features(x, lengths[s])), target[s], model.regress, weight) * (len(target[s]) / n)
            return loss.item(), torch.autograd.grad(loss, params)

        total = 0.0
        for loss, grads in pool.map(part, range(0, n, micro_batch)):  # in order: the same sums
            for p, g in zip(params, grads):
                if p.grad is None:
                    p.grad = g
                else:
                    p.grad += g
            total += loss
        return total

    def run(fn, threads: int) -> tuple[list[float], float, list]:
        torch.set_num_threads(threads)
        times = []
        for _ in range(reps + 1):  # the first warms up
            model.zero_grad()
            torch.manual_seed(1)  # the same dropout draw every time
            started = time.perf_counter()
            loss = fn(model, ids, lengths, labels, 0.0, mb)
            times.append(time.perf_counter() - started)
        return times[1:], loss, [p.grad.clone() for p in params]

    one, loss1, grads1 = run(T._backward, 1)
    two, _, _ = run(T._backward, 2)
    split, loss_p, grads_p = run(parts, 1)
    same = loss_p == loss1 and all(torch.equal(a, b) for a, b in zip(grads1, grads_p))
    return {"1 thread": round(min(one), 3), "2 threads": round(min(two), 3), "2 parts": round(min(split), 3),
            "parts_equal_1_thread_bitwise": same}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "two_at_once.json"))
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("jobs", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        jobs = [Path(j) for j in args.jobs]
        for job in jobs:  # the workers' parent: this process (processes, threads) or the forks' parent
            data = pickle.loads(job.read_bytes())
            data["parent"] = os.getpid()
            job.write_bytes(pickle.dumps(data))
        return {"processes": side_processes, "forked": side_forked, "threads": side_threads}[args.side](jobs)

    import worker_memory

    folder = Path(tempfile.mkdtemp(prefix="two-at-once-"))
    jobs = list(worker_memory.make_jobs(VARIANTS, args.epochs, folder).values())
    result = {"command": f"python bench/two_at_once.py --epochs {args.epochs} --reps {args.reps}",
              "cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg(), "memory": {}}
    for side in ("processes", "forked", "threads"):
        result["memory"][side] = memory(side, jobs)
        print(side, json.dumps(result["memory"][side]), flush=True)
    result["batch_seconds"] = batch_times(jobs[0], args.reps)
    print("batch of 5000", json.dumps(result["batch_seconds"]), flush=True)
    result["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
