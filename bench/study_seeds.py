"""The study's own code (bench/study_reference.py) over several seeds, at its full epochs.

One run of the study's code cannot say whether another seed of the pipeline is "as good": glove
and regression move by 0.1 in RMSE from seed to seed. This runs the study's loop for the chosen
variants and seeds, each seed in its own process (one torch thread each with --parallel, as the
pipeline's seeds ran), seed s meaning what it means in article_wall.py: torch.manual_seed(s)
before each model is built, and the shuffle order of the pipeline's train.seed=s.

    python bench/study_seeds.py --seeds 1 2 [--variants glove regression] [--parallel]
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

from common import ROOT, environ_without

sys.path.insert(0, str(ROOT))


def child(seed: int, variants: list[str], scale: float) -> None:
    """One seed of the study's code, in this fresh process: prints one JSON line."""
    import torch

    import speed  # the article profile's data, by the library functions the stages call
    import study_reference as ref
    from article_wall import scaled_rounds

    _, _, train, valid, vocab_size, emb, emb_source = speed.prepare(speed.REAL)
    out = {"seed": seed, "threads": torch.get_num_threads(), "embeddings": emb_source, "variants": {}}
    for variant, rounds in scaled_rounds(scale).items():
        if variant not in variants:
            continue
        started = time.perf_counter()
        torch.manual_seed(seed)
        model = ref.build(variant, vocab_size, emb)
        train_dl, val_dl = ref.loaders(train, valid, 5000, shuffle_seed=seed)
        history = []
        for r in rounds:  # the study calls train_model once per round: a fresh Adam each time
            history += ref.epochs(variant, model, train_dl, val_dl, r["epochs"], r["lr"])
        out["variants"][variant] = {"seconds": round(time.perf_counter() - started, 1), **history[-1],
                                    "rmse_every_5": [round(h["rmse"], 4) for h in history[4::5]]}
        print(seed, variant, out["variants"][variant], file=sys.stderr, flush=True)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--variants", nargs="+", default=["glove", "regression"])
    ap.add_argument("--parallel", action="store_true", help="all seeds at once, one torch thread each")
    ap.add_argument("--scale", type=float, default=1.0, help="times the study's epochs (0.02: a smoke run)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "study_seeds.json"))
    ap.add_argument("--child", type=int, metavar="SEED", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        return child(args.child, args.variants, args.scale)

    env = environ_without("MALLOC_")
    if args.parallel:
        env["OMP_NUM_THREADS"] = "1"  # torch's intra-op threads: one per seed
    cmd = lambda seed: [sys.executable, __file__, "--child", str(seed), "--variants", *args.variants,  # noqa: E731
                        "--scale", str(args.scale)]
    started, load = time.perf_counter(), os.getloadavg()
    runs: dict[int, dict] = {}
    batches = [args.seeds] if args.parallel else [[s] for s in args.seeds]
    for batch in batches:
        procs = {s: subprocess.Popen(cmd(s), cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for s in batch}
        for seed, proc in procs.items():
            stdout, _ = proc.communicate()
            if proc.returncode != 0:
                sys.exit(f"seed {seed} failed ({proc.returncode})")
            runs[seed] = json.loads(stdout.strip().splitlines()[-1])
    command = ["python", "bench/study_seeds.py", "--seeds", *map(str, args.seeds), "--variants", *args.variants]
    command += ["--parallel"] * args.parallel + (["--scale", str(args.scale)] if args.scale != 1.0 else [])
    result = {"command": " ".join(command),
              "cores": len(os.sched_getaffinity(0)), "load_before": load, "load_after": os.getloadavg(),
              "seconds": round(time.perf_counter() - started, 1), "runs": runs, "mean": {}}
    for variant in args.variants:
        rows = [runs[s]["variants"][variant] for s in args.seeds]
        result["mean"][variant] = {m: round(statistics.mean(r[m] for r in rows), 4)
                                   for m in ("accuracy", "rmse") if m in rows[0]}
        print(variant, "seeds", args.seeds, [(round(r.get("accuracy", 0), 4), round(r["rmse"], 4)) for r in rows],
              "mean", result["mean"][variant])
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
