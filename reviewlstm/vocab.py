"""Frequency pruning and the vocabulary: id 0 is padding (""), id 1 is "UNK", then kept words.

Words keep the order in which the corpus first shows them, as the study's Counter does, so ids
are stable for the same corpus.
"""

from __future__ import annotations

from collections import Counter

import polars as pl

SPECIALS = ["", "UNK"]


def count_tokens(tokens: list[list[str]] | pl.LazyFrame) -> Counter[str]:
    """Each token's count, in the order the corpus first shows it (a Counter's); token lists, or a
    lazy table's `tokens` column, streamed: only the distinct words are held."""
    lazy = tokens if isinstance(tokens, pl.LazyFrame) else pl.LazyFrame({"tokens": pl.Series(tokens, dtype=pl.List(pl.Utf8))})
    words = lazy.select(pl.col("tokens").explode().drop_nulls())  # an empty list explodes to a null
    counted = words.group_by("tokens", maintain_order=True).len().collect(engine="streaming")
    return Counter(dict(zip(counted["tokens"].to_list(), counted["len"].to_list())))


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
