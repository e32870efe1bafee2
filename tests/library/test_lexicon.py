"""Prediction's array tokenize + encode (reviewlstm/array_tokenizer.py) gives exactly the ids of the
pipeline's own path, text.tokenize then encode.encode_tokens: on every real review, on odd and
generated strings, on texts outside its alphabet (which it hands to text.tokenize)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from reviewlstm import ingest, text, vocab
from reviewlstm.config import CleanConfig, IngestConfig, TokenizeConfig
from reviewlstm.encode import encode_tokens
from reviewlstm.array_tokenizer import PACKED, Lexicon, pack
from helpers import REAL_DATA, needs_real_data

KEEP, DROP = TokenizeConfig(), TokenizeConfig(drop_whitespace=True)


def reference(texts: list[str | None], index: dict[str, int], cfg: TokenizeConfig, max_len: int):
    return encode_tokens(text.tokenize([t if t is not None else "" for t in texts], cfg), index, max_len)


def assert_same(texts, index, cfg, max_len):
    ids, lengths = Lexicon.of(index).encode(pl.Series(texts, dtype=pl.Utf8), cfg, max_len)
    want_ids, want_lengths = reference(texts, index, cfg, max_len)
    wrong = np.flatnonzero((ids != want_ids).any(1) | (lengths != want_lengths))
    assert not len(wrong), f"{len(wrong)} rows differ, first {[texts[i] for i in wrong[:3]]!r}"
    assert ids.dtype == want_ids.dtype and lengths.dtype == want_lengths.dtype


@needs_real_data
@pytest.mark.parametrize("cfg", [KEEP, DROP], ids=["whitespace-kept", "whitespace-dropped"])
def test_every_real_review_gets_the_pipelines_ids(cfg):
    reviews = ingest.reviews(ingest.read_table(REAL_DATA), IngestConfig(), source=str(REAL_DATA))
    cleaned = text.clean(reviews["text"], CleanConfig()).to_list()
    tokens = text.tokenize(cleaned, cfg)
    words = vocab.vocabulary(vocab.count_tokens(tokens), 2)  # the study's pruning: unknown words too
    index = dict(zip(words["word"].to_list(), words["id"].to_list()))
    for max_len in (70, 150, 3):
        assert_same(cleaned, index, cfg, max_len)
    # what the data exercises: words past a key's letters, special cases, whitespace tokens
    flat = [t for row in tokens for t in row]
    assert any(len(t) > PACKED for t in flat) and {"do", "nt"} <= set(flat)
    assert cfg.drop_whitespace or any(t.startswith(" ") for t in flat)


ODD = [
    "", " ", "  ", "   ", "a", "a ", "a  ", "a   ", " a", "  a", "   a ", "a b", "a  b", "a   b",
    "  a  b  ", "dont", "dont ", " dont", "dont  dont", "dontdont", "xdont", "dontx", "im", "i m",
    "gonna gotta wanna", "cannot cant can t", "ima", "yall", "  im  ", "wont   ive ", "z" * 500,
    " " * 300, "a " * 200, "abcdefghijkl", "abcdefghijklm", "abcdefgh", "abcdefghi", "zzzzzzzzzzzz",
]
UNSAFE = ["Dont", "don't", "a\tb", "a\nb", "caf\u00e9 au lait", "a.b", "10km", "\u00a0", "a  \t", None]


def odd_index() -> dict[str, int]:
    """Every piece the odd strings can make, some left out (unknown), and a special-case word
    in the vocabulary (split all the same: spaCy never keeps it whole)."""
    words = {t for row in text.tokenize(ODD + [u for u in UNSAFE if u], KEEP) for t in row}
    kept = sorted(w for i, w in enumerate(sorted(words)) if i % 4)
    return {w: i + 2 for i, w in enumerate(kept + ["dont"])}


@pytest.mark.parametrize("cfg", [KEEP, DROP], ids=["whitespace-kept", "whitespace-dropped"])
def test_odd_and_unsafe_texts_in_any_mix(cfg):
    index = odd_index()
    for max_len in (1, 4, 70, 600):
        assert_same(ODD, index, cfg, max_len)
        assert_same([x for pair in zip(ODD, UNSAFE * 4) for x in pair], index, cfg, max_len)
        assert_same(UNSAFE, index, cfg, max_len)
    ids, lengths = Lexicon.of(index).encode(pl.Series([], dtype=pl.Utf8), cfg, 5)
    assert ids.shape == (0, 5) and lengths.shape == (0,)


def test_keys_are_distinct_for_words_up_to_the_packed_length():
    words = ["a", "aa", "b", "ab", "ba", "z" * PACKED, "a" * PACKED, "y" + "z" * (PACKED - 1)]
    assert len({pack(w) for w in words}) == len(words)
    assert max(pack(w) for w in words) < 2**63


SPECIAL_WORDS = sorted(text.letter_specials())
piece = st.one_of(
    st.sampled_from(SPECIAL_WORDS),
    st.sampled_from(["i", "m", "a", "s", "nt", "d", "ll", "ve", "re", "dress", "love", "abcdefghijklm"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=16),
)
spaces = st.integers(0, 4).map(lambda n: " " * n)
safe_text = st.tuples(spaces, st.lists(st.tuples(piece, spaces), max_size=10)).map(
    lambda t: t[0] + "".join(w + s for w, s in t[1])
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(safe_text, st.text(alphabet="ab .\t\u00e9", max_size=8)), min_size=1, max_size=6),
       st.integers(1, 12))
def test_generated_texts_match(texts, max_len):
    words = {t for row in text.tokenize(texts, KEEP) for t in row}
    index = {w: i + 2 for i, w in enumerate(sorted(words)) if sum(map(ord, w)) % 3}  # about a third unknown
    assert_same(texts, index, KEEP, max_len)
    assert_same(texts, index, DROP, max_len)
