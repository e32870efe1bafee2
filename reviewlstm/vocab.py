"""Frequency pruning and the vocabulary: id 0 is padding (""), id 1 is "UNK", then kept words.

Words keep the order in which the corpus first shows them, as the study's Counter does, so ids
are stable for the same corpus.
"""

from __future__ import annotations

from collections import Counter

import polars as pl

SPECIALS = ["", "UNK"]


def count_tokens(tokens: list[list[str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for words in tokens:
        counts.update(words)
    return counts


def vocabulary(counts: Counter[str], min_count: int) -> pl.DataFrame:
    """Table (id, word, count) of the specials and every word seen at least min_count times."""
    kept = [(w, c) for w, c in counts.items() if c >= min_count and w not in SPECIALS]
    words = SPECIALS + [w for w, _ in kept]
    return pl.DataFrame(
        {
            "id": pl.Series(range(len(words)), dtype=pl.Int32),
            "word": words,
            "count": pl.Series([0, 0] + [c for _, c in kept], dtype=pl.Int64),
        }
    )


def figures(counts: Counter[str], vocab: pl.DataFrame) -> dict[str, int]:
    return {"distinct_tokens": len(counts), "kept_tokens": len(vocab) - len(SPECIALS), "vocab_size": len(vocab)}
