"""spaCy's tokenizer on cleaned text as array operations: the tokenize stage's strings and
prediction's ids, without a Python string per token.

Only texts of lowercase ASCII letters and spaces (text.SAFE_TEXT: what the study's cleaning
makes) go this way; text.tokenize hands every other text to spaCy. On such text spaCy's prefix,
suffix, infix and URL rules never match (each needs a character other than a-z), so spaCy only
splits at spaces and applies its special cases, and every token is a span of the text's bytes:
- a word is a run of a-z;
- a run of n spaces is a whitespace token of n spaces at the start of a text, else of n - 1
  (none when that is 0): one space after a word is that word's trailing whitespace;
- a special-case word ("dont") is replaced by its pieces ("do", "nt"), which spell it.
The spans become strings (`tokens`: one Arrow buffer of the tokens' bytes) or ids (`Lexicon`:
a word of up to 12 letters is a 60-bit key, 5 bits a letter, read from the bytes 8 at a time and
found in a hash table; a longer one, about one token in 300, is looked up as a string).
Equal to spaCy on every real review and on generated strings (tests/library/test_text_fast.py,
test_lexicon.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa

from reviewlstm.encode import UNK, encode_tokens

PACKED = 12  # letters in a key: 5 bits each, 60 bits
EMPTY = -1  # a free slot: no key is negative
CHUNK = 10_000  # texts at a time: the byte-wise arrays peak at about 26 bytes per byte of text
A, SPACE = ord("a"), ord(" ")
_LOW = np.uint64(0x6060606060606060)  # "a" - 1 in every byte: letters become 1..26
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)  # the first n bytes


def pack(word: str) -> int:
    """A word's key: letter i's code (a=1 .. z=26) at bits 5i; no two words of <= 12 letters share one."""
    return sum((ord(ch) - A + 1) << (5 * i) for i, ch in enumerate(word))


@dataclass(frozen=True)
class Table:
    """Keys of words -> a value each: an open-addressing hash table probed for all keys at once,
    faster than numpy's binary search (searchsorted) into sorted keys on the real reviews."""

    slots: np.ndarray  # each slot's key, EMPTY where free
    values: np.ndarray

    @classmethod
    def of(cls, words: dict[str, int], dtype=np.int64) -> "Table":
        size = 1 << max(10, (4 * len(words)).bit_length())  # at most a quarter full: most lookups hit at once
        slots = np.full(size, EMPTY, dtype=np.int64)
        values = np.zeros(size, dtype=dtype)
        for w, value in words.items():
            key = pack(w)
            at = int(_slot(np.array([key], dtype=np.int64), size)[0])
            while slots[at] != EMPTY:
                at = (at + 1) & (size - 1)
            slots[at], values[at] = key, value
        return cls(slots, values)

    def find(self, key: np.ndarray) -> np.ndarray:
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


@dataclass(frozen=True)
class Specials:
    """spaCy's special cases of letters-only words, as piece lengths."""

    table: Table  # word -> its row
    count: np.ndarray  # pieces per row
    first: np.ndarray  # where a row's pieces start in `length`
    length: np.ndarray  # each piece's letters


@lru_cache(maxsize=1)
def specials() -> Specials:
    from reviewlstm.text import letter_specials  # text imports this module

    cases = sorted(letter_specials().items())
    if any(len(w) > PACKED for w, _ in cases):
        raise ValueError("a special-case word longer than a key holds")  # not so in spaCy 3.8
    count = np.array([len(p) for _, p in cases], dtype=np.int64)
    return Specials(Table.of({w: i for i, (w, _) in enumerate(cases)}), count, np.cumsum(count) - count,
                    np.array([len(piece) for _, pieces in cases for piece in pieces], dtype=np.int64))


@dataclass
class Spans:
    """Every token of a batch of texts as a span of their bytes, in reading order."""

    data: np.ndarray  # the texts' UTF-8 bytes end to end
    offsets: np.ndarray  # where each text starts (n + 1)
    row: np.ndarray  # each token's text
    start: np.ndarray
    end: np.ndarray
    word: np.ndarray  # True for a word, False for a whitespace token
    key: np.ndarray  # a word's key (pack) where it has at most PACKED letters, else EMPTY
    unsafe: np.ndarray  # per text: not SAFE_TEXT (its tokens here are meaningless); a null text is ""


def spans(cleaned: pl.Series, drop_whitespace: bool) -> Spans:
    """The tokens of a batch of cleaned texts, special cases split."""
    data, offsets = _bytes(cleaned)
    n = len(offsets) - 1
    letter = (data >= A) & (data <= A + 25)
    space = data == SPACE
    unsafe = np.zeros(n, dtype=bool)
    unsafe[np.searchsorted(offsets, np.flatnonzero(~(letter | space)), side="right") - 1] = True
    first = np.zeros(len(data) + 1, dtype=bool)  # where a text starts: no run goes on past it
    first[offsets[:-1][offsets[:-1] < offsets[1:]]] = True
    start, end = _runs(letter, first)
    word = np.ones(len(start), dtype=bool)
    if not drop_whitespace:
        # whitespace tokens: every space of a run after its first (the first belongs to the word
        # before it), all the spaces of a run that starts a text
        s_start, s_end = _runs(space & (np.r_[False, space[:-1]] | first[:-1]), first)
        at = np.arange(len(s_start)) + np.searchsorted(start, s_start)  # words and spaces in reading order
        word = np.ones(len(start) + len(s_start), dtype=bool)
        word[at] = False
        start, end = _merged(start, s_start, word, at), _merged(end, s_end, word, at)
    row = np.repeat(np.arange(n), np.diff(np.searchsorted(start, offsets)))
    return _split_specials(Spans(data, offsets, row, start, end, word, _keys(data, start, end, word), unsafe))


def _merged(words: np.ndarray, spaces: np.ndarray, word: np.ndarray, at: np.ndarray) -> np.ndarray:
    out = np.empty(len(word), dtype=np.int64)
    out[word], out[at] = words, spaces
    return out


def _split_specials(s: Spans) -> Spans:
    """Special-case words replaced by their pieces, each piece the span of the word it spells."""
    cases = specials()
    special = np.full(len(s.key), -1, dtype=np.int64)
    short = np.flatnonzero(s.key != EMPTY)
    at = cases.table.find(s.key[short])
    special[short[at >= 0]] = cases.table.values[at[at >= 0]]
    if not (special >= 0).any():
        return s
    repeats = np.where(special >= 0, cases.count[special], 1)
    row, start, end, word, key, special = (np.repeat(a, repeats) for a in (s.row, s.start, s.end, s.word, s.key, special))
    first = np.cumsum(repeats) - repeats  # where each token's pieces start
    piece = np.arange(len(start)) - np.repeat(first, repeats)  # 0, 1, .. within a token
    hit = special >= 0
    size = np.zeros(len(start), dtype=np.int64)
    size[hit] = cases.length[cases.first[special[hit]] + piece[hit]]
    before = np.cumsum(size) - size
    before -= np.repeat(before[first], repeats)  # letters of the same word's pieces before this one
    start = start + before
    end = np.where(hit, start + size, end)
    key[hit] = _keys(s.data, start[hit], end[hit], word[hit])  # the pieces' own keys
    return Spans(s.data, s.offsets, row, start, end, word, key, s.unsafe)


def tokens(cleaned: pl.Series, drop_whitespace: bool) -> pl.Series:
    """Each text's tokens as List[str], null for a text that is not SAFE_TEXT; CHUNK texts at a time."""
    parts = [_tokens(cleaned.slice(at, CHUNK), drop_whitespace) for at in range(0, len(cleaned), CHUNK)]
    return pl.concat(parts, rechunk=True) if parts else pl.Series(cleaned.name, [], dtype=pl.List(pl.Utf8))


def _tokens(cleaned: pl.Series, drop_whitespace: bool) -> pl.Series:
    s = spans(cleaned, drop_whitespace)
    keep = ~s.unsafe[s.row]
    row, start, size = s.row[keep], s.start[keep], (s.end - s.start)[keep]
    value_offsets = np.r_[0, np.cumsum(size)].astype(np.int64)
    gather = np.repeat(start - value_offsets[:-1], size) + np.arange(value_offsets[-1])  # the tokens' bytes
    values = pa.LargeStringArray.from_buffers(len(size), pa.py_buffer(value_offsets), pa.py_buffer(s.data[gather]))
    list_offsets = np.r_[0, np.cumsum(np.bincount(row, minlength=len(s.unsafe)))].astype(np.int64)
    lists = pa.LargeListArray.from_arrays(pa.array(list_offsets), values, mask=pa.array(s.unsafe))
    return pl.Series(cleaned.name, lists, dtype=pl.List(pl.Utf8))


@dataclass(frozen=True)
class Lexicon:
    """A vocabulary (word -> id) as a hash table of keys: prediction's tokenize + encode."""

    index: dict[str, int]
    table: Table  # the vocabulary's a-z words of up to PACKED letters -> id

    @classmethod
    def of(cls, index: dict[str, int]) -> "Lexicon":
        words = {w: i for w, i in index.items() if w.isascii() and w.isalpha() and w.islower() and len(w) <= PACKED}
        return cls(index, Table.of(words, np.int32))

    def encode(self, cleaned: pl.Series, cfg, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Cleaned texts -> (ids (n, max_len) int32, lengths (n,) int32), as encode.encode_tokens
        of text.tokenize; CHUNK texts at a time."""
        n = len(cleaned)
        ids = np.zeros((n, max_len), dtype=np.int32)
        lengths = np.zeros(n, dtype=np.int32)
        for at in range(0, n, CHUNK):
            self._encode_into(cleaned.slice(at, CHUNK), cfg, ids[at : at + CHUNK], lengths[at : at + CHUNK])
        return ids, lengths

    def _encode_into(self, cleaned: pl.Series, cfg, ids: np.ndarray, lengths: np.ndarray) -> None:
        from reviewlstm import text  # text imports this module

        n, max_len = ids.shape
        s = spans(cleaned, cfg.drop_whitespace)
        keep = ~s.unsafe[s.row]
        row, code = s.row[keep], self._ids(s)[keep]
        counts = np.bincount(row, minlength=n)
        position = np.arange(len(row)) - (np.cumsum(counts) - counts)[row]  # each token's place in its text
        kept = position < max_len
        ids[row[kept], position[kept]] = code[kept]
        lengths[:] = np.minimum(counts, max_len)
        rest = np.flatnonzero(s.unsafe)  # texts off SAFE_TEXT: spaCy's tokens, looked up as strings
        if len(rest):
            texts = cleaned.gather(rest).to_list()
            ids[rest], lengths[rest] = encode_tokens(text.tokenize(texts, cfg), self.index, max_len)

    def _ids(self, s: Spans) -> np.ndarray:
        length = s.end - s.start
        ids = np.full(len(length), UNK, dtype=np.int32)
        short = np.flatnonzero(s.key != EMPTY)
        at = self.table.find(s.key[short])
        ids[short[at >= 0]] = self.table.values[at[at >= 0]]
        for i in np.flatnonzero(s.word & (length > PACKED)):  # about one token in 300 in the real reviews
            ids[i] = self.index.get(s.data[s.start[i] : s.end[i]].tobytes().decode("ascii"), UNK)
        space = ~s.word
        if space.any():
            widths = length[space]
            ids[space] = np.array([self.index.get(" " * w, UNK) for w in range(int(widths.max()) + 1)], dtype=np.int32)[widths]
        return ids


def _keys(data: np.ndarray, start: np.ndarray, end: np.ndarray, word: np.ndarray) -> np.ndarray:
    """Each word's key (pack) where it has at most PACKED letters, else EMPTY; from 8 bytes at its
    start read as one little-endian integer."""
    keys = np.full(len(start), EMPTY, dtype=np.int64)
    short = np.flatnonzero(word & (end - start <= PACKED))
    start, length = start[short], (end - start)[short]
    padded = np.concatenate([data, np.zeros(16, dtype=np.uint8)])
    eights = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))  # unaligned reads
    key = _squeeze((eights[start] - _LOW) & _MASKS[np.minimum(length, 8)])
    longer = length > 8
    rest = np.clip(length[longer] - 8, 0, 8)
    key[longer] |= _squeeze((eights[start[longer] + 8] - _LOW) & _MASKS[rest]) << np.uint64(40)
    keys[short] = key.view(np.int64)
    return keys


def _bytes(cleaned: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The texts' UTF-8 bytes end to end, and where each text starts (n + 1 offsets)."""
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
