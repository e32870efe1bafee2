"""Tuning for the `best` profile, without ever looking at the validation split.

The project's split (encode seed 42) is made as the pipeline makes it; then a fixed 20% of its
*training* rows becomes the tuning set, and candidates train on the other 80%. The validation
split that `reviewlstm run` reports on is not read at all. Each candidate is a JSON object of
ModelConfig overrides on top of the `best` profile's model; preprocessing overrides go in --prep.

    python bench/tune.py --prep '{"drop_whitespace": true, "max_len": 150}' \
        --candidate '{"hidden_dim": 64}' --candidate '{"pooling": "mean"}' [--seeds 0] [--threads 2]

Prints one line per candidate and seed, appends them to bench/results/tune.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reviewlstm import glove, ingest, text, vocab  # noqa: E402
from reviewlstm.config import CleanConfig, EncodeConfig, IngestConfig, ModelConfig, TokenizeConfig, profile  # noqa: E402
from reviewlstm.encode import Split, encode, to_split  # noqa: E402
from reviewlstm.models import ReviewLSTM  # noqa: E402
from reviewlstm.metrics import classification_metrics, regression_metrics  # noqa: E402
from reviewlstm.paths import find_raw  # noqa: E402
from reviewlstm.train import predict_proba, train_model  # noqa: E402

TUNE_FRACTION, TUNE_SEED = 0.2, 1234


def prepare(prep: dict) -> tuple[Split, Split, list[str]]:
    """(rows to fit on, tuning rows) from the project's training split, and the vocabulary."""
    table = ingest.reviews(ingest.read_table(find_raw(None, ROOT / "data")), IngestConfig(), "raw")
    cleaned = text.clean(table["text"], CleanConfig())
    tokens = text.tokenize(cleaned.to_list(), TokenizeConfig(drop_whitespace=prep.get("drop_whitespace", False)))
    import polars as pl

    tok = pl.DataFrame({"tokens": pl.Series(tokens, dtype=pl.List(pl.Utf8)), "label": table["label"]})
    words = vocab.vocabulary(vocab.count_tokens(tokens), prep.get("min_count", 2))
    encoded = encode(tok, words, EncodeConfig(max_len=prep.get("max_len", 70)))
    train = to_split(encoded, "train")  # the validation split is never touched
    order = np.random.default_rng(TUNE_SEED).permutation(len(train))
    cut = int(round(len(train) * TUNE_FRACTION))
    part = lambda rows: Split(train.ids[rows], train.lengths[rows], train.labels[rows])  # noqa: E731
    return part(np.sort(order[cut:])), part(np.sort(order[:cut])), words["word"].to_list()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prep", default="{}", help="JSON: drop_whitespace, max_len, min_count")
    ap.add_argument("--base", default="best", help="profile whose first variant is the base model")
    ap.add_argument("--candidate", action="append", default=[], help="JSON of ModelConfig overrides")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tune.jsonl"))
    args = ap.parse_args()

    prep = json.loads(args.prep)
    started = time.perf_counter()
    fit, tune, words = prepare(prep)
    print(f"prep {prep}: fit {len(fit)}, tune {len(tune)}, vocab {len(words)}, "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    base = next(iter(profile(args.base).variants.values()))
    emb_cache: dict[int, np.ndarray] = {}
    for cand in args.candidate or ["{}"]:
        cfg = ModelConfig.model_validate({**base.model_dump(), **json.loads(cand)})
        emb = None
        if cfg.embeddings != "learned":
            if cfg.embedding_dim not in emb_cache:
                gw, gv = glove.package_vectors()
                emb_cache[cfg.embedding_dim] = glove.embedding_matrix(words, gw, gv, 0, cfg.embedding_dim)
            emb = emb_cache[cfg.embedding_dim]
        for seed in args.seeds:
            t0 = time.perf_counter()
            state, history = train_model(cfg, fit, tune, len(words), seed=seed, threads=args.threads, embeddings=emb)
            seconds = time.perf_counter() - t0
            model = ReviewLSTM(cfg, len(words))
            model.load_state_dict(state)
            scores = predict_proba(model, tune)
            m = (regression_metrics(tune.labels, scores) if cfg.head == "regress"
                 else classification_metrics(tune.labels, scores))
            m = {k: round(v, 4) for k, v in m.items() if k != "confusion"}
            kept = next((r["epoch"] for r in history if r.get("kept")), len(history))
            line = {"prep": prep, "candidate": json.loads(cand), "seed": seed, "threads": args.threads,
                    "seconds": round(seconds, 1), "epochs": len(history), "kept_epoch": kept, "tune": m}
            print(f"{cand} seed {seed}: acc {m['accuracy']:.4f} rmse_exp {m['rmse_expected']:.4f} "
                  f"mae {m['mae']:.4f} mae_med {m.get('mae_median', m['mae']):.4f} f1 {m['macro_f1']:.4f} "
                  f"| {seconds:.0f} s, {len(history)} epochs, kept {kept}", flush=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
