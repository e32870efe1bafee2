"""One epoch of the default model's BiLSTM on an encoded data folder: the training process's peak
memory and its seconds (issue 22: at 10x the data, peak RSS <= 2 GB).

    .venv/bin/python bench/train_scale.py --encoded DATA/06_encoded/KEY/encoded.parquet [--epochs 1]
        [--routes mapped whole] [--threads N] [--mmap-threshold-mb N] [--baseline DATA/02_ingested/KEY/reviews.parquet]

The training process is what the train stage's child does with its job: each split's ids
memory-mapped from a file (encode.read_split, route "mapped"; "whole": the table read into memory,
encode.to_split, as before), then reviewlstm.train.train_model; both routes run, one after the other. The model is `best`'s `bilstm` with learned embeddings
in place of the language model's (the same shapes, so the same memory), one thread per core.
Peak: the process's VmHWM (ru_maxrss would carry a parent's size over the exec).

--baseline REVIEWS (the ingested reviews.parquet of the same data folder) adds the default
profile's `baseline` fitted on the training split's texts, as the train-baseline stage does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import ROOT

CHILD = r"""
import json, sys, tempfile, time
import polars as pl
from reviewlstm.config import profile
from reviewlstm.encode import read_split, to_split
from reviewlstm.train import train_model

path, epochs, route, threads, mmap_mb = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
if mmap_mb:  # glibc's mmap threshold set here instead of by allocator.keep_freed_memory (an experiment)
    import ctypes
    import reviewlstm.allocator as allocator
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    allocator._done = (bool(mallopt(allocator._M_MMAP_THRESHOLD, mmap_mb << 20))
                       and bool(mallopt(allocator._M_TRIM_THRESHOLD, allocator._LARGEST)))
started = time.perf_counter()
if route == "mapped":
    folder = tempfile.mkdtemp(prefix="train-scale-")
    train, valid = read_split(path, "train", folder), read_split(path, "valid", folder)
else:
    table = pl.read_parquet(path)
    train, valid = to_split(table, "train"), to_split(table, "valid")
    del table
loaded = time.perf_counter() - started
best = profile("best").variants["bilstm"]
cfg = type(best).model_validate({**best.model_dump(), "embeddings": "learned", "rounds": [{"epochs": epochs, "lr": 0.003}]})
_, history = train_model(cfg, train, valid, int(train.ids.max()) + 1, seed=0, threads=threads or None)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"route": route, "train_rows": len(train), "valid_rows": len(valid), "load_s": round(loaded, 2),
                  "seconds": round(time.perf_counter() - started, 2), "peak_mb": round(hwm / 1024),
                  "history": history}))
"""

BASELINE = r"""
import json, sys, time
import polars as pl
from reviewlstm import baseline
from reviewlstm.config import profile

reviews, encoded = sys.argv[1], sys.argv[2]
started = time.perf_counter()
# tasks.train.split_texts's reading, without the Prefect import that module brings
rows = pl.read_parquet(encoded, columns=["split"])["split"] == "train"
table = pl.read_parquet(reviews, columns=["text", "label"]).filter(rows)
texts, labels = table["text"].to_list(), table["label"].to_numpy()
del table
model = baseline.fit(profile("best").variants["baseline"], texts, labels, 5)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"route": "baseline", "train_rows": len(texts), "features": int(model.coef.shape[1]),
                  "seconds": round(time.perf_counter() - started, 2), "peak_mb": round(hwm / 1024)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoded", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--routes", nargs="*", default=["mapped", "whole"], choices=["mapped", "whole"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: one per core)")
    ap.add_argument("--mmap-threshold-mb", type=int, default=0,
                    help="glibc's mmap threshold instead of keep_freed_memory's (an experiment)")
    ap.add_argument("--baseline", metavar="REVIEWS", help="also fit the baseline; the data folder's 02_ingested/KEY/reviews.parquet")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_scale.json"))
    args = ap.parse_args()
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "routes": {}}
    jobs = [(route, [CHILD, args.encoded, str(args.epochs), route, str(args.threads), str(args.mmap_threshold_mb)])
            for route in args.routes]
    if args.baseline:
        jobs.append(("baseline", [BASELINE, args.baseline, args.encoded]))
    for route, job in jobs:
        proc = subprocess.run([sys.executable, "-c", *job], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
        run = result["routes"][route] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{route}: {run['train_rows']:,} training rows: {run['seconds']:.0f} s, peak {run['peak_mb']:,} MB", flush=True)
    same = len({json.dumps(r["history"]) for r in result["routes"].values() if "history" in r}) <= 1
    print(f"the same history: {same}")
    Path(args.out).write_text(json.dumps({**result, "same_history": same}, indent=1))


if __name__ == "__main__":
    main()
