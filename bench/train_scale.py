"""One epoch of the default model's BiLSTM on an encoded data folder: the training process's peak
memory and its seconds (issue 22: at 10x the data, peak RSS <= 2 GB).

    .venv/bin/python bench/train_scale.py --encoded DATA/06_encoded/KEY/encoded.parquet [--epochs 1]

The training process is what the train stage's child does with its job: the encoded splits as
arrays, then reviewlstm.train.train_model. The model is `best`'s `bilstm` with learned embeddings
in place of the language model's (the same shapes, so the same memory), one thread per core.
Peak: the process's VmHWM (ru_maxrss would carry a parent's size over the exec).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import polars as pl
from reviewlstm.config import profile
from reviewlstm.encode import to_split
from reviewlstm.train import train_model

path, epochs = sys.argv[1], int(sys.argv[2])
started = time.perf_counter()
table = pl.read_parquet(path)
train, valid = to_split(table, "train"), to_split(table, "valid")
del table
loaded = time.perf_counter() - started
best = profile("best").variants["bilstm"]
cfg = type(best).model_validate({**best.model_dump(), "embeddings": "learned", "rounds": [{"epochs": epochs, "lr": 0.003}]})
_, history = train_model(cfg, train, valid, int(train.ids.max()) + 1, seed=0)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"train_rows": len(train), "valid_rows": len(valid), "load_s": round(loaded, 2),
                  "seconds": round(time.perf_counter() - started, 2), "peak_mb": round(hwm / 1024),
                  "history": history}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoded", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_scale.json"))
    args = ap.parse_args()
    proc = subprocess.run([sys.executable, "-c", CHILD, args.encoded, str(args.epochs)], cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), **json.loads(proc.stdout.strip().splitlines()[-1])}
    print(f"{result['train_rows']:,} training rows: {result['seconds']:.0f} s ({result['load_s']:.1f} s loading), "
          f"peak {result['peak_mb']:,} MB")
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
