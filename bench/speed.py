"""Speed of the pipeline against the study's own code (bench/study_reference.py), side by side.

    .venv/bin/python bench/speed.py [--train-rows 10000] [--epochs 2] [--reps 3] [--out bench/results/speed.json]

All figures are ratios taken in this one run, the two sides interleaved: the machine is shared,
so absolute seconds mean little; the load average is printed next to each part.

(a)-(c) Training. For each of the four article variants, the pipeline's
    `reviewlstm.train.train_model` and the study's loop run epoch by epoch in turn: the
    pipeline's `on_epoch` callback runs one epoch of the study's loop, saving and restoring
    torch's global RNG around it, so each side draws exactly the dropout masks it would draw
    alone. Both start from the same seed (identical initial weights, checked), see the same
    batches in the same order (the study's DataLoader is given the pipeline's permutation) and
    the same dropout masks, so their per-epoch training losses must agree: bit for bit where
    both run the same kernels, to float tolerance for the variable-length variant (the study
    packs the batch, the pipeline gathers the output at each true length).
    Training throughput uses the first --train-rows training rows (batch 5000) and a 50-row
    validation split, so an epoch is training only. Whole-epoch times for the full data are then
    extrapolated: seconds per training row x all training rows + one pass over the full
    validation split (timed separately, both sides), and the article profile's training time is
    that x the study's epochs (90, 90, 90, 60). AN EXTRAPOLATION, NOT A MEASURED 90-EPOCH RUN.
(d) Evaluation of the validation split by the pipeline's `_outputs` (inference_mode) against the
    same forward passes under no_grad and with autograd on (the study: no no_grad at all), and
    the pipeline's `_evaluate` against the study's `validation_metrics`.
(e) Tokenizing every cleaned real review: `text.tokenize` (fast path) against spaCy's tokenizer
    alone (the previous implementation), checked identical.
(f) Threads: one training step of the pipeline's fixed model on a 5000-row batch with one torch
    thread against all the cores this process may use (the pipeline's default, train.threads).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from common import REAL, ROOT, load, say, timed_call

sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402

import study_reference as ref  # noqa: E402
from reviewlstm import encode as enc  # noqa: E402
from reviewlstm import ingest, text, vocab  # noqa: E402
from reviewlstm.config import Round, article  # noqa: E402
from reviewlstm.encode import Split  # noqa: E402
from reviewlstm.models import ReviewLSTM, build_model  # noqa: E402
from reviewlstm.cores import available_cores as _cores  # noqa: E402
from reviewlstm.train import _evaluate, train_model  # noqa: E402

ARTICLE_EPOCHS = {name: v.epochs for name, v in article().variants.items() if hasattr(v, "epochs")}  # the LSTMs


def median(xs) -> float:
    return float(statistics.median(xs))


def take(split: Split, n: int) -> Split:
    return Split(split.ids[:n], split.lengths[:n], split.labels[:n])


def prepare(raw: Path):
    """The article profile's ingest .. encode, by the library functions (no Prefect)."""
    cfg = article()
    reviews = ingest.reviews(ingest.read_table(raw), cfg.ingest, source=str(raw))
    cleaned = text.clean(reviews["text"], cfg.clean).to_list()
    tokens = text.tokenize(cleaned, cfg.tokenize)
    table = vocab.vocabulary(vocab.count_tokens(tokens), cfg.prune.min_count)
    encoded = enc.encode(pl.DataFrame({"tokens": pl.Series(tokens, dtype=pl.List(pl.Utf8)),
                                       "label": reviews["label"]}), table, cfg.encode)
    train, valid = enc.to_split(encoded, "train"), enc.to_split(encoded, "valid")
    assert train.lengths.min() >= 1 and valid.lengths.min() >= 1  # pack_padded_sequence needs >= 1
    try:
        from reviewlstm import glove

        words, vectors = glove.package_vectors()
        emb, emb_source = glove.embedding_matrix(table["word"].to_list(), words, vectors, seed=0, dim=50), "GloVe 6B 50d"
    except Exception as e:  # timing does not depend on the values of frozen vectors
        emb = np.random.default_rng(0).uniform(-0.25, 0.25, (len(table), 50)).astype(np.float32)
        emb_source = f"random ({type(e).__name__})"
    return cfg, cleaned, train, valid, len(table), emb, emb_source


def same_initial_weights(variant, mcfg, vocab_size, emb, seed) -> bool:
    torch.manual_seed(seed)
    mine = build_model(mcfg, vocab_size, 5, emb).state_dict()
    torch.manual_seed(seed)
    theirs = ref.pipeline_state(ref.build(variant, vocab_size, emb))
    return set(mine) == set(theirs) and all(torch.equal(mine[k], theirs[k]) for k in mine)


def interleaved_training(variant, mcfg, train, valid, vocab_size, emb, seed, threads, epochs):
    """Both sides, one epoch each in turn; returns per-epoch seconds and losses of each, and
    the two trained models."""
    lr = mcfg.rounds[0].lr
    mcfg = mcfg.model_copy(update={"rounds": [Round(epochs=epochs, lr=lr)]})
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    study_model = ref.build(variant, vocab_size, emb)
    rng = {"study": torch.get_rng_state()}
    train_dl, val_dl = ref.loaders(train, valid, mcfg.batch_size, shuffle_seed=seed)
    study_epochs = ref.epochs(variant, study_model, train_dl, val_dl, epochs, lr)
    t = {"pipeline": [], "study": []}
    rows = {"study": []}
    mark = [time.perf_counter()]

    def on_epoch(row):
        t["pipeline"].append(time.perf_counter() - mark[0])
        mine = torch.get_rng_state()
        torch.set_rng_state(rng["study"])
        start = time.perf_counter()
        rows["study"].append(next(study_epochs))
        t["study"].append(time.perf_counter() - start)
        rng["study"] = torch.get_rng_state()
        torch.set_rng_state(mine)
        mark[0] = time.perf_counter()

    state, history = train_model(mcfg, train, valid, vocab_size, seed=seed, threads=threads, embeddings=emb,
                                 on_epoch=on_epoch)
    model = ReviewLSTM(mcfg, vocab_size)
    model.load_state_dict(state)
    return t, [r["train_loss"] for r in history], [r["train_loss"] for r in rows["study"]], model, study_model


def timed_pairs(reps: int, sides: dict) -> dict[str, list[float]]:
    """Each side once per repetition, in turn; seconds per call."""
    out = {k: [] for k in sides}
    for _ in range(reps):
        for name, fn in sides.items():
            out[name].append(timed_call(fn))
    return out


def forward_all(model, valid: Split, mode: str, bs: int = 5000):
    """The pipeline's _outputs loop under a chosen autograd mode (eval mode throughout)."""
    ctx = {"inference_mode": torch.inference_mode, "no_grad": torch.no_grad, "autograd": torch.enable_grad}[mode]
    model.eval()
    ids, lengths = torch.from_numpy(valid.ids), torch.from_numpy(valid.lengths)
    with ctx():
        out = torch.cat([model(ids[i:i + bs], lengths[i:i + bs]) for i in range(0, len(ids), bs)])
    return out.detach()


def study_validation(variant, model, val_dl):
    return (ref.validation_metrics_regr if variant == "regression" else ref.validation_metrics)(model, val_dl)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", default=str(REAL))
    ap.add_argument("--train-rows", type=int, default=10000, help="training rows timed per epoch (batch 5000)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per variant and side")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the evaluation and tokenizer timings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads, both sides (default 1: on a loaded machine 2 threads are slower and noisier)")
    ap.add_argument("--variants", nargs="+", default=["variable", "fixed", "glove", "regression"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed.json"))
    args = ap.parse_args()
    started = time.perf_counter()
    threads = args.threads or _cores()
    res = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "nproc": os.cpu_count(), "cores_used": threads,
           "torch": torch.__version__, "python": platform.python_version(), "load_start": load()}
    say(f"nproc {os.cpu_count()}, torch threads {threads}, load {res['load_start']}")

    cfg, cleaned, train, valid, vocab_size, emb, emb_source = prepare(Path(args.raw))
    res.update(train_rows=len(train), valid_rows=len(valid), vocab_size=vocab_size, glove=emb_source)
    sub, tiny = take(train, args.train_rows), take(valid, 50)
    say(f"data: {len(train)} training rows, {len(valid)} validation rows, vocabulary {vocab_size}; "
        f"timed on {len(sub)} training rows x {args.epochs} epochs per side")

    # --- (a)-(c) training, then the full validation pass of each side -------------------------
    res["variants"] = {}
    for variant in args.variants:
        mcfg = cfg.variants[variant]
        before = load()
        same_init = same_initial_weights(variant, mcfg, vocab_size, emb, args.seed)
        t, mine, theirs, model, study_model = interleaved_training(
            variant, mcfg, sub, tiny, vocab_size, emb, args.seed, threads, args.epochs)
        rel = max(abs(a - b) / abs(b) for a, b in zip(mine, theirs))
        _, full_val_dl = ref.loaders(train, valid, mcfg.batch_size, shuffle_seed=args.seed)
        ev = timed_pairs(2, {"pipeline": lambda: _evaluate(model, valid, mcfg.batch_size, 5),
                             "study": lambda: study_validation(variant, study_model, full_val_dl)})
        row = {
            "load": f"{before} -> {load()}",
            "same_initial_weights": same_init,
            "train_loss_pipeline": mine, "train_loss_study": theirs, "max_rel_diff": rel,
            "bitwise_equal": mine == theirs,
            "epoch_s": t, "valid_pass_s": ev,
        }
        for side in ("pipeline", "study"):
            per_row = median(t[side]) / len(sub)
            row[f"{side}_seq_per_s"] = 1 / per_row
            row[f"{side}_full_epoch_s"] = per_row * len(train) + median(ev[side])
        row["train_speedup"] = row["pipeline_seq_per_s"] / row["study_seq_per_s"]
        row["valid_speedup"] = median(ev["study"]) / median(ev["pipeline"])
        row["full_epoch_speedup"] = row["study_full_epoch_s"] / row["pipeline_full_epoch_s"]
        res["variants"][variant] = row
        say(f"[{variant}] load {row['load']}; identical initial weights {same_init}; train losses pipeline "
            f"{[round(x, 7) for x in mine]} study {[round(x, 7) for x in theirs]} (max rel diff {rel:.1e}, "
            f"bitwise {row['bitwise_equal']}); training {row['pipeline_seq_per_s']:.0f} vs "
            f"{row['study_seq_per_s']:.0f} seq/s = {row['train_speedup']:.2f}x; validation pass "
            f"{row['valid_speedup']:.2f}x; full epoch (extrapolated) {row['pipeline_full_epoch_s']:.1f} s vs "
            f"{row['study_full_epoch_s']:.1f} s = {row['full_epoch_speedup']:.2f}x")

    if set(res["variants"]) == set(ARTICLE_EPOCHS):
        profile = {side: sum(res["variants"][v][f"{side}_full_epoch_s"] * ARTICLE_EPOCHS[v] for v in res["variants"])
                   for side in ("pipeline", "study")}
        res["article_profile_training_s_extrapolated"] = profile
        say(f"article profile training, EXTRAPOLATED (per-epoch times x {ARTICLE_EPOCHS}): pipeline "
            f"{profile['pipeline'] / 60:.1f} min, study {profile['study'] / 60:.1f} min, "
            f"{profile['study'] / profile['pipeline']:.2f}x (at this load)")

    # --- (d) evaluation: inference_mode vs no_grad vs autograd on --------------------------------
    res["evaluation_modes"] = {}
    for variant in [v for v in ("fixed", "variable") if v in args.variants]:
        before = load()
        torch.manual_seed(args.seed)
        model = build_model(cfg.variants[variant], vocab_size, 5, emb)
        outs = {m: forward_all(model, valid, m) for m in ("inference_mode", "no_grad", "autograd")}
        # autograd-on forward runs oneDNN's training kernel: equal to float rounding, not bitwise
        diff = max(float((outs["inference_mode"] - o).abs().max()) for o in outs.values())
        modes = timed_pairs(args.reps, {m: (lambda m=m: forward_all(model, valid, m))
                                        for m in ("inference_mode", "no_grad", "autograd")})
        row = {"load": f"{before} -> {load()}", "seconds": modes, "max_abs_output_diff": diff,
               "autograd_over_inference_mode": median(modes["autograd"]) / median(modes["inference_mode"]),
               "no_grad_over_inference_mode": median(modes["no_grad"]) / median(modes["inference_mode"])}
        res["evaluation_modes"][variant] = row
        say(f"[eval {variant}] load {row['load']}; validation forward: autograd on / inference_mode "
            f"{row['autograd_over_inference_mode']:.2f}x, no_grad / inference_mode {row['no_grad_over_inference_mode']:.2f}x "
            f"(outputs differ by at most {diff:.1e})")

    # --- (e) tokenizer ------------------------------------------------------------------------------
    before = load()
    spacy_tok = text._tokenizer()

    def spacy_only():
        return [[t.text for t in doc] for doc in spacy_tok.pipe(cleaned, batch_size=cfg.tokenize.batch_size)]

    assert text.tokenize(cleaned, cfg.tokenize) == spacy_only()
    tk = timed_pairs(args.reps, {"fast": lambda: text.tokenize(cleaned, cfg.tokenize), "spacy": spacy_only})
    stage = timed_pairs(args.reps, {
        "fast": lambda: pl.Series("tokens", text.tokenize(cleaned, cfg.tokenize), dtype=pl.List(pl.Utf8)),
        "spacy": lambda: pl.Series("tokens", spacy_only(), dtype=pl.List(pl.Utf8))})
    res["tokenize"] = {
        "load": f"{before} -> {load()}", "reviews": len(cleaned), "seconds": tk, "stage_seconds": stage,
        "fast_reviews_per_s": len(cleaned) / median(tk["fast"]), "spacy_reviews_per_s": len(cleaned) / median(tk["spacy"]),
        "speedup": median(tk["spacy"]) / median(tk["fast"]),
        "stage_speedup": median(stage["spacy"]) / median(stage["fast"]),
    }
    r = res["tokenize"]
    say(f"[tokenize] load {r['load']}; {len(cleaned)} reviews: fast {r['fast_reviews_per_s']:.0f}/s, spaCy "
        f"{r['spacy_reviews_per_s']:.0f}/s = {r['speedup']:.2f}x (identical tokens); with the stage's "
        f"polars Series: {r['stage_speedup']:.2f}x")

    # --- (f) torch threads ---------------------------------------------------------------------
    if _cores() > 1:
        before = load()
        torch.manual_seed(args.seed)
        model = build_model(cfg.variants["fixed"], vocab_size, 5, emb)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        batch = take(train, 5000)
        ids, lengths, y = (torch.from_numpy(a) for a in (batch.ids, batch.lengths, batch.labels))

        def step(n):
            def run():
                torch.set_num_threads(n)
                loss = torch.nn.functional.cross_entropy(model(ids, lengths), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            return run

        step(1)(), step(_cores())()
        th = timed_pairs(args.reps, {"1": step(1), str(_cores()): step(_cores())})
        torch.set_num_threads(threads)
        res["threads"] = {"load": f"{before} -> {load()}", "seconds": th,
                          "all_cores_over_one": median(th[str(_cores())]) / median(th["1"])}
        say(f"[threads] load {res['threads']['load']}; a training step (fixed, batch 5000) with {_cores()} threads "
            f"takes {res['threads']['all_cores_over_one']:.2f}x the time of 1 thread")

    res["load_end"] = load()
    res["wall_s"] = round(time.perf_counter() - started, 1)
    say(f"done in {res['wall_s']} s, load {res['load_end']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
