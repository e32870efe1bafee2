"""Text to tokens: the study's cleaning rules, then spaCy's English tokenizer.

Cleaning runs as vectorised polars expressions; tokenizing uses `spacy.blank("en")`, which
needs no model download, fed in batches through `tokenizer.pipe`.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from reviewlstm.config import CleanConfig, TokenizeConfig

NON_ASCII = r"[^\x00-\x7F]+"
# string.punctuation as ASCII ranges, plus digits and \r \t \n: the study's regex.
PUNCT_DIGITS = r"[!-/:-@\[-`{-~0-9\r\t\n]"


def clean(texts: pl.Series, cfg: CleanConfig) -> pl.Series:
    """The study's cleaning: non-ASCII runs and punctuation/digits to spaces, lowercase."""
    if cfg.ascii_only:
        texts = texts.str.replace_all(NON_ASCII, " ")
    if cfg.lowercase:
        texts = texts.str.to_lowercase()
    if cfg.strip_punctuation:
        texts = texts.str.replace_all(PUNCT_DIGITS, " ")
    return texts


@lru_cache(maxsize=1)
def _tokenizer():
    import spacy  # heavy: imported only when a stage tokenizes

    return spacy.blank("en").tokenizer


def tokenize(texts: list[str], cfg: TokenizeConfig) -> list[list[str]]:
    """Token strings per text; whitespace tokens kept (the study) unless cfg drops them."""
    out = []
    for doc in _tokenizer().pipe(texts, batch_size=cfg.batch_size):
        if cfg.drop_whitespace:
            out.append([t.text for t in doc if not t.is_space])
        else:
            out.append([t.text for t in doc])
    return out
