"""Text to tokens: the study's cleaning rules, then spaCy's English tokenizer.

Cleaning runs as vectorised polars expressions. Tokenizing gives exactly what
`spacy.blank("en")` gives, by one of two paths chosen per text: a text made only of lowercase
ASCII letters and spaces (SAFE_TEXT: every text the study's cleaning produces, unless it leaves
ASCII control characters) goes through reviewlstm/array_tokenizer.py, which applies spaCy's
rules for such text in arrays (bench/RESULTS.md, "Tokenizer") without importing spaCy (which
also imports torch); any other text goes through spaCy itself (`tokenizer.pipe`, in batches).
tests/library/test_text_fast.py compares the two on all 23,486 real reviews and on generated strings.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import metadata

import polars as pl

from reviewlstm import array_tokenizer
from reviewlstm.config import CleanConfig, TokenizeConfig

NON_ASCII = r"[^\x00-\x7F]+"
# string.punctuation as ASCII ranges, plus digits and \r \t \n: the study's regex.
PUNCT_DIGITS = r"[!-/:-@\[-`{-~0-9\r\t\n]"


def clean(texts: pl.Series | pl.Expr, cfg: CleanConfig) -> pl.Series | pl.Expr:
    """The study's cleaning: non-ASCII runs and punctuation/digits to spaces, lowercase (on a
    Series, or as an expression for a lazy table)."""
    if cfg.ascii_only:
        texts = texts.str.replace_all(NON_ASCII, " ")
    if cfg.lowercase:
        texts = texts.str.to_lowercase()
    if cfg.strip_punctuation:
        texts = texts.str.replace_all(PUNCT_DIGITS, " ")
    return texts


@lru_cache(maxsize=1)
def _tokenizer():
    import spacy  # heavy (it imports torch too): only for texts off the array path

    return spacy.blank("en").tokenizer


# Texts matching this take the array path; everything else goes through spaCy.
SAFE_TEXT = re.compile(r"[a-z ]*")
_WORD = re.compile(r"[a-z]+")

# spaCy 3.8's English exceptions whose key is all lowercase letters and that split it, as
# "key:piece+piece" (from spacy.blank("en").tokenizer.rules; identity entries left out).
# Another spaCy version gets its table from spaCy itself (_letter_specials).
_SPECIALS_SPACY = "3.8.18"
_SPECIALS = """
    aint:ai+nt arent:are+nt cannot:can+not cant:ca+nt cantve:ca+nt+ve couldnt:could+nt
    couldntve:could+nt+ve couldve:could+ve darent:dare+nt didnt:did+nt didntve:did+nt+ve
    doesnt:does+nt doesntve:does+nt+ve dont:do+nt dontve:do+nt+ve gonna:gon+na gotta:got+ta
    hadnt:had+nt hadntve:had+nt+ve hasnt:has+nt havent:have+nt hed:he+d hedve:he+d+ve
    hellve:he+ll+ve hes:he+s howd:how+d howdve:how+d+ve howll:how+ll howllve:how+ll+ve
    howre:how+re hows:how+s howve:how+ve id:i+d idve:i+d+ve illve:i+ll+ve im:i+m ima:i+m+a
    isnt:is+nt itd:it+d itdve:it+d+ve itll:it+ll itllve:it+ll+ve ive:i+ve maynt:may+nt
    mayntve:may+nt+ve mightnt:might+nt mightntve:might+nt+ve mightve:might+ve mustnt:must+nt
    mustntve:must+nt+ve mustve:must+ve neednt:need+nt needntve:need+nt+ve notve:not+ve
    oughtnt:ought+nt oughtntve:ought+nt+ve shant:sha+nt shantve:sha+nt+ve shedve:she+d+ve
    shellve:she+ll+ve shes:she+s shouldnt:should+nt shouldntve:should+nt+ve shouldve:should+ve
    thatd:that+d thatdve:that+d+ve thatll:that+ll thatllve:that+ll+ve thats:that+s
    thered:there+d theredve:there+d+ve therell:there+ll therellve:there+ll+ve therere:there+re
    theres:there+s thereve:there+ve thesed:these+d thesedve:these+d+ve thesell:these+ll
    thesellve:these+ll+ve thesere:these+re theseve:these+ve theyd:they+d theydve:they+d+ve
    theyll:they+ll theyllve:they+ll+ve theyre:they+re theyve:they+ve thisd:this+d
    thisdve:this+d+ve thisll:this+ll thisllve:this+ll+ve thiss:this+s thosed:those+d
    thosedve:those+d+ve thosell:those+ll thosellve:those+ll+ve thosere:those+re thoseve:those+ve
    wasnt:was+nt wed:we+d wedve:we+d+ve wellve:we+ll+ve werent:were+nt weve:we+ve whatd:what+d
    whatdve:what+d+ve whatll:what+ll whatllve:what+ll+ve whatre:what+re whats:what+s
    whatve:what+ve whend:when+d whendve:when+d+ve whenll:when+ll whenllve:when+ll+ve
    whenre:when+re whens:when+s whenve:when+ve whered:where+d wheredve:where+d+ve
    wherell:where+ll wherellve:where+ll+ve wherere:where+re wheres:where+s whereve:where+ve
    whod:who+d whodve:who+d+ve wholl:who+ll whollve:who+ll+ve whos:who+s whove:who+ve whyd:why+d
    whydve:why+d+ve whyll:why+ll whyllve:why+ll+ve whyre:why+re whys:why+s whyve:why+ve
    wont:wo+nt wontve:wo+nt+ve wouldnt:would+nt wouldntve:would+nt+ve wouldve:would+ve
    yall:y+all youd:you+d youdve:you+d+ve youll:you+ll youllve:you+ll+ve youre:you+re
    youve:you+ve
"""


@lru_cache(maxsize=1)
def letter_specials() -> dict[str, list[str]]:
    """Word -> its pieces, for every special case a letters-only word can hit."""
    try:
        version = metadata.version("spacy")
    except metadata.PackageNotFoundError:
        version = None
    if version == _SPECIALS_SPACY:
        return {k: v.split("+") for k, v in (item.split(":") for item in _SPECIALS.split())}
    rules = _tokenizer().rules  # spaCy's own table: exact for whichever version is installed
    return {k: [piece[65] for piece in v] for k, v in rules.items()  # 65: spacy.attrs.ORTH
            if _WORD.fullmatch(k) and len(v) > 1}


def tokens(texts: pl.Series, cfg: TokenizeConfig) -> pl.Series:
    """Token strings per text as List[str], exactly spaCy's; whitespace tokens kept (the study)
    unless cfg drops them."""
    out = array_tokenizer.tokens(texts, cfg.drop_whitespace)  # null where a text is not SAFE_TEXT
    rest = out.is_null().arg_true()
    if len(rest):
        docs = _tokenizer().pipe(texts.gather(rest).to_list(), batch_size=cfg.batch_size)
        spacy: list[list[str] | None] = [None] * len(texts)
        for i, doc in zip(rest.to_list(), docs):
            spacy[i] = [t.text for t in doc if not (cfg.drop_whitespace and t.is_space)]
        out = out.zip_with(out.is_not_null(), pl.Series(out.name, spacy, dtype=pl.List(pl.Utf8)))
    return out


def tokenized(texts: pl.Expr, cfg: TokenizeConfig) -> pl.Expr:
    """tokens as an expression: batch by batch, so a lazy table streams through it."""
    return texts.map_batches(lambda s: tokens(s, cfg), return_dtype=pl.List(pl.Utf8), is_elementwise=True)


def tokenize(texts: list[str], cfg: TokenizeConfig) -> list[list[str]]:
    """tokens of a list of texts, as lists of strings."""
    return tokens(pl.Series(texts, dtype=pl.Utf8), cfg).to_list()
