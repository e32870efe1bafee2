"""Cleaned review text straight to ids with array operations: prediction's tokenize + encode.

The pipeline's stages tokenize into strings (text.tokenize) and look the strings up
(encode.encode_tokens). Making one Python string per token is most of that cost (bench/RESULTS.md,
"Prediction throughput"), and prediction does it for every review it rates. Here a batch of cleaned texts is read as the bytes polars already
holds, and words, runs of spaces and spaCy's special cases become ids in numpy:

- a word (a run of a-z) of up to 12 letters becomes a 60-bit key, 5 bits a letter, read from
  the bytes 8 at a time, and is found in a hash table of the vocabulary's keys; a longer word
  (about one token in 300 in the real reviews) is looked up as a string;
- a run of n spaces is a whitespace token of n spaces at the start of a text, else of n - 1
  (none when that is 0): spaCy's rule on such text (see text.py);
- a special-case word ("dont") becomes its pieces ("do", "nt").

Only texts of lowercase letters and spaces (text.SAFE_TEXT, what the study's cleaning makes)
go this way, those being exactly text.py's fast-path rules; other texts go through
text.tokenize. Equal to encode_tokens(text.tokenize(...)) on every real review and on
generated strings (tests/library/test_lexicon.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from reviewlstm import text
from reviewlstm.config import TokenizeConfig
from reviewlstm.encode import UNK, encode_tokens

PACKED = 12  # letters in a key: 5 bits each, 60 bits
EMPTY = -1  # a free slot: no key is negative
CHUNK = 10_000  # texts encoded at a time
A, SPACE = ord("a"), ord(" ")
_LOW = np.uint64(0x6060606060606060)  # "a" - 1 in every byte: letters become 1..26
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)  # the first n bytes


def pack(word: str) -> int:
    """A word's key: letter i's code (a=1 .. z=26) at bits 5i; no two words of <= 12 letters share one."""
    return sum((ord(ch) - A + 1) << (5 * i) for i, ch in enumerate(word))


@dataclass(frozen=True)
class Lexicon:
    """A vocabulary (word -> id) as a hash table of keys, with spaCy's special cases as id sequences.

    A lookup is a few array passes over the words, faster than numpy's binary search
    (searchsorted) into sorted keys on the real reviews."""

    index: dict[str, int]
    slots: np.ndarray  # open-addressing hash table of keys (the vocabulary's a-z words of up to
    # PACKED letters, and the special words), EMPTY where free
    ids: np.ndarray  # each slot's id (UNK for a special word outside the vocabulary)
    special: np.ndarray  # each slot's row in the special-case table, or -1
    piece_start: np.ndarray  # where each special word's piece ids start in piece_ids
    piece_count: np.ndarray
    piece_ids: np.ndarray

    @classmethod
    def of(cls, index: dict[str, int]) -> "Lexicon":
        specials = sorted(text._letter_specials().items())
        if any(len(w) > PACKED for w, _ in specials):
            raise ValueError("a special-case word longer than a key holds")  # not so in spaCy 3.8
        row = {w: i for i, (w, _) in enumerate(specials)}
        words = sorted({w for w in index if w.isascii() and w.isalpha() and w.islower() and len(w) <= PACKED} | set(row))
        size = 1 << max(10, (4 * len(words)).bit_length())  # at most a quarter full: most lookups hit at once
        slots = np.full(size, EMPTY, dtype=np.int64)
        ids = np.full(size, UNK, dtype=np.int32)
        special = np.full(size, -1, dtype=np.int64)
        for w in words:
            key = pack(w)
            at = int(_slot(np.array([key], dtype=np.int64), size)[0])
            while slots[at] != EMPTY:
                at = (at + 1) & (size - 1)
            slots[at], ids[at], special[at] = key, index.get(w, UNK), row.get(w, -1)
        counts = np.array([len(p) for _, p in specials], dtype=np.int64)
        return cls(
            index=index,
            slots=slots,
            ids=ids,
            special=special,
            piece_start=np.cumsum(counts) - counts,
            piece_count=counts,
            piece_ids=np.array([index.get(p, UNK) for _, pieces in specials for p in pieces], dtype=np.int32),
        )

    def encode(self, cleaned: pl.Series, cfg: TokenizeConfig, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Cleaned texts -> (ids (n, max_len) int32, lengths (n,) int32), as encode_tokens.

        CHUNK texts at a time: the byte-wise arrays peak at about 26 bytes per byte of text, and
        past a few hundred MB they cost more in page faults than in work (bench/RESULTS.md)."""
        n = len(cleaned)
        ids = np.zeros((n, max_len), dtype=np.int32)
        lengths = np.zeros(n, dtype=np.int32)
        for at in range(0, n, CHUNK):
            self._encode_into(cleaned.slice(at, CHUNK), cfg, ids[at : at + CHUNK], lengths[at : at + CHUNK])
        return ids, lengths

    def _encode_into(self, cleaned: pl.Series, cfg: TokenizeConfig, ids: np.ndarray, lengths: np.ndarray) -> None:
        n, max_len = ids.shape
        data, offsets = _bytes(cleaned)
        row, code, unsafe = self._tokens(data, offsets, cfg.drop_whitespace)
        keep = ~unsafe[row]
        row, code = row[keep], code[keep]
        counts = np.bincount(row, minlength=n)
        position = np.arange(len(row)) - (np.cumsum(counts) - counts)[row]  # each token's place in its text
        kept = position < max_len
        ids[row[kept], position[kept]] = code[kept]
        lengths[:] = np.minimum(counts, max_len)
        rest = np.flatnonzero(unsafe)
        if len(rest):
            texts = cleaned.gather(rest).to_list()
            ids[rest], lengths[rest] = encode_tokens(text.tokenize(texts, cfg), self.index, max_len)

    def _tokens(self, data: np.ndarray, offsets: np.ndarray, drop_whitespace: bool):
        """(text of each token, its id) in reading order, and which texts are not SAFE_TEXT."""
        n = len(offsets) - 1
        letter = (data >= A) & (data <= A + 25)
        space = data == SPACE
        # a text with any other byte goes through text.tokenize instead
        unsafe = np.zeros(n, dtype=bool)
        unsafe[np.searchsorted(offsets, np.flatnonzero(~(letter | space)), side="right") - 1] = True
        first = np.zeros(len(data) + 1, dtype=bool)  # where a text starts: no run goes on past it
        first[offsets[:-1][offsets[:-1] < offsets[1:]]] = True
        start, end = _runs(letter, first)
        code, special = self._lookup(data, start, end - start)
        if not drop_whitespace:
            # spaCy's whitespace tokens: every space of a run after its first (the first belongs
            # to the word before it), all the spaces of a run that starts a text
            extra = space & (np.r_[False, space[:-1]] | first[:-1])
            s_start, s_end = _runs(extra, first)
            width = s_end - s_start
            table = np.array([self.index.get(" " * w, UNK) for w in range(int(width.max(initial=0)) + 1)], dtype=np.int32)
            # words and whitespace tokens, in the order they start
            at = np.arange(len(s_start)) + np.searchsorted(start, s_start)
            is_word = np.ones(len(start) + len(s_start), dtype=bool)
            is_word[at] = False
            merged = np.empty(len(is_word), dtype=np.int64)
            merged[is_word], merged[at] = start, s_start
            start = merged
            codes = np.empty(len(is_word), dtype=np.int32)
            codes[is_word], codes[at] = code, table[width]
            specials = np.full(len(is_word), -1, dtype=np.int64)
            specials[is_word] = special
            code, special = codes, specials
        row = np.repeat(np.arange(n), np.diff(np.searchsorted(start, offsets)))
        if (special >= 0).any():
            code, row = self._expand(code, row, special)
        return row, code, unsafe

    def _lookup(self, data: np.ndarray, start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each word's id and its row in the special-case table (-1: none)."""
        # 8 bytes from each word's start, as one little-endian integer (unaligned reads)
        padded = np.concatenate([data, np.zeros(16, dtype=np.uint8)])
        eights = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
        key = _squeeze((eights[start] - _LOW) & _MASKS[np.minimum(length, 8)])
        longer = length > 8
        rest = np.clip(length[longer] - 8, 0, 8)
        key[longer] |= _squeeze((eights[start[longer] + 8] - _LOW) & _MASKS[rest]) << np.uint64(40)
        key = key.view(np.int64)
        at = self._find(key)
        found = (at >= 0) & (length <= PACKED)
        ids = np.where(found, self.ids[at], UNK).astype(np.int32)
        special = np.where(found, self.special[at], -1)
        for i in np.flatnonzero(length > PACKED):  # about one token in 300 in the real reviews
            ids[i] = self.index.get(data[start[i] : start[i] + length[i]].tobytes().decode("ascii"), UNK)
        return ids, special

    def _find(self, key: np.ndarray) -> np.ndarray:
        """Each key's slot, or -1 where it is not in the table (linear probing, all keys at once)."""
        size = len(self.slots)
        at = _slot(key, size)
        found = np.full(len(key), -1, dtype=np.int64)
        pending = np.arange(len(key))
        while len(pending):
            seen = self.slots[at[pending]]
            hit = seen == key[pending]
            found[pending[hit]] = at[pending[hit]]
            pending = pending[~hit & (seen != EMPTY)]  # an empty slot ends the probe: not there
            at[pending] = (at[pending] + 1) & (size - 1)
        return found

    def _expand(self, code: np.ndarray, row: np.ndarray, special: np.ndarray):
        """Special-case words replaced by their pieces' ids, in place in the sequence."""
        repeats = np.where(special >= 0, self.piece_count[special], 1)
        code, row, special = np.repeat(code, repeats), np.repeat(row, repeats), np.repeat(special, repeats)
        piece = np.arange(len(code)) - np.repeat(np.cumsum(repeats) - repeats, repeats)  # 0, 1, .. within a word
        hit = special >= 0
        code[hit] = self.piece_ids[self.piece_start[special[hit]] + piece[hit]]
        return code, row


def _bytes(cleaned: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The texts' UTF-8 bytes end to end, and where each text starts (n + 1 offsets)."""
    import pyarrow as pa

    arr = cleaned.fill_null("").cast(pl.Utf8).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    _, off, buf = arr.buffers()
    offsets = np.frombuffer(off, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, dtype=np.uint8)
    return data[offsets[0] : offsets[-1]], offsets - offsets[0]


def _runs(mask: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of True in mask, runs cut where a text starts."""
    before = np.r_[False, mask[:-1]] & ~first[:-1]
    after = np.r_[mask[1:], False] & ~first[1:]
    return np.flatnonzero(mask & ~before), np.flatnonzero(mask & ~after) + 1


def _slot(key: np.ndarray, size: int) -> np.ndarray:
    """Fibonacci hashing: the top bits of key * 2**64 / golden ratio, a slot in a power-of-2 table."""
    shift = np.uint64(64 - (size.bit_length() - 1))
    return ((key.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> shift).astype(np.int64)


def _squeeze(x: np.ndarray) -> np.ndarray:
    """Eight byte-sized letter codes (1..26, 0 past the word) -> 40 bits, code i at bit 5i."""
    x = (x & np.uint64(0x00FF00FF00FF00FF)) | ((x & np.uint64(0xFF00FF00FF00FF00)) >> np.uint64(3))
    x = (x & np.uint64(0x0000FFFF0000FFFF)) | ((x & np.uint64(0xFFFF0000FFFF0000)) >> np.uint64(6))
    return (x & np.uint64(0xFFFFFFFF)) | ((x >> np.uint64(32)) << np.uint64(20))
