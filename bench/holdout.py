"""The default profile on reviews the project never sees: a seeded tenth of the real CSV's rows is
set aside, the pipeline runs on the other rows (its own train/validation split among them), and
each named model rates the set-aside rows through `reviewlstm predict`, file to file, as a user
would: the champion, and each variant with --model.

    python bench/holdout.py [--profile best] [--models baseline lstms] [--fraction 0.1] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from common import REAL, ROOT, cli

sys.path.insert(0, str(ROOT))
from reviewlstm.metrics import classification_metrics  # noqa: E402

SHOWN = ["accuracy", "rmse_expected", "mae", "macro_f1"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="best")
    ap.add_argument("--models", nargs="*", default=["baseline"], help="variants rated besides the champion")
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "holdout.json"))
    ap.add_argument("--reuse", metavar="DIR", help="a folder of an earlier run of this script: rate again, train nothing")
    args = ap.parse_args()

    table = pl.read_csv(REAL, infer_schema=False)
    held = np.random.default_rng(args.seed).permutation(len(table))[: int(round(len(table) * args.fraction))]
    mask = np.zeros(len(table), dtype=bool)
    mask[held] = True
    tmp = Path(args.reuse or tempfile.mkdtemp(prefix="reviewlstm-holdout-"))
    labels = table.filter(mask)["Rating"].cast(pl.Int64).to_numpy() - 1
    data = tmp / "data"
    if not args.reuse:
        table.filter(~mask).write_csv(tmp / "seen.csv")
        table.filter(mask).write_csv(tmp / "unseen.csv")
    started = time.perf_counter()
    # cached stages only, when reused
    summary = json.loads(cli("run", "--profile", args.profile, "--raw", str(tmp / "seen.csv"), "--data-dir", str(data), "--json"))
    result = {"command": "python bench/holdout.py " + " ".join(sys.argv[1:]), "rows_seen": int((~mask).sum()),
              "rows_unseen": int(mask.sum()), "run_seconds": round(time.perf_counter() - started, 1),
              "champion": summary["promotion"]["variant"], "validation": summary["metrics"], "unseen": {}}
    for model in [None, *args.models]:
        out = tmp / f"rated-{model or 'champion'}.parquet"
        extra = ["--model", model] if model else []
        t0 = time.perf_counter()
        cli("predict", "--input", str(tmp / "unseen.csv"), "--output", str(out), "--data-dir", str(data),
            "--profile", args.profile, "--raw", str(tmp / "seen.csv"), *extra)
        seconds = time.perf_counter() - t0
        rated = pl.read_parquet(out)
        probs = rated.select([f"p_{k}" for k in range(1, 6)]).to_numpy()
        m = classification_metrics(labels, probs)
        # the command's own predicted class (a decision rule may differ from the argmax)
        pred = rated["predicted_rating"].to_numpy() - 1
        m.update(accuracy=float(np.mean(pred == labels)), mae=float(np.mean(np.abs(pred - labels))))
        from reviewlstm.metrics import macro_f1

        m["macro_f1"] = macro_f1(labels, pred)
        name = f"champion ({result['champion']})" if model is None else model
        result["unseen"][name] = {**{k: round(float(m[k]), 4) for k in SHOWN}, "predict_seconds": round(seconds, 1)}
        print(f"{name}: " + " ".join(f"{k} {m[k]:.4f}" for k in SHOWN) + f" ({seconds:.1f} s)", flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
