"""The array tokenizer (reviewlstm/array_tokenizer.py) gives exactly spaCy's tokens: on every real review, on generated
strings, on odd hand-made ones; texts outside its alphabet go through spaCy itself."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from reviewlstm import ingest, text
from reviewlstm.config import CleanConfig, IngestConfig, TokenizeConfig
from helpers import REAL_DATA, ROOT, needs_real_data

KEEP, DROP = TokenizeConfig(), TokenizeConfig(drop_whitespace=True)


def spacy_tokens(texts: list[str], drop: bool = False) -> list[list[str]]:
    """The reference: spaCy's English tokenizer on every text, nothing else."""
    return [[t.text for t in doc if not (drop and t.is_space)] for doc in text._tokenizer().pipe(texts)]


@needs_real_data
def test_fast_path_equals_spacy_on_every_real_review():
    reviews = ingest.reviews(ingest.read_table(REAL_DATA), IngestConfig(), source=str(REAL_DATA))
    cleaned = text.clean(reviews["text"], CleanConfig()).to_list()
    assert len(cleaned) == 23486
    # every cleaned review takes the fast path, so this compares the fast path itself
    assert all(text.SAFE_TEXT.fullmatch(t) for t in cleaned)
    for drop, cfg in ((False, KEEP), (True, DROP)):
        expected = spacy_tokens(cleaned, drop)
        got = text.tokenize(cleaned, cfg)
        mismatches = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
        assert len(got) == len(expected) and not mismatches, f"first mismatch at row {mismatches[:1]}"
    # the data exercises what matters: special cases, runs of spaces, leading and trailing spaces
    flat = {t for row in expected for t in row}
    assert {"do", "nt", "i", "m"} <= flat
    assert any(t.startswith(" ") for row in spacy_tokens(cleaned) for t in row)


def test_special_case_table_is_spacys():
    """The built-in table equals the one spaCy's English tokenizer holds now, and the table
    derived from spaCy (used under another spaCy version) is the same."""
    rules = text._tokenizer().rules
    live = {k: [piece[65] for piece in v] for k, v in rules.items() if re.fullmatch("[a-z]+", k) and len(v) > 1}
    assert text.letter_specials() == live
    # letters-only single-piece rules ("doin", "em", ...) change nothing, so they are left out
    assert all([piece[65] for piece in rules[k]] == [k] for k in rules if re.fullmatch("[a-z]+", k) and k not in live)
    text.letter_specials.cache_clear()
    try:
        from importlib import metadata

        real = metadata.version
        metadata.version = lambda name: "0.0" if name == "spacy" else real(name)
        try:
            assert text.letter_specials() == live
        finally:
            metadata.version = real
    finally:
        text.letter_specials.cache_clear()


ODD = [
    "", " ", "  ", "   ", "a", "a ", "a  ", "a   ", " a", "  a", "   a ", "a b", "a  b", "a   b",
    "  a  b  ", "dont", "dont ", " dont", "dont  dont", "dontdont", "xdont", "dontx", "im", "i m",
    "gonna gotta wanna", "cannot cant can t", "ima", "yall", "doin", "ill", "hell", "well", "were",
    "its", "shell", "wed", "id", "ive", "youre", "theyllve", "  im  ", "wont   ive ", "z" * 500,
    " " * 300, "a " * 200,
]
UNSAFE = [
    "Dont", "DON'T", "don't", "a\tb", "a\nb", "a\x0bb", "\x0c", "a\x00b", "a\x7f", "caf\u00e9", "a.b",
    "U.S.A.", "e-mail", "10km", "http://example.com", "a  \n  b", "\u00a0", "a  \t", "ok!", "#tag",
]


def test_odd_strings_match_spacy():
    assert text.tokenize(ODD, KEEP) == spacy_tokens(ODD)
    assert text.tokenize(ODD, DROP) == spacy_tokens(ODD, drop=True)
    for s in ODD:  # alone: a text's tokens do not depend on its neighbours in a batch
        assert text.tokenize([s], KEEP) == spacy_tokens([s])


def test_texts_outside_the_alphabet_go_through_spacy_in_order():
    assert not any(text.SAFE_TEXT.fullmatch(s) for s in UNSAFE)
    mixed = [x for pair in zip(ODD, UNSAFE) for x in pair]
    for cfg, drop in ((KEEP, False), (DROP, True)):
        assert text.tokenize(mixed, cfg) == spacy_tokens(mixed, drop)
        assert text.tokenize(UNSAFE, cfg) == spacy_tokens(UNSAFE, drop)
    assert text.tokenize([], KEEP) == []


SPECIAL_WORDS = sorted(text.letter_specials())
piece = st.one_of(
    st.sampled_from(SPECIAL_WORDS),
    st.sampled_from(["i", "m", "a", "s", "nt", "d", "ll", "ve", "re", "t", "dress", "love"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
)
spaces = st.integers(0, 5).map(lambda n: " " * n)
safe_text = st.tuples(spaces, st.lists(st.tuples(piece, spaces), max_size=12)).map(
    lambda t: t[0] + "".join(w + s for w, s in t[1])
)


@settings(max_examples=400, deadline=None)
@given(st.lists(safe_text, min_size=1, max_size=5))
def test_generated_letter_and_space_texts_match_spacy(texts):
    assert text.tokenize(texts, KEEP) == spacy_tokens(texts)
    assert text.tokenize(texts, DROP) == spacy_tokens(texts, drop=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcz '.-\t\n\x0bA\u00e9", max_size=20), max_size=5))
def test_any_text_matches_spacy(texts):
    assert text.tokenize(texts, KEEP) == spacy_tokens(texts)


def test_fast_path_does_not_import_spacy():
    code = ("import sys; from reviewlstm import text; from reviewlstm.config import TokenizeConfig; "
            "assert text.tokenize([' dont  im', 'a b '], TokenizeConfig()) == [[' ', 'do', 'nt', ' ', 'i', 'm'], ['a', 'b']]; "
            "print('spacy' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_fallback_batches_keep_order(batch_size):
    texts = ["a.b", "x  y", "Dont", "dont", "\t", ""] * 4
    assert text.tokenize(texts, TokenizeConfig(batch_size=batch_size)) == spacy_tokens(texts)
