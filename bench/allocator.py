"""Keeping freed memory (reviewlstm/memory.py), measured side by side.

Each side is one fresh process training one article variant for --epochs full epochs on the real
data (all 18,789 training rows, batch 5000, the full validation pass, one torch thread):

- study:          the study's loop (bench/study_reference.py), glibc's default allocator
- pipeline:       reviewlstm.train.train_model with REVIEWLSTM_MALLOC=default (glibc's defaults)
- pipeline+alloc: train_model as `reviewlstm run` trains (allocator.keep_freed_memory)
- whole batch:    pipeline+alloc with micro_batch=None: each batch of 5000 in one forward and
                  backward pass, as before micro-batches (ModelConfig.micro_batch)
- whole embedding: pipeline+alloc with the first micro-batch design (until 2026-11-29): the
                  batch embedded and its dropout applied at once, only the LSTM and head in
                  parts (kept below as _backward_whole_embedding)

The sides alternate, --reps times. Per side: seconds per epoch (median), user and system CPU
seconds, minor page faults and peak resident memory of the process; the pipeline's per-epoch
losses with and without the settings must be identical (the allocator changes no arithmetic);
with and without micro-batches they may differ by float rounding only (the largest relative
difference is printed).
The whole article profile (90, 90, 90, 60 epochs) is then estimated from the per-epoch medians:
AN EXTRAPOLATION FROM --epochs EPOCHS PER VARIANT, NOT A MEASURED 330-EPOCH RUN.

    .venv/bin/python bench/allocator.py [--epochs 2] [--reps 2] [--variants fixed variable glove regression]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, environ_without

sys.path.insert(0, str(ROOT))

SIDES = ("study", "pipeline", "pipeline+alloc", "whole batch", "whole embedding")


def _backward_whole_embedding(current, model, ids, lengths, target, expected_weight, micro_batch):
    """reviewlstm.train._backward as it was before the embedding went part by part (`current`:
    today's, whose one-pass branch is unchanged)."""
    import torch

    from reviewlstm.train import _loss

    n = len(target)
    if not micro_batch or n <= micro_batch:
        return current(model, ids, lengths, target, expected_weight, micro_batch)
    x = model.embed(ids)
    parts = [p.detach().requires_grad_(x.requires_grad) for p in x.split(micro_batch)]
    total = 0.0
    for part, n_part, y_part in zip(parts, lengths.split(micro_batch), target.split(micro_batch)):
        out = model.output(model.features(part, n_part))
        loss = _loss(out, y_part, model.regress, expected_weight) * (len(y_part) / n)
        loss.backward()
        total += loss.item()
    if x.requires_grad:
        x.backward(torch.cat([p.grad for p in parts]))
    return total


def child(side: str, variant: str, epochs: int) -> None:
    """One side, in this fresh process: prints one JSON line."""
    import torch

    import speed  # the article profile's data, prepared by the library functions
    import study_reference as ref
    from reviewlstm.config import Round
    from reviewlstm import train as library
    from reviewlstm.train import train_model

    if side == "whole embedding":
        library._backward = functools.partial(_backward_whole_embedding, library._backward)

    cfg, _, train, valid, vocab_size, emb, _ = speed.prepare(speed.REAL)
    mcfg = cfg.variants[variant]
    lr = mcfg.rounds[0].lr
    torch.set_num_threads(1)
    times, losses = [], []
    mark = [time.perf_counter()]

    def tick(row: dict) -> None:
        times.append(time.perf_counter() - mark[0])
        losses.append(row["train_loss"])
        mark[0] = time.perf_counter()

    before = resource.getrusage(resource.RUSAGE_SELF)
    if side == "study":
        torch.manual_seed(0)
        model = ref.build(variant, vocab_size, emb)
        train_dl, val_dl = ref.loaders(train, valid, mcfg.batch_size, shuffle_seed=0)
        mark[0] = time.perf_counter()
        for row in ref.epochs(variant, model, train_dl, val_dl, epochs, lr):
            tick(row)
    else:
        mcfg = mcfg.model_copy(update={"rounds": [Round(epochs=epochs, lr=lr)]}
                               | ({"micro_batch": None} if side == "whole batch" else {}))
        mark[0] = time.perf_counter()
        train_model(mcfg, train, valid, vocab_size, seed=0, threads=1, embeddings=emb, on_epoch=tick)
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"epoch_seconds": times, "losses": losses, "user": after.ru_utime - before.ru_utime,
                      "sys": after.ru_stime - before.ru_stime, "minflt": after.ru_minflt - before.ru_minflt,
                      "maxrss_mb": after.ru_maxrss / 1024}))


def run_side(side: str, variant: str, epochs: int) -> dict:
    from reviewlstm.allocator import OPT_OUT

    env = environ_without("MALLOC_")
    env[OPT_OUT] = "default" if side == "pipeline" else "keep"  # the study's loop never asks
    proc = subprocess.run([sys.executable, __file__, "--child", side, variant, str(epochs)], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"{side} {variant} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=["fixed", "variable", "glove", "regression"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "allocator.json"))
    ap.add_argument("--child", nargs=3, metavar=("SIDE", "VARIANT", "EPOCHS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], int(args.child[2]))

    from reviewlstm.config import article

    epochs_of = {name: v.epochs for name, v in article().variants.items()}
    result = {"command": f"python bench/allocator.py --epochs {args.epochs} --reps {args.reps} --variants "
                         + " ".join(args.variants),
              "cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg(), "variants": {}}
    for variant in args.variants:
        runs = {side: [] for side in SIDES}
        for rep in range(args.reps):
            for side in (SIDES if rep % 2 == 0 else SIDES[::-1]):
                runs[side].append(run_side(side, variant, args.epochs))
        row = {}
        for side, rs in runs.items():
            row[side] = {
                "epoch_seconds": round(statistics.median(t for r in rs for t in r["epoch_seconds"]), 2),
                "user_per_epoch": round(statistics.median(r["user"] for r in rs) / args.epochs, 2),
                "sys_per_epoch": round(statistics.median(r["sys"] for r in rs) / args.epochs, 2),
                "minflt_per_epoch": int(statistics.median(r["minflt"] for r in rs) / args.epochs),
                "maxrss_mb": round(max(r["maxrss_mb"] for r in rs)),
            }
        row["same_losses_with_and_without"] = all(
            a["losses"] == b["losses"] for a, b in zip(runs["pipeline"], runs["pipeline+alloc"]))
        row["speedup_alloc_over_default"] = round(row["pipeline"]["epoch_seconds"] / row["pipeline+alloc"]["epoch_seconds"], 2)
        row["micro_batch_max_rel_loss_diff"] = max(
            abs(x - y) / abs(y) for a, b in zip(runs["pipeline+alloc"], runs["whole batch"])
            for x, y in zip(a["losses"], b["losses"]))
        row["speedup_micro_over_whole"] = round(row["whole batch"]["epoch_seconds"] / row["pipeline+alloc"]["epoch_seconds"], 2)
        row["speedup_over_whole_embedding"] = round(
            row["whole embedding"]["epoch_seconds"] / row["pipeline+alloc"]["epoch_seconds"], 2)
        row["whole_embedding_max_rel_loss_diff"] = max(
            abs(x - y) / abs(y) for a, b in zip(runs["pipeline+alloc"], runs["whole embedding"])
            for x, y in zip(a["losses"], b["losses"]))
        row["speedup_over_study"] = round(row["study"]["epoch_seconds"] / row["pipeline+alloc"]["epoch_seconds"], 2)
        result["variants"][variant] = row
        print(variant, json.dumps(row), flush=True)
    if set(args.variants) == set(epochs_of):
        total = {side: sum(epochs_of[v] * result["variants"][v][side]["epoch_seconds"] for v in epochs_of) for side in SIDES}
        result["article_profile_estimate_seconds"] = {k: round(v) for k, v in total.items()}
        result["article_profile_ratio_to_study"] = round(total["pipeline+alloc"] / total["study"], 3)
        print("article profile, estimated:", result["article_profile_estimate_seconds"],
              "ratio", result["article_profile_ratio_to_study"])
    result["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
