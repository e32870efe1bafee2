"""How Predictor.scores spreads the model over the cores, side by side on the same texts.

Sides (each: best of --repeat over the same 40,000 real review texts, the same champion):
- one model thread: nn.LSTM on one thread beside the preprocessing thread (the first design)
- one per core: one model thread per core, each on one torch thread, nn.LSTM (the second)
- one per core, projected: as above through lstm_steps.projected_last_hidden (the current design:
  its steps run as one TorchScript call, without the GIL), at each of --model-batch rows per call

    .venv/bin/python bench/predict_threads.py [--model fixed] [--rounds 2] [--repeat 3] [--model-batch 500 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import polars as pl  # noqa: E402

import predict_throughput as pt  # noqa: E402
from reviewlstm import predict as P  # noqa: E402
from reviewlstm import inference as T  # noqa: E402
from reviewlstm.config import IngestConfig  # noqa: E402
from reviewlstm.ingest import read_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["fixed", "variable"], default="fixed")
    ap.add_argument("--reviews", type=int, default=40_000)
    ap.add_argument("--rounds", type=int, default=2, help="times every side runs, alternating")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model-batch", type=int, nargs="+", default=[P.MODEL_BATCH], help="rows per model call, projected sides")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="reviewlstm-threads-")) / "data"
    predictor = P.load_bundle(data / "champions" / pt.train_champion(pt.REAL, data, 1, args.model))
    full = read_table(pt.REAL)
    table = pl.concat([full] * (args.reviews // len(full) + 1)).head(args.reviews)
    texts = P.review_texts(table, IngestConfig().text_columns, str(pt.REAL))
    cores = P.available_cores

    default_batch = P.MODEL_BATCH

    def side(name: str, batch: int) -> float:
        P.available_cores = (lambda: 1) if name == "one model thread" else cores
        P.MODEL_BATCH = batch
        project = name.startswith("one per core, projected")
        original = T.predict_proba
        # what Predictor.scores imports at call time, with the side's choice of path
        T.predict_proba = lambda *a, **k: original(*a, **{**k, "project": project})
        try:
            predictor.scores(texts)  # warm
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                predictor.scores(texts)
                best = min(best, time.perf_counter() - started)
        finally:
            T.predict_proba, P.available_cores, P.MODEL_BATCH = original, cores, default_batch
        return len(texts) / best

    sides = [("one model thread", 500), ("one per core", 500)]
    sides += [(f"one per core, projected, batch {b}", b) for b in args.model_batch]
    for r in range(args.rounds):
        for name, batch in sides:
            print(f"round {r + 1}, {args.model}, {name}: {side(name, batch):,.0f} reviews/s "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
