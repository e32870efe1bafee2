"""The baseline's n-gram counts in arrays: the counts scikit-learn's fitted CountVectorizer gives
(analyzer "word" with its default token pattern, or "char_wb"; lowercase, no accents stripped,
no stop words), without a Python object per n-gram.

Each n-gram becomes one int64 key: its characters (char_wb) or tokens (word) as digits of a
number, plus its length above them; keys are looked up in the sorted keys of the fitted
vocabulary. A character or token the vocabulary never holds gets a digit of its own that no
vocabulary key holds, so an n-gram containing it is dropped, as scikit-learn drops it.
`Counter.of` gives None where these rules do not cover a vectorizer's settings; the caller then
uses scikit-learn's own transform. tests/library/test_ngrams.py holds the two equal on every real review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

WORD_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default token_pattern
KEY_LIMIT = 2**62


@dataclass
class Counter:
    analyzer: str  # "word" or "char_wb"
    ngram_range: tuple[int, int]
    digits: dict[str, int] | np.ndarray  # word: token -> digit; char_wb: sorted code points (digit = position)
    base: int  # digits run 0..base-1; base-1 is "not in the vocabulary"
    keys: np.ndarray  # sorted int64 keys of the vocabulary's n-grams
    columns: np.ndarray  # their columns in the vectorizer's vocabulary_
    width: int  # number of columns
    dtype: type

    @classmethod
    def of(cls, vectorizer) -> "Counter | None":
        """A counter for a fitted CountVectorizer/TfidfVectorizer, or None where its settings are
        not the ones covered here."""
        v = vectorizer
        plain = (v.lowercase and v.strip_accents is None and v.preprocessor is None and v.tokenizer is None
                 and v.stop_words is None and v.input == "content" and not v.binary)
        lo, hi = v.ngram_range
        if not plain or v.analyzer not in ("word", "char_wb") or (v.analyzer == "word" and v.token_pattern != WORD_PATTERN):
            return None
        if v.analyzer == "char_wb" and lo > 3:  # a padded word is >= 3 long; shorter-than-lo words are a rule not kept here
            return None
        terms = list(v.vocabulary_)
        if v.analyzer == "word":
            parts = [t.split(" ") for t in terms]
            tokens = sorted({p for ps in parts for p in ps})
            digits: dict[str, int] | np.ndarray = {t: i for i, t in enumerate(tokens)}
            base = len(tokens) + 1
            seqs = [[digits[p] for p in ps] for ps in parts]
        else:
            chars = np.array(sorted({ord(c) for t in terms for c in t}), dtype=np.uint32)
            digits, base = chars, len(chars) + 1
            seqs = [np.searchsorted(chars, [ord(c) for c in t]).tolist() for t in terms]
        if (hi + 1) * base**hi >= KEY_LIMIT:
            return None
        keys = np.array([_key(s, base, hi) for s in seqs], dtype=np.int64)
        order = np.argsort(keys)
        columns = np.array([v.vocabulary_[t] for t in terms], dtype=np.int64)[order]
        return cls(v.analyzer, (lo, hi), digits, base, keys[order], columns, len(terms), v.dtype)

    def counts(self, texts: list[str]) -> sp.csr_matrix:
        """(len(texts), width) counts, as CountVectorizer.transform gives them."""
        docs = [t.lower() for t in texts]
        if self.analyzer == "word":
            return self._matrix(*self._word_keys(docs), len(docs))
        # a word's character n-grams depend on the word alone: count them once per distinct word,
        # then a document's counts are its words' counts added up (a sparse product)
        index: dict[str, int] = {}
        words = [[index.setdefault(w, len(index)) for w in d.split()] for d in docs]
        occurrences = sp.csr_matrix((np.ones(sum(map(len, words)), dtype=self.dtype),
                                     np.fromiter((i for ws in words for i in ws), dtype=np.int64),
                                     np.r_[0, np.cumsum([len(ws) for ws in words])]), shape=(len(docs), len(index)))
        counts = occurrences @ self._matrix(*self._char_keys(list(index)), len(index))
        counts.sort_indices()
        return counts

    def _matrix(self, rows: np.ndarray, keys: np.ndarray, n: int) -> sp.csr_matrix:
        """Counts of the vocabulary's n-grams among (row, key) pairs."""
        at = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        hit = self.keys[at] == keys
        counts = sp.csr_matrix((np.ones(int(hit.sum()), dtype=self.dtype), (rows[hit], self.columns[at[hit]])),
                               shape=(n, self.width), dtype=self.dtype)
        counts.sum_duplicates()  # also sorts each row's columns, as scikit-learn leaves them
        return counts

    def _word_keys(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        find, get, missing = re.compile(WORD_PATTERN).findall, self.digits.get, self.base - 1
        tokens = [find(d) for d in docs]
        ids = np.array([get(t, missing) for ts in tokens for t in ts], dtype=np.int64)
        doc = np.repeat(np.arange(len(docs)), [len(ts) for ts in tokens])
        return self._ngram_keys(ids, doc, np.bincount(doc, minlength=len(docs))[doc] + _starts(doc))

    def _char_keys(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Keys of the n-grams of each word padded by one space each side, as scikit-learn pads it."""
        points = np.frombuffer(("".join(" " + w + " " for w in words)).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        at = np.searchsorted(self.digits, points).clip(max=len(self.digits) - 1)
        ids = np.where(self.digits[at] == points, at, self.base - 1).astype(np.int64)
        lengths = np.array([len(w) + 2 for w in words], dtype=np.int64)
        word = np.repeat(np.arange(len(words)), lengths)
        return self._ngram_keys(ids, word, np.cumsum(lengths)[word])

    def _ngram_keys(self, ids: np.ndarray, doc: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keys of every n-gram of ids[i:i+n] with i + n <= ends[i], lo <= n <= hi; their rows."""
        lo, hi = self.ngram_range
        rows, keys = [], []
        key = np.zeros(len(ids), dtype=np.int64)
        where = np.arange(len(ids))
        for n in range(1, hi + 1):
            inside = where + n <= ends  # ids[i + n - 1] is still in i's word (or document)
            key[inside] = key[inside] * self.base + ids[(where + n - 1)[inside]]
            if n >= lo:
                rows.append(doc[inside])
                keys.append(key[inside] + n * self.base**hi)
        return np.concatenate(rows), np.concatenate(keys)


def _key(digits: list[int], base: int, hi: int) -> int:
    key = 0
    for d in digits:
        key = key * base + d
    return key + len(digits) * base**hi


def _starts(doc: np.ndarray) -> np.ndarray:
    """Position of each element's document's first element (doc sorted)."""
    if len(doc) == 0:
        return doc
    first = np.r_[0, np.flatnonzero(np.diff(doc)) + 1]
    return np.repeat(first, np.diff(np.r_[first, len(doc)]))
