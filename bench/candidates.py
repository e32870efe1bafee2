"""Candidate models for the default profile, measured on a tuning split of the training rows.

The project's split is made by the pipeline itself (`reviewlstm run --until glove`); then
`reviewlstm.tuning.tuning_split` carves 20% of the *training* rows (none with a validation
review's text) as the tuning rows, and each candidate trains on the other training rows. The
validation split is never read. Each candidate is NAME=JSON, a variant config of any kind (an
LSTM's JSON is merged over the base profile's first variant); its tuning-row probabilities go to
bench/results/candidates/NAME-sSEED.npy and one line per run to bench/results/candidates.jsonl.

    python bench/candidates.py --candidate bilstm='{}' --candidate baseline='{"kind": "baseline"}' --seeds 0 1
    python bench/candidates.py --combine   # ensembles and decision rules from the saved probabilities
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from common import ROOT

sys.path.insert(0, str(ROOT))

from reviewlstm.config import PipelineConfig, profile  # noqa: E402
from reviewlstm.encode import Split, to_split  # noqa: E402
from reviewlstm.metrics import classification_metrics  # noqa: E402
from reviewlstm.tuning import tuning_split  # noqa: E402

OUT = ROOT / "bench" / "results" / "candidates"
SHOWN = ["accuracy", "rmse_expected", "mae", "macro_f1"]


def stage_outputs(prof: str, sets: list[str]) -> dict[str, Path]:
    cmd = [sys.executable, "-m", "flows.cli", "run", "--profile", prof, "--until", "glove", "--json",
           *[x for kv in sets for x in ("--set", kv)]]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return {s["stage"]: Path(s["output"]) for s in json.loads(proc.stdout)["stages"]}


def data(prof: str, sets: list[str]) -> dict:
    out = stage_outputs(prof, sets)
    reviews = pl.read_parquet(out["ingest"] / "reviews.parquet")
    encoded = pl.read_parquet(out["encode"] / "encoded.parquet")
    is_train = encoded["split"] == "train"
    texts = reviews.filter(is_train)["text"].to_list()
    fit, tune = tuning_split(texts, reviews.filter(~is_train)["text"].to_list())
    train = to_split(encoded, "train")
    part = lambda rows: Split(train.ids[rows], train.lengths[rows], train.labels[rows])  # noqa: E731
    return {"fit": part(fit), "tune": part(tune), "fit_texts": [texts[i] for i in fit],
            "tune_texts": [texts[i] for i in tune], "vocab_size": pl.read_parquet(out["prune"] / "vocab.parquet").height,
            "glove": np.load(out["glove"] / "embeddings.npy") if "glove" in out else None}


def pretrained(lm: dict, d: dict, seed: int, threads: int) -> tuple[dict, dict]:
    """The encoder of a language model trained on the fit rows' text (never the tuning rows'),
    kept in /tmp between candidates of the same settings."""
    import hashlib

    import torch

    from reviewlstm.config import LMConfig
    from reviewlstm.lm import pretrain

    cfg = LMConfig.model_validate(lm)
    path = Path("/tmp/reviewlstm-bench-lm") / (hashlib.sha256(f"{cfg.model_dump_json()}{seed}{len(d['fit'])}".encode()).hexdigest()[:16] + ".pt")
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        return saved["state"], saved["info"]
    started = time.perf_counter()
    state, history = pretrain(cfg, d["fit"].ids, d["fit"].lengths, d["vocab_size"], d["glove"], seed, threads,
                              on_epoch=lambda r: print(f"  lm epoch {r['epoch']}: loss {r['train_loss']:.3f} "
                                                       f"({time.perf_counter() - started:.0f} s)", flush=True))
    info = {"lm_seconds": round(time.perf_counter() - started, 1), "lm_loss": [round(r["train_loss"], 4) for r in history]}
    path.parent.mkdir(exist_ok=True)
    torch.save({"state": state, "info": info}, path)
    return state, info


def teacher_probs(teacher: dict[str, float]) -> np.ndarray:
    """A weighted mean of saved candidates' probabilities on the fit rows (--save-fit)."""
    return sum(w * np.load(OUT / "fit" / f"{n}.npy").astype(np.float64) for n, w in teacher.items()) / sum(teacher.values())


def train_candidate(cfg, d: dict, seed: int, threads: int, lm: dict | None = None, save_fit: str | None = None,
                    teacher: dict | None = None, teacher_weight: float = 0.5) -> tuple[np.ndarray, dict]:
    if cfg.kind == "baseline":
        from reviewlstm import baseline

        model = baseline.fit(cfg, d["fit_texts"], d["fit"].labels, 5)
        if save_fit:  # out-of-fold probabilities on the fit rows: a teacher that has not seen the row
            fold = np.random.default_rng(0).permutation(len(d["fit"])) % 5
            fit = np.zeros((len(d["fit"]), 5))
            for k in range(5):
                part = baseline.fit(cfg, [t for t, f in zip(d["fit_texts"], fold) if f != k], d["fit"].labels[fold != k], 5)
                fit[fold == k] = part.proba([t for t, f in zip(d["fit_texts"], fold) if f == k])
            (OUT / "fit").mkdir(exist_ok=True)
            np.save(OUT / "fit" / f"{save_fit}.npy", fit.astype(np.float32))
        return model.proba(d["tune_texts"]), {}
    from reviewlstm.models import ReviewLSTM
    from reviewlstm.train import train_model
    from reviewlstm.inference import predict_proba

    encoder, info = pretrained(lm, d, seed, threads) if lm is not None else (None, {})
    started = time.perf_counter()
    state, history = train_model(cfg, d["fit"], d["tune"], d["vocab_size"], seed=seed + cfg.seed, threads=threads,
                                 embeddings=d["glove"], encoder=encoder,
                                 teacher=teacher_probs(teacher) if teacher else None, teacher_weight=teacher_weight)
    info["fine_tune_seconds"] = round(time.perf_counter() - started, 1)
    model = ReviewLSTM(cfg, d["vocab_size"])
    model.load_state_dict(state)
    kept = next((r["epoch"] for r in history if r.get("kept")), len(history))
    if save_fit:  # in-sample: the LSTM trained on 90% of these rows
        (OUT / "fit").mkdir(exist_ok=True)
        np.save(OUT / "fit" / f"{save_fit}.npy", predict_proba(model, d["fit"]).astype(np.float32))
    return predict_proba(model, d["tune"]), {**info, "epochs": len(history), "kept_epoch": kept}


def shown(m: dict) -> str:
    return " ".join(f"{k} {m[k]:.4f}" for k in SHOWN)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="best", help="its preprocessing, and its first variant as the LSTM base")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="preprocessing overrides")
    ap.add_argument("--candidate", action="append", default=[], metavar="NAME=JSON")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--combine", metavar="LSTM,LSTM,...", help="saved LSTM candidates (NAME-sSEED) to ensemble")
    ap.add_argument("--baseline", default="baseline-s0", help="with --combine: the saved baseline candidate")
    ap.add_argument("--save-fit", action="store_true", help="also save the fit rows' probabilities (a teacher's)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.combine:
        result = combine(args.combine.split(","), args.baseline)
        with open(OUT.parent / "candidates_combined.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        return
    d = data(args.profile, args.set)
    np.save(OUT / "labels.npy", d["tune"].labels)
    print(f"fit {len(d['fit'])} rows, tune {len(d['tune'])}, vocab {d['vocab_size']}", flush=True)
    base = next(v for v in profile(args.profile).variants.values() if v.kind == "lstm").model_dump()
    for item in args.candidate:
        name, spec = item.split("=", 1)
        spec = json.loads(spec)
        lm = spec.pop("lm", None)  # LMConfig: pretrain the encoder, then embeddings="pretrained"
        teacher, teacher_weight = spec.pop("teacher", None), spec.pop("teacher_weight", 0.5)  # distillation
        variant = spec if spec.get("kind", "lstm") != "lstm" else {**base, **spec, **({"embeddings": "pretrained"} if lm else {})}
        cfg = PipelineConfig.model_validate({"variants": {name: variant}, **({"pretrain": lm} if lm else {})}).variants[name]
        for seed in args.seeds if cfg.kind == "lstm" else [0]:
            started = time.perf_counter()
            probs, info = train_candidate(cfg, d, seed, args.threads, lm, f"{name}-s{seed}" if args.save_fit else None,
                                          teacher, teacher_weight)
            seconds = time.perf_counter() - started
            np.save(OUT / f"{name}-s{seed}.npy", probs.astype(np.float32))
            m = {k: round(v, 4) for k, v in classification_metrics(d["tune"].labels, probs).items() if k != "confusion"}
            line = {"name": name, "candidate": {**spec, **({"lm": lm} if lm else {}),
                                                **({"teacher": teacher, "teacher_weight": teacher_weight} if teacher else {})}, "seed": seed, "profile": args.profile, "set": args.set,
                    "threads": args.threads, "seconds": round(seconds, 1), **info, "tune": m}
            print(f"{name} seed {seed}: {shown(m)} | {seconds:.0f} s {info}", flush=True)
            with open(OUT.parent / "candidates.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")


def class_weights_for_f1(probs: np.ndarray, y: np.ndarray, max_accuracy_loss: float | None) -> list[float]:
    """Per-class multipliers of p for the predicted class, by coordinate search: on macro-F1
    keeping accuracy within max_accuracy_loss of argmax p, or (None) on accuracy + macro-F1."""
    grid = np.exp(np.linspace(-1.0, 1.5, 26))
    w = np.ones(probs.shape[1])
    floor = np.mean(probs.argmax(1) == y) - (max_accuracy_loss or 0.0)

    def score(w):
        m = classification_metrics(y, probs, class_weights=w)
        if max_accuracy_loss is None:
            return m["accuracy"] + m["macro_f1"]
        return m["macro_f1"] if m["accuracy"] >= floor else -1.0

    best = score(w)
    for _ in range(3):
        for k in range(len(w)):
            for g in grid:
                trial = w.copy()
                trial[k] = g
                if (value := score(trial)) > best:
                    best, w = value, trial
    return [round(float(x), 3) for x in w / w.max()]


def combine(lstms: list[str], base: str) -> dict:
    """The LSTMs averaged, then with the baseline at each weight, then the decision rule for
    macro-F1: its class weights fitted on one half of the tuning rows and scored on the other
    (both ways, so the figure is not of rows it was fitted on), then fitted on all of them."""
    y = np.load(OUT / "labels.npy")
    saved = {n: np.load(OUT / f"{n}.npy").astype(np.float64) for n in [*lstms, base]}
    rows = {n: classification_metrics(y, saved[n]) for n in saved}
    lstm = np.mean([saved[n] for n in lstms], 0)
    rows[f"mean of {', '.join(lstms)}"] = classification_metrics(y, lstm)
    for w in np.round(np.arange(0.3, 0.95, 0.05), 2):
        rows[f"{w:.2f} x LSTMs + {1 - w:.2f} x {base}"] = classification_metrics(y, w * lstm + (1 - w) * saved[base])
    best_w = max((w for w in np.round(np.arange(0.3, 0.95, 0.05), 2)),
                 key=lambda w: rows[f"{w:.2f} x LSTMs + {1 - w:.2f} x {base}"]["accuracy"])
    halves = np.random.default_rng(0).permutation(len(y)) % 2 == 0
    result = {"lstms": lstms, "baseline": base, "weight": float(best_w), "rows": {}}
    for name, p in (("LSTMs", lstm), ("ensemble", best_w * lstm + (1 - best_w) * saved[base])):
        for loss in (0.0, 0.005, None):
            cross = []
            for fit_half in (halves, ~halves):
                cw = class_weights_for_f1(p[fit_half], y[fit_half], loss)
                cross.append(classification_metrics(y[~fit_half], p[~fit_half], class_weights=cw))
            cw = class_weights_for_f1(p, y, loss)
            rule = "on accuracy + macro-F1" if loss is None else f"accuracy loss <= {loss}"
            rows[f"{name} + decision rule ({rule}) {cw}, cross-fitted halves"] = {
                k: float(np.mean([c[k] for c in cross])) for k in SHOWN}
            result.setdefault("class_weights", {})[f"{name} {loss}"] = cw
    prior = np.bincount(y, minlength=5) / len(y)  # the tuning rows' classes: a part of training's
    for name, p in (("LSTMs", lstm), ("ensemble", best_w * lstm + (1 - best_w) * saved[base])):
        for a in (0.1, 0.2, 0.3, 0.5):  # a one-number rule: p_k / prior_k^a counters the imbalance
            rows[f"{name} / prior^{a}"] = classification_metrics(y, p, class_weights=list(prior ** -a))
            result.setdefault("prior_rule", {})[f"{name} {a}"] = [round(float(x), 3) for x in prior ** -a / (prior ** -a).max()]
    for name, m in rows.items():
        print(f"{name:90s} {shown(m)}")
        result["rows"][name] = {k: round(float(m[k]), 4) for k in SHOWN}
    return result


if __name__ == "__main__":
    main()
