"""The baseline's array n-gram counter (reviewlstm/ngrams.py) against scikit-learn's own transform."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from helpers import REAL_DATA, needs_real_data
from reviewlstm import baseline
from reviewlstm.config import BaselineConfig, IngestConfig
from reviewlstm.ngrams import Counter

ODD = [
    "", "   ", "a", "I", "Ab ab AB", "tab\tsep\nline\r\nend", "no\u00a0break\u2003em space", "İstanbul DŽ ﬁne",
    "emoji 👗👗 dress", "x" * 40, "ünïcödé wörds, and punctuation!!! ...", "it's  a  dress -- 5/5 stars :)",
    "\x1c\x1dcontrol\x1e chars\x1f", "lone \udc80 surrogate", "repeat repeat repeat repeat",
]
FIT = ["A lovely dress, it fits well", "Too small; the fabric is thin", "lovely lovely fabric", "I love it",
       "fits well and looks great", "ünïcödé wörds in a review", "emoji 👗 dress", "repeat after me"]


def _same(fast, plain) -> None:
    fast, plain = fast.tocsr(), plain.tocsr()
    assert fast.shape == plain.shape and fast.dtype == plain.dtype
    np.testing.assert_array_equal(fast.indptr, plain.indptr)
    np.testing.assert_array_equal(fast.indices, plain.indices)
    np.testing.assert_array_equal(fast.data, plain.data)


@pytest.mark.parametrize("analyzer,ngram_range", [("char_wb", (2, 5)), ("char_wb", (1, 3)), ("char_wb", (3, 3)),
                                                  ("word", (1, 2)), ("word", (1, 1)), ("word", (2, 3))])
def test_counts_equal_scikit_learns_on_odd_text(analyzer, ngram_range):
    v = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True, dtype=np.float32).fit(FIT + ODD)
    counter = Counter.of(v)
    assert counter is not None
    _same(v._tfidf.transform(counter.counts(ODD + FIT), copy=True), v.transform(ODD + FIT))


def test_settings_it_does_not_cover_fall_back_to_scikit_learn():
    for v in [TfidfVectorizer(analyzer="char", ngram_range=(2, 3)), TfidfVectorizer(lowercase=False),
              TfidfVectorizer(stop_words="english"), TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 5)),
              TfidfVectorizer(token_pattern=r"\w+")]:
        assert Counter.of(v.fit(FIT)) is None
    model = baseline.fit(BaselineConfig(kind="baseline", min_df=1, char_ngrams=(4, 5)), FIT, np.arange(8) % 2, 2)
    _same(model.features(ODD * 100), model.features(ODD * 100, fast=False))
    assert model.fast["char_wb"] is None and model.fast["word"] is not None


@needs_real_data
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 5 iterations: only its terms matter
def test_baseline_features_are_the_same_on_every_real_review():
    from reviewlstm import ingest

    texts = ingest.reviews(ingest.read_table(REAL_DATA), IngestConfig(), str(REAL_DATA))["text"].to_list()
    labels = np.arange(4000) % 5
    model = baseline.fit(BaselineConfig(kind="baseline", max_iter=5), texts[:4000], labels, 5)
    fast, plain = model.features(texts), model.features(texts, fast=False)
    assert all(model.fast.values())
    _same(fast, plain)


def _logits(model, texts):
    return np.asarray(model.features(texts, fast=False) @ model.coef.T) + model.intercept


@pytest.mark.parametrize("word,char", [((1, 2), (2, 5)), ((1, 1), (1, 3)), ((2, 3), (3, 3))])
def test_few_texts_score_as_scikit_learn_does_on_odd_text(word, char, tmp_path):
    cfg = BaselineConfig(kind="baseline", min_df=1, word_ngrams=word, char_ngrams=char)
    fit = FIT + [t for t in ODD if "\udc80" not in t]  # Parquet holds no lone surrogate; scoring one is tested
    model = baseline.fit(cfg, fit, np.arange(len(fit)) % 3, 3)
    baseline.save(model, tmp_path)
    loaded = baseline.load(cfg, tmp_path)  # as predict loads it: the n-grams from the saved terms
    np.testing.assert_allclose(loaded.few(ODD + FIT), _logits(model, ODD + FIT), rtol=0, atol=1e-6)


@needs_real_data
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_few_texts_score_as_scikit_learn_does_on_real_reviews():
    from reviewlstm import ingest

    texts = ingest.reviews(ingest.read_table(REAL_DATA), IngestConfig(), str(REAL_DATA))["text"].to_list()
    model = baseline.fit(BaselineConfig(kind="baseline", max_iter=20), texts[:4000], np.arange(4000) % 5, 5)
    few, plain = model.few(texts[4000:7000]), _logits(model, texts[4000:7000])
    np.testing.assert_allclose(few, plain, rtol=0, atol=1e-6)
    assert (few.argmax(1) == plain.argmax(1)).all()
