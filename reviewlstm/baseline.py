"""The bag-of-words baseline: TF-IDF of word and character n-grams, then logistic regression.

Fitted with scikit-learn on the ingested review text (punctuation and case are signal for
character n-grams). Saved as plain tables and arrays, never a pickle, and scored again through
scikit-learn's own vectorizers rebuilt from them, so loading a saved model runs no code.
A few texts (a review typed at the command line) are scored without importing scikit-learn,
whose import alone takes longer than the rest of `predict` (`Baseline.few`).
"""

from __future__ import annotations

import re
from collections import Counter as Counts
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from reviewlstm.config import BaselineConfig
from reviewlstm.errors import InputError

TERMS = "terms.parquet"  # analyzer, term, column, idf
WEIGHTS = "weights.npz"  # coef (C, F), intercept (C,)
FAST_FROM = 1500  # texts: for fewer, building the array counters costs more than it saves (commit 2ac479c)
FEW = 100  # texts: for fewer, Baseline.few (no scikit-learn to import)
WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern


def _vectorizers(cfg: BaselineConfig) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    common = dict(min_df=cfg.min_df, sublinear_tf=True, dtype=np.float32)
    return {"word": TfidfVectorizer(ngram_range=tuple(cfg.word_ngrams), **common),
            "char_wb": TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(cfg.char_ngrams), **common)}


@dataclass
class Baseline:
    cfg: BaselineConfig
    terms: pl.DataFrame  # analyzer, term, column, idf: the fitted vocabularies, in column order
    coef: np.ndarray  # (C, F)
    intercept: np.ndarray  # (C,)
    fast: dict[str, Any] = field(default_factory=dict)  # array counters, made on first use

    @cached_property
    def vectorizers(self) -> dict[str, Any]:
        """scikit-learn's fitted vectorizers, rebuilt from the terms."""
        vectorizers = _vectorizers(self.cfg)
        for name, v in vectorizers.items():
            part = self.terms.filter(pl.col("analyzer") == name).sort("column")
            v.vocabulary = dict(zip(part["term"].to_list(), (part["column"] - part["column"][0]).to_list()))
            v.fit(["x"])  # only validates the fixed vocabulary; the idf is set next
            v.idf_ = part["idf"].to_numpy()
        return vectorizers

    @cached_property
    def lookup(self) -> dict[str, dict[str, int]]:
        """analyzer -> term -> column of the whole feature row."""
        return {name: dict(zip(part["term"].to_list(), part["column"].to_list()))
                for (name,), part in self.terms.group_by("analyzer")}

    def few(self, texts: list[str]) -> np.ndarray:
        """Logits (n, C) through the n-grams of each text in a dict: no scikit-learn, no sparse
        matrix. The n-grams are scikit-learn's (lowercase; the default token pattern; char_wb pads
        each whitespace-separated word with one space and takes a word shorter than n once), the
        weighting TfidfVectorizer's (sublinear tf, idf, rows of unit length); equal to the
        vectorizers' to float rounding (tests/library/test_ngrams.py)."""
        idf = self.terms["idf"].to_numpy()
        logits = np.tile(self.intercept, (len(texts), 1)).astype(np.float64)
        for row, doc in enumerate(texts):
            doc = doc.lower()
            counts = Counts()
            for name, grams in (("word", _word_ngrams(doc, self.cfg.word_ngrams)),
                                ("char_wb", _char_wb_ngrams(doc, self.cfg.char_ngrams))):
                table = self.lookup.get(name, {})
                counts.update(c for c in map(table.get, grams) if c is not None)
            if not counts:
                continue
            cols = np.fromiter(counts.keys(), np.int64, len(counts))
            tf = np.fromiter(counts.values(), np.float64, len(counts))
            w = (np.log(tf) + 1) * idf[cols]
            # each analyzer's part is normalized on its own: they are two vectorizers side by side
            for lo, hi in self._spans:
                part = (cols >= lo) & (cols < hi)
                w[part] /= max(np.sqrt((w[part] ** 2).sum()), 1e-300)
            logits[row] += self.coef[:, cols] @ w
        return logits

    @cached_property
    def _spans(self) -> list[tuple[int, int]]:
        spans = self.terms.group_by("analyzer").agg(pl.col("column").min().alias("lo"), pl.col("column").max().alias("hi"))
        return [(lo, hi + 1) for lo, hi in spans.select("lo", "hi").iter_rows()]

    def features(self, texts: list[str], fast: bool = True):
        """TF-IDF rows. fast: n-grams counted in arrays (reviewlstm/ngrams.py; scikit-learn's
        char_wb analyzer is pure Python, bench/RESULTS.md), weighted by scikit-learn; False: the
        vectorizers' own transform. The two agree exactly (tests/library/test_ngrams.py)."""
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
        import scipy.sparse as sp

        return sp.hstack(parts, format="csr")

    def proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities (n, C): LogisticRegression.predict_proba's softmax of the logits."""
        if len(texts) < FEW:
            logits = self.few(texts)
        else:
            logits = np.asarray(self.features(texts) @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def _word_ngrams(doc: str, ngrams: tuple[int, int]) -> list[str]:
    tokens = WORD.findall(doc)
    lo, hi = ngrams
    return [" ".join(tokens[i : i + n]) for n in range(lo, hi + 1) for i in range(len(tokens) - n + 1)]


def _char_wb_ngrams(doc: str, ngrams: tuple[int, int]) -> list[str]:
    lo, hi = ngrams
    grams = []
    for w in doc.split():
        w = f" {w} "
        for n in range(lo, hi + 1):
            grams.extend(w[i : i + n] for i in range(max(len(w) - n + 1, 1)))
            if len(w) <= n:  # a word shorter than n is taken once, whole
                break
    return grams


def _fast(v) -> tuple[Any, Any] | None:
    """The array counter of a fitted vectorizer and the weighting its transform applies."""
    from sklearn.feature_extraction.text import TfidfTransformer

    from reviewlstm.ngrams import Counter

    counter = Counter.of(v)
    if counter is None:
        return None
    weighting = TfidfTransformer(norm=v.norm, use_idf=v.use_idf, smooth_idf=v.smooth_idf, sublinear_tf=v.sublinear_tf)
    weighting.idf_ = v.idf_
    return counter, weighting


def fit(cfg: BaselineConfig, texts: list[str], labels: np.ndarray, num_classes: int) -> Baseline:
    """Fit the vectorizers and the classifier on the training rows."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    vectorizers = _vectorizers(cfg)
    x = sp.hstack([v.fit_transform(texts) for v in vectorizers.values()], format="csr")
    clf = LogisticRegression(C=cfg.C, max_iter=cfg.max_iter).fit(x, labels)
    coef = np.zeros((num_classes, x.shape[1]), dtype=np.float64)
    intercept = np.full(num_classes, -1e9)  # a class absent from training is never predicted
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # sklearn keeps one row for two classes: logits -z/2, z/2 give its sigmoid
        coef[clf.classes_] = np.stack([-clf.coef_[0], clf.coef_[0]]) / 2
        intercept[clf.classes_] = np.array([-clf.intercept_[0], clf.intercept_[0]]) / 2
    frames, offset = [], 0
    for name, v in vectorizers.items():
        terms = sorted(v.vocabulary_, key=v.vocabulary_.get)
        frames.append(pl.DataFrame({"analyzer": name, "term": terms, "column": np.arange(len(terms)) + offset,
                                    "idf": v.idf_.astype(np.float64)}))
        offset += len(terms)
    model = Baseline(cfg, pl.concat(frames), coef, intercept)
    model.vectorizers = vectorizers  # fitted already
    return model


def save(model: Baseline, folder: Path) -> None:
    model.terms.write_parquet(folder / TERMS)
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
    for name in ("word", "char_wb"):
        if not len(terms.filter(pl.col("analyzer") == name)):
            raise InputError(f"{folder / TERMS}: no {name!r} terms; expected the vocabulary of each analyzer")
    if coef.ndim != 2 or coef.shape[1] != len(terms) or intercept.shape != (coef.shape[0],):
        raise InputError(f"{folder / WEIGHTS}: coef {coef.shape}, intercept {intercept.shape}; "
                         f"expected (classes, {len(terms)}) and (classes,)")
    return Baseline(cfg, terms.sort("column"), coef, intercept)
