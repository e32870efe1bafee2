"""Ratings for new reviews, through exactly the preprocessing the model was trained with.

text -> `text.clean` -> `text.tokenize` -> `encode.encode_tokens` (the model's vocabulary and
max_len; these two run as array operations, `array_tokenizer.Lexicon`, giving the same ids) ->
`inference.predict_proba` -> a rating: the most probable class + label_min, or the regression output
rounded half up, clipped to the scale, + label_min.

A model is loaded from a folder holding `model.json` and its weights (what the train stage writes:
an LSTM's `model.pt`, the baseline's arrays, an ensemble's member folders), a vocabulary folder
(what the prune stage writes) and the preprocessing settings (`Preprocess`). The baseline reads
the text as ingest joins it; an ensemble averages its members. A champion bundle (see
`reviewlstm.registry`) holds all three: the model's files, `vocab/` and `preprocess.json`.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from reviewlstm import runtime, text
from reviewlstm.config import (BaselineConfig, CleanConfig, EnsembleConfig, IngestConfig, ModelConfig, PipelineConfig,
                               TokenizeConfig)
from reviewlstm.cores import available_cores
from reviewlstm.encode import encode_tokens
from reviewlstm.ensemble import combine
from reviewlstm.errors import InputError, os_error_code
from reviewlstm.array_tokenizer import Lexicon
from reviewlstm.allocator import keep_freed_memory
from reviewlstm.metrics import predicted_class
from reviewlstm.fingerprint import dir_digest
from reviewlstm.storage import atomic_file

PREPROCESS = "preprocess.json"
VOCAB = "vocab.parquet"
BATCH = 2_000  # reviews preprocessed at a time (while the model scores the previous batch)
MODEL_BATCH = 500  # rows per forward pass: small batches stay in cache (faster on CPU)
OUTPUT_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class Preprocess(BaseModel):
    """Every setting that turns a review's text into a model's input, and ids into ratings."""

    model_config = ConfigDict(extra="forbid")

    text_columns: list[str] = Field(default_factory=lambda: ["Title", "Review Text"])
    clean: CleanConfig = Field(default_factory=CleanConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    max_len: int = 70
    label_min: int = 1
    label_max: int = 5

    @classmethod
    def of(cls, cfg: PipelineConfig) -> "Preprocess":
        return cls(text_columns=list(cfg.ingest.text_columns), clean=cfg.clean, tokenize=cfg.tokenize,
                   max_len=cfg.encode.max_len, label_min=cfg.ingest.label_min, label_max=cfg.ingest.label_max)


@dataclass
class Prediction:
    """ratings (n,) on the user's scale; probabilities (n, C) for a classifier, else None;
    expected (n,): the expected rating (classifier) or the clipped regression output."""

    ratings: np.ndarray
    probabilities: np.ndarray | None
    expected: np.ndarray


@dataclass
class Predictor:
    name: str
    model: Any  # reviewlstm.models.ReviewLSTM in eval mode, or its export (runtime.Session)
    index: dict[str, int]
    prep: Preprocess
    num_classes: int
    regress: bool
    source: str  # the folder it was loaded from, for messages
    class_weights: list[float] | None = None  # the argmax's: only ensembles have a decision rule

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Texts -> (ids, lengths) as the pipeline's clean, tokenize and encode stages make them
        (tokenize and encode in arrays: reviewlstm/array_tokenizer.py)."""
        cleaned = text.clean(pl.Series("text", texts, dtype=pl.Utf8).fill_null(""), self.prep.clean)
        if self.lexicon is None:
            tokens = text.tokenize(cleaned.to_list(), self.prep.tokenize)
            return encode_tokens(tokens, self.index, self.prep.max_len)
        return self.lexicon.encode(cleaned, self.prep.tokenize, self.prep.max_len)

    @cached_property
    def lexicon(self) -> Lexicon | None:
        try:
            return Lexicon.of(self.index)
        except ValueError:  # a spaCy whose special cases do not fit its keys: strings, as the stages do
            return None

    def scores(self, texts: list[str], batch_size: int = BATCH) -> np.ndarray:
        """Class probabilities (n, C), or regression outputs (n,) on the class scale 0..C-1."""
        return side_by_side([self], [], texts, batch_size)[0]

    def predict(self, texts: list[str], batch_size: int = BATCH) -> Prediction:
        return to_ratings(self.scores(texts, batch_size), self.regress, self.num_classes, self.prep.label_min)


def side_by_side(lstms: list[Predictor], others: list[Any], texts: list[str], batch_size: int = BATCH) -> list[np.ndarray]:
    """The scores of each predictor, LSTMs first; the LSTMs share one vocabulary and preprocessing.

    This thread cleans, tokenizes and encodes batch after batch, once for every LSTM, and scores
    the other predictors (the baseline) on each batch meanwhile; one model thread per core scores
    the batches as they come (the model's steps run without the GIL), each on one torch thread:
    an LSTM this small gains little from a second thread inside one forward pass, and much from a
    second pass running beside it. A row's result does not depend on the batching (beyond float
    rounding).
    """
    if not texts:
        return [np.zeros((0,) if p.regress else (0, p.num_classes), dtype=np.float32) for p in lstms] + [
            p.scores([]) for p in others]
    torch = None
    if not all(isinstance(p.model, runtime.Session) for p in lstms):  # a bundle's exports need no torch
        import torch
    previous, switch = torch.get_num_threads() if torch else None, sys.getswitchinterval()
    if torch:
        torch.set_num_threads(1)
    keep_freed_memory()  # no page faults on every batch's buffers (reviewlstm/allocator.py)
    # Each torch call of a model thread needs the GIL, which pure-Python tokenizing holds for
    # up to the switch interval (5 ms by default): a shorter one keeps the models from waiting.
    sys.setswitchinterval(0.0005)
    try:
        with ThreadPoolExecutor(max_workers=available_cores()) as pool:
            futures: list[list[Any]] = [[] for _ in lstms]
            parts: list[list[np.ndarray]] = [[] for _ in others]
            for i in range(0, len(texts), batch_size):
                batch = texts[i : i + batch_size]
                if lstms:
                    ids, lengths = lstms[0].encode(batch)
                    for pending, p in zip(futures, lstms):
                        pending.append(pool.submit(_scores, p.model, ids, lengths))
                for done, p in zip(parts, others):
                    done.append(p.scores(batch))
            return [np.concatenate([f.result() for f in pending]) for pending in futures] + [np.concatenate(d) for d in parts]
    finally:
        if torch:
            torch.set_num_threads(previous)
        sys.setswitchinterval(switch)


def _scores(model: Any, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """One LSTM's scores: through ONNX Runtime (a bundle's export) or torch."""
    if isinstance(model, runtime.Session):
        return model.scores(ids, lengths, MODEL_BATCH)
    from reviewlstm.inference import predict_proba

    return predict_proba(model, ids, lengths, MODEL_BATCH)


def to_ratings(scores: np.ndarray, regress: bool, num_classes: int, label_min: int,
               class_weights: list[float] | None = None) -> Prediction:
    """Model outputs -> ratings on the user's scale (label_min .. label_min + C - 1)."""
    if regress:
        clipped = np.clip(np.asarray(scores, dtype=np.float64), 0, num_classes - 1)
        classes = np.floor(clipped + 0.5).astype(np.int64)  # half up, as the metrics round
        return Prediction(classes + label_min, None, clipped + label_min)
    probs = np.asarray(scores, dtype=np.float64)
    return Prediction(predicted_class(probs, class_weights) + label_min, probs, probs @ np.arange(num_classes) + label_min)


@dataclass
class BaselinePredictor:
    """The TF-IDF + logistic regression baseline: it reads the review text as ingest joins it."""

    name: str
    model: Any  # reviewlstm.baseline.Baseline
    prep: Preprocess
    num_classes: int
    source: str
    regress: bool = False
    class_weights: list[float] | None = None

    def scores(self, texts: list[str], batch_size: int = BATCH) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.num_classes))
        return np.concatenate([self.model.proba(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])

    def predict(self, texts: list[str], batch_size: int = BATCH) -> Prediction:
        return to_ratings(self.scores(texts, batch_size), False, self.num_classes, self.prep.label_min)


@dataclass
class EnsemblePredictor:
    """Members' class probabilities averaged with the ensemble's weights."""

    name: str
    members: dict[str, Any]  # name -> a predictor of this module
    cfg: EnsembleConfig
    prep: Preprocess
    num_classes: int
    source: str
    regress: bool = False

    @property
    def class_weights(self) -> list[float] | None:
        return self.cfg.class_weights

    def scores(self, texts: list[str], batch_size: int = BATCH) -> np.ndarray:
        lstms = [n for n, m in self.members.items() if isinstance(m, Predictor) and m.prep == self.prep]
        # one encoding serves the LSTMs that share a vocabulary (a bundle's members all do)
        lstms = [n for n in lstms if self.members[n].index == self.members[lstms[0]].index]
        others = [n for n in self.members if n not in lstms]
        scores = side_by_side([self.members[n] for n in lstms], [self.members[n] for n in others], texts, batch_size)
        return combine(dict(zip(lstms + others, scores)), self.cfg)

    def predict(self, texts: list[str], batch_size: int = BATCH) -> Prediction:
        return to_ratings(self.scores(texts, batch_size), False, self.num_classes, self.prep.label_min,
                          self.class_weights)


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; expected the {what}") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({type(e).__name__}); expected the {what}") from None


def load(model_dir: str | Path, vocab_dir: str | Path, prep: Preprocess) -> Any:
    """A model folder (model.json and its weights) with the vocabulary folder it was trained
    with: a Predictor for an LSTM, a BaselinePredictor or an EnsemblePredictor by its kind."""
    model_dir, vocab_dir = Path(model_dir), Path(vocab_dir)
    meta = _read_json(model_dir / "model.json", "model description written by the train stage")
    kind = meta.get("config", {}).get("kind", "lstm") if isinstance(meta.get("config"), dict) else "lstm"
    if kind == "baseline":
        return _load_baseline(model_dir, meta, prep)
    if kind == "ensemble":
        return _load_ensemble(model_dir, vocab_dir, meta, prep)
    return _load_lstm(model_dir, vocab_dir, meta, prep)


def _bad_meta(model_dir: Path, e: Exception, expected: str) -> InputError:
    return InputError(f"{model_dir / 'model.json'}: {e.__class__.__name__} {e}; expected {expected}")


def _load_lstm(model_dir: Path, vocab_dir: Path, meta: dict, prep: Preprocess) -> "Predictor":
    try:
        cfg = ModelConfig.model_validate(meta["config"])
        vocab_digest, vocab_size, num_classes = meta["vocab_digest"], int(meta["vocab_size"]), int(meta["num_classes"])
    except (KeyError, TypeError, ValueError) as e:
        raise _bad_meta(model_dir, e, "name, config, vocab_digest, vocab_size, num_classes") from None
    vocab_file = vocab_dir / VOCAB
    if not vocab_file.is_file():
        raise InputError(f"{vocab_file}: no such file; expected the vocabulary the model was trained with")
    found = dir_digest(vocab_dir, skip=["record.json"])
    if found != vocab_digest:
        raise InputError(f"{vocab_file}: vocabulary digest {found[:12]} does not match the model's {vocab_digest[:12]}; "
                         f"expected the vocabulary {model_dir / 'model.json'} was trained with")
    try:
        vocab = pl.read_parquet(vocab_file, columns=["id", "word"])
    except Exception as e:  # corrupt file: several exception types
        raise InputError(f"{vocab_file}: not a readable vocabulary ({type(e).__name__}); expected columns id, word") from None
    if len(vocab) != vocab_size:
        raise InputError(f"{vocab_file}: {len(vocab)} words, expected {vocab_size} (model.json's vocab_size)")
    return Predictor(name=str(meta.get("name", model_dir.name)), model=_lstm_model(model_dir, cfg, vocab_size, num_classes),
                     index=dict(zip(vocab["word"].to_list(), vocab["id"].to_list())), prep=prep,
                     num_classes=num_classes, regress=cfg.head == "regress", source=str(model_dir))


def _lstm_model(model_dir: Path, cfg: ModelConfig, vocab_size: int, num_classes: int) -> Any:
    """A bundle's ONNX export when ONNX Runtime is there (no torch to import), else the torch model."""
    onnx = model_dir / runtime.ONNX
    if onnx.is_file() and not (model_dir / "model.pt").is_file():  # a damaged bundle, not a lighter one
        raise InputError(f"{model_dir / 'model.pt'}: no such file; expected the weights {onnx.name} was exported from")
    if onnx.is_file() and runtime.available():
        try:
            return runtime.Session(onnx, variable=cfg.length == "variable")
        except Exception as e:  # ONNX Runtime's errors have no common base class
            raise InputError(f"{onnx}: not a readable ONNX model ({type(e).__name__}); expected the export "
                             "promotion writes (delete the file to predict through torch)") from None
    from reviewlstm.inference import load_model

    return load_model(cfg, vocab_size, model_dir / "model.pt", num_classes)


def _load_baseline(model_dir: Path, meta: dict, prep: Preprocess) -> "BaselinePredictor":
    from reviewlstm import baseline

    try:
        cfg, num_classes = BaselineConfig.model_validate(meta["config"]), int(meta["num_classes"])
    except (KeyError, TypeError, ValueError) as e:
        raise _bad_meta(model_dir, e, "name, config (a baseline's), num_classes") from None
    return BaselinePredictor(name=str(meta.get("name", model_dir.name)), model=baseline.load(cfg, model_dir),
                             prep=prep, num_classes=num_classes, source=str(model_dir))


def _load_ensemble(model_dir: Path, vocab_dir: Path, meta: dict, prep: Preprocess) -> "EnsemblePredictor":
    try:
        cfg, num_classes = EnsembleConfig.model_validate(meta["config"]), int(meta["num_classes"])
        folders = {name: (model_dir / meta["members"][name]["folder"], meta["members"][name]["digest"])
                   for name in cfg.members}
    except (KeyError, TypeError, ValueError) as e:
        raise _bad_meta(model_dir, e, "name, config (an ensemble's), num_classes, members with folder and digest") from None
    members = {}
    for name, (folder, digest) in folders.items():
        # the digest is of the trained model; a bundle's ONNX export beside it is made from it
        if not folder.is_dir() or dir_digest(folder, skip=["record.json", runtime.ONNX]) != digest:
            raise InputError(f"{folder}: member {name!r} of the ensemble is missing or changed since the ensemble "
                             f"was made; expected the model with digest {digest[:12]}")
        members[name] = load(folder, vocab_dir, prep)
        if members[name].regress or members[name].num_classes != num_classes:
            raise InputError(f"{folder}: member {name!r} does not give {num_classes} class probabilities")
    return EnsemblePredictor(name=str(meta.get("name", model_dir.name)), members=members, cfg=cfg, prep=prep,
                             num_classes=num_classes, source=str(model_dir))


def load_bundle(folder: str | Path) -> Predictor:
    """A champion bundle: model.pt, model.json, vocab/ and preprocess.json in one folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; expected a model bundle (model.pt, model.json, vocab/, {PREPROCESS})")
    raw = _read_json(folder / PREPROCESS, "preprocessing settings of the bundle")
    try:
        prep = Preprocess.model_validate(raw)
    except ValueError as e:
        raise InputError(f"{folder / PREPROCESS}: {str(e).splitlines()[0]}; expected the bundle's preprocessing settings") from None
    return load(folder, folder / "vocab", prep)


# --- tables of reviews in, tables of ratings out -------------------------------------------


def review_texts(table: pl.DataFrame, text_columns: list[str], source: str) -> list[str]:
    """The text of each row as ingest builds it: the text columns joined by one space."""
    from reviewlstm.ingest import checked_columns, text_column

    table = checked_columns(table, text_columns, source, what="text columns")
    table = table.with_columns(text_column(table, c, source) for c in text_columns)
    joined = pl.concat_str([pl.col(c).fill_null("") for c in text_columns], separator=" ")
    return table.select(joined.alias("text"))["text"].to_list()


def rating_columns(pred: Prediction, label_min: int) -> dict[str, Any]:
    """predicted_rating, expected_rating and, for a classifier, p_<rating> per rating."""
    cols: dict[str, Any] = {"predicted_rating": pred.ratings.astype(np.int64),
                            "expected_rating": np.round(pred.expected, 4)}
    if pred.probabilities is not None:
        for k in range(pred.probabilities.shape[1]):
            cols[f"p_{k + label_min}"] = np.round(pred.probabilities[:, k], 4)
    return cols


def predict_table(predictor: Predictor, table: pl.DataFrame, text_columns: list[str], source: str,
                  batch_size: int = BATCH) -> pl.DataFrame:
    """The input table with the rating columns appended (an existing column of that name is replaced)."""
    texts = review_texts(table, text_columns, source)
    cols = rating_columns(predictor.predict(texts, batch_size), predictor.prep.label_min)
    return table.with_columns([pl.Series(name, values) for name, values in cols.items()])


def output_format(path: str | Path) -> str:
    fmt = OUTPUT_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown output type {Path(path).suffix!r}; expected .csv, .tsv or .parquet")
    return fmt


def write_table(table: pl.DataFrame, path: str | Path) -> Path:
    """Write CSV/TSV/Parquet by the extension, atomically: a temporary file renamed into place."""
    path = Path(path)
    fmt = output_format(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise InputError(f"{path}: {path.parent} is a file, not a folder; expected an existing folder")
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist; expected an existing folder")
    try:
        with atomic_file(path) as f:
            if fmt == "parquet":
                table.write_parquet(f)
            else:
                table.write_csv(f, separator="\t" if fmt == "tsv" else ",")
    except Exception as e:  # a full or read-only disk: named after the output, not the data folder
        if (code := os_error_code(e)) is None:
            raise
        raise OSError(code, os.strerror(code), str(path)) from e
    return path


# --- one description of "which model", shared by the command, the flow and the registry --------


def load_ref(ref: dict[str, Any]) -> Predictor:
    """{"bundle": folder} (a champion), or {"model_dir", "vocab_dir", "prep"} (a stage output)."""
    if ref.get("bundle"):
        return load_bundle(ref["bundle"])
    return load(ref["model_dir"], ref["vocab_dir"], Preprocess.model_validate(ref["prep"]))


def score_file(predictor: Predictor, source: str | Path, output: str | Path, text_columns: list[str],
               batch_size: int = BATCH, ingest: IngestConfig | None = None) -> dict[str, Any]:
    """Read a CSV/TSV/Parquet of reviews (written as `ingest` says: encoding, separator, quoting),
    rate every row, write the table with its ratings."""
    from reviewlstm.ingest import read_table

    output_format(output)  # a bad output name fails before any work
    table = read_table(source, ingest)
    rated = predict_table(predictor, table, text_columns, str(source), batch_size)
    write_table(rated, output)
    counts = rated["predicted_rating"].value_counts().sort("predicted_rating")
    return {"input": str(source), "output": str(output), "rows": len(rated),
            "ratings": {str(r): int(n) for r, n in counts.iter_rows()}}
