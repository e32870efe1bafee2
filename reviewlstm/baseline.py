"""The bag-of-words baseline: TF-IDF of word and character n-grams, then logistic regression.

Fitted with scikit-learn on the ingested review text (punctuation and case are signal for
character n-grams). Saved as plain tables and arrays, never a pickle, and scored again through
scikit-learn's own vectorizers rebuilt from them, so loading a saved model runs no code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from reviewlstm.config import BaselineConfig
from reviewlstm.errors import InputError
from reviewlstm.ngrams import Counter

TERMS = "terms.parquet"  # analyzer, term, column, idf
WEIGHTS = "weights.npz"  # coef (C, F), intercept (C,)
FAST_FROM = 1500  # texts: for fewer, building the array counters costs more than it saves (bench/RESULTS.md)


def _vectorizers(cfg: BaselineConfig) -> dict[str, TfidfVectorizer]:
    common = dict(min_df=cfg.min_df, sublinear_tf=True, dtype=np.float32)
    return {"word": TfidfVectorizer(ngram_range=tuple(cfg.word_ngrams), **common),
            "char_wb": TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(cfg.char_ngrams), **common)}


@dataclass
class Baseline:
    vectorizers: dict[str, TfidfVectorizer]  # fitted, in column order
    coef: np.ndarray  # (C, F)
    intercept: np.ndarray  # (C,)
    fast: dict[str, tuple[Counter, TfidfTransformer] | None] = field(default_factory=dict)  # made on first use

    def features(self, texts: list[str], fast: bool = True) -> sp.csr_matrix:
        """TF-IDF rows. fast: n-grams counted in arrays (reviewlstm/ngrams.py; scikit-learn's
        char_wb analyzer is pure Python, bench/RESULTS.md), weighted by scikit-learn; False: the
        vectorizers' own transform. The two agree exactly (tests/test_ngrams.py)."""
        parts = []
        fast = fast and len(texts) >= FAST_FROM
        for name, v in self.vectorizers.items():
            if fast and name not in self.fast:
                self.fast[name] = _fast(v)
            if not fast or self.fast[name] is None:
                parts.append(v.transform(texts))
            else:
                counter, weighting = self.fast[name]
                parts.append(weighting.transform(counter.counts(texts), copy=False))
        return sp.hstack(parts, format="csr")

    def proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (n, C): LogisticRegression.predict_proba's softmax of the logits."""
        logits = np.asarray(self.features(texts) @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def _fast(v: TfidfVectorizer) -> tuple[Counter, TfidfTransformer] | None:
    """The array counter of a fitted vectorizer and the weighting its transform applies."""
    counter = Counter.of(v)
    if counter is None:
        return None
    weighting = TfidfTransformer(norm=v.norm, use_idf=v.use_idf, smooth_idf=v.smooth_idf, sublinear_tf=v.sublinear_tf)
    weighting.idf_ = v.idf_
    return counter, weighting


def fit(cfg: BaselineConfig, texts: list[str], labels: np.ndarray, num_classes: int) -> Baseline:
    """Fit the vectorizers and the classifier on the training rows."""
    vectorizers = _vectorizers(cfg)
    x = sp.hstack([v.fit_transform(texts) for v in vectorizers.values()], format="csr")
    clf = LogisticRegression(C=cfg.C, max_iter=cfg.max_iter).fit(x, labels)
    coef = np.zeros((num_classes, x.shape[1]), dtype=np.float64)
    intercept = np.full(num_classes, -1e9)  # a class absent from training is never predicted
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # sklearn keeps one row for two classes: logits -z/2, z/2 give its sigmoid
        coef[clf.classes_] = np.stack([-clf.coef_[0], clf.coef_[0]]) / 2
        intercept[clf.classes_] = np.array([-clf.intercept_[0], clf.intercept_[0]]) / 2
    return Baseline(vectorizers, coef, intercept)


def save(model: Baseline, folder: Path) -> None:
    frames, offset = [], 0
    for name, v in model.vectorizers.items():
        terms = sorted(v.vocabulary_, key=v.vocabulary_.get)
        frames.append(pl.DataFrame({"analyzer": name, "term": terms, "column": np.arange(len(terms)) + offset,
                                    "idf": v.idf_.astype(np.float64)}))
        offset += len(terms)
    pl.concat(frames).write_parquet(folder / TERMS)
    with open(folder / WEIGHTS, "wb") as f:
        np.savez(f, coef=model.coef, intercept=model.intercept)


def load(cfg: BaselineConfig, folder: Path) -> Baseline:
    """A saved baseline; arrays only (allow_pickle=False), terms from Parquet."""
    try:
        terms = pl.read_parquet(folder / TERMS)
        with np.load(folder / WEIGHTS, allow_pickle=False) as w:
            coef, intercept = w["coef"], w["intercept"]
    except Exception as e:  # missing, truncated, not these formats, an object array
        raise InputError(f"{folder}: cannot load the baseline ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                         f"expected {TERMS} and {WEIGHTS} as the train stage writes them") from None
    vectorizers = _vectorizers(cfg)
    for name, v in vectorizers.items():
        part = terms.filter(pl.col("analyzer") == name).sort("column")
        if len(part) == 0:
            raise InputError(f"{folder / TERMS}: no {name!r} terms; expected the vocabulary of each analyzer")
        v.vocabulary = dict(zip(part["term"].to_list(), (part["column"] - part["column"][0]).to_list()))
        v.fit(["x"])  # only validates the fixed vocabulary; the idf is set next
        v.idf_ = part["idf"].to_numpy()
    if coef.ndim != 2 or coef.shape[1] != len(terms) or intercept.shape != (coef.shape[0],):
        raise InputError(f"{folder / WEIGHTS}: coef {coef.shape}, intercept {intercept.shape}; "
                         f"expected (classes, {len(terms)}) and (classes,)")
    return Baseline(vectorizers, coef, intercept)
