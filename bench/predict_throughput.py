"""Prediction throughput: a trained model rates 10,000 reviews from a file in one command.

Trains the study's `fixed` model (embedding 50, hidden 50, 70 steps) on the real reviews for one
epoch with the library (speed does not depend on how well it is trained), registers it as the
champion of a temporary data directory, writes the first N reviews to a CSV, then measures:

- the command `reviewlstm predict --input reviews.csv --output rated.csv` end to end (process
  start, imports, reading, preprocessing, the model, writing);
- the same work inside one process, stage by stage, with the model already loaded.

    .venv/bin/python bench/predict_throughput.py [--reviews 10000] [--repeat 3] [--record]

--record appends the figures, the command and the core count to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import REAL, ROOT, commit, repeated

sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from reviewlstm import registry, text, vocab  # noqa: E402
from reviewlstm.config import IngestConfig, ModelConfig, Round  # noqa: E402
from reviewlstm.encode import Split, encode_tokens, split_labels  # noqa: E402
from reviewlstm.fingerprint import dir_digest  # noqa: E402
from reviewlstm.ingest import read_table, reviews  # noqa: E402
from reviewlstm.predict import Preprocess, load_bundle, predict_table, review_texts, write_table  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def train_champion(raw: Path, data_dir: Path, epochs: int, variant: str = "fixed") -> str:
    """The study's fixed (or variable) model, trained for `epochs` on the real reviews, as the champion."""
    import torch

    from reviewlstm.metrics import classification_metrics
    from reviewlstm.train import train_model
    from reviewlstm.inference import predict_proba

    prep = Preprocess()
    table = reviews(read_table(raw), IngestConfig(), str(raw))
    texts, labels = table["text"].to_list(), table["label"].to_numpy().astype(np.int64)
    tokens = text.tokenize(text.clean(pl.Series(texts), prep.clean).to_list(), prep.tokenize)
    words = vocab.vocabulary(vocab.count_tokens(tokens), 2)
    work = data_dir / "bench-model"
    (work / "vocab").mkdir(parents=True)
    (work / "model").mkdir()
    words.write_parquet(work / "vocab" / "vocab.parquet", statistics=False)
    ids, lengths = encode_tokens(tokens, dict(zip(words["word"].to_list(), words["id"].to_list())), prep.max_len)
    valid = split_labels(labels, 0.2, 42, False)
    part = lambda m: Split(ids[m].astype(np.int64), lengths[m].astype(np.int64), labels[m])  # noqa: E731
    cfg = ModelConfig(length="fixed" if variant == "fixed" else "variable", rounds=[Round(epochs=epochs, lr=0.01)])
    state, history = train_model(cfg, part(~valid), part(valid), len(words), seed=0, threads=1)
    torch.save(state, work / "model" / "model.pt")
    vocab_digest = dir_digest(work / "vocab")
    import json

    (work / "model" / "model.json").write_text(json.dumps({
        "name": variant, "config": cfg.model_dump(mode="json"), "vocab_digest": vocab_digest,
        "vocab_size": len(words), "num_classes": 5, "history": history}))
    from reviewlstm.models import ReviewLSTM

    model = ReviewLSTM(cfg, len(words))
    model.load_state_dict(state)
    metrics = classification_metrics(labels[valid], predict_proba(model, part(valid)))
    cand = registry.Candidate(
        metrics={variant: metrics}, models={variant: {"path": str(work / "model"), "digest": dir_digest(work / "model")}},
        vocab={"path": str(work / "vocab"), "digest": vocab_digest}, prep=prep,
        valid_texts=[t for t, v in zip(texts, valid) if v], valid_labels=labels[valid], select_by="rmse_expected",
        run={"id": None, "name": "bench/predict_throughput.py"}, sources={})
    return registry.promote(data_dir, cand)["champion"]


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", default=str(REAL))
    ap.add_argument("--reviews", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--model", choices=["fixed", "variable"], default="fixed", help="the study's model to rate with")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", action="store_true", help=f"append the figures to {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="reviewlstm-bench-"))
    data_dir = work / "data"
    print(f"training the study's {args.model} model for {args.epochs} epoch(s) on {args.raw} ...", flush=True)
    champion = train_champion(Path(args.raw), data_dir, args.epochs, args.model)
    source = work / "reviews.csv"
    full = read_table(args.raw)
    sample = repeated(full, args.reviews)
    sample.write_csv(source)
    n = len(sample)

    # 1. the command, end to end
    command = [sys.executable, "-m", "flows.cli", "predict", "--input", str(source), "--output", str(work / "rated.csv"),
               "--data-dir", str(data_dir)]
    shown = f"reviewlstm predict --input reviews.csv --output rated.csv  # {n:,} reviews"

    def run_command():
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr)

    command_s, _ = timed(run_command, args.repeat)
    assert len(pl.read_csv(work / "rated.csv")) == n

    # 2. in one process, the model loaded once
    predictor = load_bundle(data_dir / "champions" / champion)
    prep = predictor.prep
    from reviewlstm.allocator import keep_freed_memory

    keep_freed_memory()  # as Predictor.scores sets it before its first batch, for every stage below
    stages: dict[str, float] = {}
    stages["read"], table = timed(lambda: read_table(source), args.repeat)
    stages["text columns"], texts = timed(lambda: review_texts(table, IngestConfig().text_columns, str(source)), args.repeat)
    stages["clean"], cleaned = timed(lambda: text.clean(pl.Series(texts), prep.clean).to_list(), args.repeat)
    stages["tokenize"], tokens = timed(lambda: text.tokenize(cleaned, prep.tokenize), args.repeat)
    stages["encode"], (ids, lengths) = timed(lambda: encode_tokens(tokens, predictor.index, prep.max_len), args.repeat)
    series = pl.Series(cleaned)
    stages["tokenize + encode in arrays (lexicon)"], (ids2, lengths2) = timed(
        lambda: predictor.lexicon.encode(series, prep.tokenize, prep.max_len), args.repeat)
    assert (ids2 == ids).all() and (lengths2 == lengths).all()  # what Predictor.encode uses: the same ids

    import torch

    from reviewlstm.predict import MODEL_BATCH
    from reviewlstm.inference import predict_proba

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as Predictor.scores runs each model thread
    if isinstance(predictor.model, torch.nn.Module):  # a bundle scored by ONNX Runtime (reviewlstm/runtime.py) has no torch model
        stages["model (1 thread, nn.LSTM)"], _ = timed(lambda: predict_proba(predictor.model, ids, lengths, MODEL_BATCH, project=False), args.repeat)
        stages["model (1 thread, projected)"], _ = timed(lambda: predict_proba(predictor.model, ids, lengths, MODEL_BATCH), args.repeat)
    torch.set_num_threads(threads)
    pipelined_s, _ = timed(lambda: predictor.scores(texts), args.repeat)
    rated = predict_table(predictor, table, IngestConfig().text_columns, str(source))
    stages["write"], _ = timed(lambda: write_table(rated, work / "rated2.csv"), args.repeat)
    in_process_s, _ = timed(lambda: write_table(predict_table(predictor, read_table(source), IngestConfig().text_columns,
                                                              str(source)), work / "rated3.csv"), args.repeat)

    load = os.getloadavg()
    rows = [(name, s, n / s) for name, s in stages.items()]
    rows += [("preprocess + model, overlapped (Predictor.scores)", pipelined_s, n / pipelined_s),
             ("file -> file in one process (model loaded)", in_process_s, n / in_process_s),
             ("the command, end to end (process start included)", command_s, n / command_s)]
    width = max(len(r[0]) for r in rows)
    lines = [f"{name:<{width}}  {s:7.3f} s  {rate:>10,.0f} reviews/s" for name, s, rate in rows]
    header = (f"{n:,} reviews, {cores()} cores ({platform.processor() or platform.machine()}), load average "
              f"{load[0]:.1f} when done, median of {args.repeat}")
    print(header)
    print("\n".join(lines))
    if args.record:
        record(header, lines, shown, args)
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def record(header: str, lines: list[str], shown: str, args: argparse.Namespace) -> None:
    section = [
        "",
        f"## Prediction throughput ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit() or '?'} + working tree)",
        "",
        f"`.venv/bin/python bench/predict_throughput.py --reviews {args.reviews} --repeat {args.repeat} "
        f"--model {args.model}` (the study's {args.model} model, {args.epochs} training epoch(s); measured command: `{shown}`)",
        "",
        header,
        "",
        "```",
        *lines,
        "```",
        "",
    ]
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEvery measured figure with the command that produced it.\n")
    with RESULTS.open("a") as f:
        f.write("\n".join(section))


if __name__ == "__main__":
    main()
