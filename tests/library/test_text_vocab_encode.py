"""reviewlstm.text, vocab and encode as plain functions, and the study's figures on a small file.

The last test transcribes the study's own preprocessing code and checks that the library's
ingest -> clean -> tokenize -> vocabulary chain gives exactly the same tokens, counts, vocabulary
order and mean length.
"""

from __future__ import annotations

import csv
import re
import string
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from helpers import write_reviews
from reviewlstm import encode, ingest, text, vocab
from reviewlstm.config import CleanConfig, EncodeConfig, IngestConfig, TokenizeConfig


def clean1(s: str, **switches: bool) -> str:
    return text.clean(pl.Series([s]), CleanConfig(**switches))[0]


def study_clean(s: str) -> str:
    """The study's cleaning, verbatim."""
    s = re.sub(r"[^\x00-\x7F]+", " ", s)
    regex = re.compile("[" + re.escape(string.punctuation) + "0-9\\r\\t\\n]")
    return regex.sub(" ", s.lower())


# --- text.clean ------------------------------------------------------------------------------


def test_a_run_of_non_ascii_characters_becomes_one_space():
    assert clean1("caf\u00e9\u2019s") == "caf s"
    assert clean1("love\U0001F60D\U0001F60Dit") == "love it"
    assert clean1("a\u00a0b") == "a b"
    assert clean1("\u00e9t\u00e9") == " t "


def test_each_punctuation_character_and_digit_becomes_one_space():
    assert clean1("a,b") == "a b"
    assert clean1("wow!!") == "wow  "
    assert clean1("size 10 petite") == "size    petite"
    assert clean1("5'5\"") == "    "
    assert clean1(string.punctuation) == " " * len(string.punctuation)
    assert clean1(string.digits) == " " * 10


def test_cr_tab_and_lf_become_spaces_other_control_characters_stay():
    assert clean1("a\r\nb\tc") == "a  b c"
    assert clean1("a\x0bb\x0cc") == "a\x0bb\x0cc"  # not in the study's class


def test_lowercase():
    assert clean1("FITS Great") == "fits great"


def test_every_ascii_character_is_cleaned_as_the_study_does():
    chars = [chr(c) for c in range(1, 128)]
    got = text.clean(pl.Series(chars), CleanConfig()).to_list()
    assert got == [study_clean(c) for c in chars]


def test_switches_turn_each_rule_off():
    s = "Caf\u00e9, SIZE 10!"
    assert clean1(s) == "caf   size    "
    assert clean1(s, ascii_only=False) == "caf\u00e9  size    "
    assert clean1(s, strip_punctuation=False) == "caf , size 10!"
    assert clean1(s, lowercase=False) == "Caf   SIZE    "
    assert clean1(s, ascii_only=False, strip_punctuation=False, lowercase=False) == s


def test_clean_keeps_row_count_and_order():
    series = pl.Series(["B", "", "a!", " "])
    assert text.clean(series, CleanConfig()).to_list() == ["b", "", "a ", " "]


# --- text.tokenize ----------------------------------------------------------------------------


def test_tokenize_keeps_spacy_whitespace_tokens_like_the_study():
    got = text.tokenize(["hello  world", " a", "a   b", "", "  "], TokenizeConfig())
    assert got == [["hello", " ", "world"], [" ", "a"], ["a", "  ", "b"], [], ["  "]]


def test_tokenize_uses_spacys_english_exceptions():
    assert text.tokenize(["gonna love it", "cannot"], TokenizeConfig()) == [["gon", "na", "love", "it"], ["can", "not"]]


def test_tokenize_drops_whitespace_tokens_when_asked():
    got = text.tokenize(["hello  world", " a", "a \n b", "  "], TokenizeConfig(drop_whitespace=True))
    assert got == [["hello", "world"], ["a"], ["a", "b"], []]


def test_tokenize_batches_do_not_change_the_result():
    texts = [f"word{i}  and more {i % 3}" for i in range(25)]
    assert text.tokenize(texts, TokenizeConfig(batch_size=1)) == text.tokenize(texts, TokenizeConfig(batch_size=1000))


# --- vocab ------------------------------------------------------------------------------------


def test_count_tokens_counts_over_all_reviews():
    counts = vocab.count_tokens([["a", "b", "a"], [], ["c", "a"]])
    assert counts == Counter({"a": 3, "b": 1, "c": 1})
    assert list(counts) == ["a", "b", "c"]


def test_vocabulary_specials_first_then_kept_words_in_first_seen_order():
    counts = vocab.count_tokens([["zeta", "alpha", "zeta"], ["beta", "alpha", "once", " "], [" ", "beta"]])
    table = vocab.vocabulary(counts, min_count=2)
    assert table["word"].to_list() == ["", "UNK", "zeta", "alpha", "beta", " "]
    assert table["id"].to_list() == [0, 1, 2, 3, 4, 5]
    assert table["count"].to_list() == [0, 0, 2, 2, 2, 2]
    assert vocab.figures(counts, table) == {"distinct_tokens": 5, "kept_tokens": 4, "vocab_size": 6}


@pytest.mark.parametrize("min_count, kept", [(1, ["x", "y", "z"]), (2, ["x", "y"]), (3, ["x"]), (4, [])])
def test_vocabulary_min_count(min_count, kept):
    counts = Counter({"x": 3, "y": 2, "z": 1})
    assert vocab.vocabulary(counts, min_count)["word"].to_list() == ["", "UNK", *kept]


def test_a_token_spelled_like_a_special_does_not_take_a_second_id():
    counts = Counter({"UNK": 5, "ok": 2})  # possible with lowercase switched off
    table = vocab.vocabulary(counts, 1)
    assert table["word"].to_list() == ["", "UNK", "ok"]
    assert table["id"].n_unique() == len(table)


# --- encode -----------------------------------------------------------------------------------


def test_encode_tokens_pads_after_truncates_and_maps_unknown_words_to_unk():
    index = {"": 0, "UNK": 1, "a": 2, "b": 3}
    ids, lengths = encode.encode_tokens([["a", "b"], ["b", "zzz", "a", "a", "b", "a"], [], ["a"] * 4], index, 4)
    assert ids.dtype == np.int32 and ids.shape == (4, 4)
    assert ids.tolist() == [[2, 3, 0, 0], [3, 1, 2, 2], [0, 0, 0, 0], [2, 2, 2, 2]]
    assert lengths.tolist() == [2, 4, 0, 4]
    assert encode.PAD == 0 and encode.UNK == 1


def test_split_labels_is_seeded_and_takes_the_fraction():
    labels = np.repeat(np.arange(5), [3, 7, 11, 23, 56])  # 100 rows, skewed like the real data
    a = encode.split_labels(labels, 0.2, seed=7, stratify=False)
    assert a.dtype == bool and a.shape == labels.shape
    assert a.sum() == 20
    assert np.array_equal(a, encode.split_labels(labels, 0.2, seed=7, stratify=False))
    assert not np.array_equal(a, encode.split_labels(labels, 0.2, seed=8, stratify=False))
    assert encode.split_labels(labels, 0.35, seed=7, stratify=False).sum() == 35


def test_stratified_split_keeps_each_class_proportion():
    labels = np.repeat(np.arange(5), [40, 60, 100, 300, 500])
    valid = encode.split_labels(labels, 0.2, seed=3, stratify=True)
    for c, n in enumerate([40, 60, 100, 300, 500]):
        assert valid[labels == c].sum() == n // 5
    other = encode.split_labels(labels, 0.2, seed=4, stratify=True)
    assert not np.array_equal(valid, other)
    assert np.array_equal(valid, encode.split_labels(labels, 0.2, seed=3, stratify=True))


def test_encode_and_to_split_round_trip():
    rng = np.random.default_rng(0)
    words = ["a", "b", "c", "d", "rare"]
    token_lists = [[str(rng.choice(words)) for _ in range(int(rng.integers(0, 9)))] for _ in range(50)]
    labels = rng.integers(0, 5, size=50).astype(np.int8)
    tokens = pl.DataFrame({"tokens": token_lists, "label": labels})
    table = vocab.vocabulary(vocab.count_tokens(token_lists), min_count=1)
    table = table.filter(pl.col("word") != "rare")  # a word the vocabulary lacks -> UNK
    cfg = EncodeConfig(max_len=6, valid_fraction=0.3, seed=11)
    encoded = encode.encode(tokens, table, cfg)
    assert encoded.columns == ["ids", "length", "label", "split"]
    assert encoded["ids"].dtype == pl.Array(pl.Int32, 6)
    assert sorted(set(encoded["split"])) == ["train", "valid"]
    assert (encoded["split"] == "valid").sum() == 15

    index = dict(zip(table["word"], table["id"]))
    ids, lengths = encode.encode_tokens(token_lists, index, 6)
    valid = encoded["split"].to_numpy() == "valid"
    for name, rows in (("train", ~valid), ("valid", valid)):
        split = encode.to_split(encoded, name)
        assert len(split) == rows.sum()
        assert split.ids.dtype == np.int32 and split.ids.shape == (rows.sum(), 6)
        assert np.array_equal(split.ids, ids[rows])
        assert np.array_equal(split.lengths, lengths[rows])
        assert np.array_equal(split.labels, labels[rows])
    unk = [i for i, t in enumerate(token_lists) if "rare" in t[:6]]
    assert unk and all(1 in ids[i] for i in unk)
    fig = encode.figures(encoded)
    assert fig["train_rows"] == 35 and fig["valid_rows"] == 15
    assert fig["at_max_len"] == int((lengths == 6).sum())


# --- the study's figures, on a small file ---------------------------------------------------

ROWS = [
    ("Love it!!", "Absolutely wonderful - silky and sexy and comfortable", 5),
    ("", "Love this dress!  it's sooo pretty.  i happened to find it in a store, and i'm glad i did", 5),
    ("Some major design flaws", "I had such high hopes for this dress (size 10) & really wanted it to work.", 3),
    ("My favorite buy!", "I love, love, love this jumpsuit. it's fun, flirty, and fabulous!\r\nEvery time I wear it", 5),
    ("Flattering shirt", "This shirt is very flattering to all due to the adjustable front tie.\nPerfect length", 5),
    ("Not for the very petite", "I love tracy reese dresses, but this one is not for the very petite. I am 5'2\"", 2),
    ("Caf\u00e9 au lait \u2615", "The colour is caf\u00e9-au-lait \u2014 na\u00efve me thought it\u2019d be darker", 4),
    ("Shimmer \U0001F60D\U0001F60D fun", "I ordered this in carbon for store pick up, and had a ton of stuff \U0001F44D", 4),
    ("", "", 4),
    ("Flattering", "", 5),
    ("Such a fun dress!", "I'm 5\"5' and 125 lbs. i ordered the s petite to make sure the length wasn't too long", 5),
    ("Dress looks cheap", "Dress runs small esp where the zipper area runs. 34b/c; xs/s \t fits", 3),
    ("Perfect!!!", "More and more i find myself reliant on the reviews written by savvy shoppers", 5),
    ("Runs big", "Bought the black xs to go under the larkspur midi dress because they didn't bother", 4),
    ("Pretty party dress", "This is a nice choice for holiday gatherings. i like that the length\r\n\r\nhits", 3),
    ("Nice, but not for my body", "I took these out of the package and wanted them to fit so badly...", 1),
    ("You need to be at least average height", "Material and color is nice.  the leg opening is very large", 2),
    ("Looks great with white pants", "Took a chance on this blouse and so glad i did. i wasn't crazy about it at first", 5),
    ("Super cute and cozy", "A flattering, super cozy coat.  will work well for cold, dry days", 5),
    ("Stylish", "I love the look and feel of this tulle dress. i was looking for something different", 4),
    ("GORGEOUS", "gorgeous GORGEOUS gorgeous!!! 100% worth $89.99 @ retailer #love", 5),
    ("meh", "It's ok... gonna return it; can't deal w/ the itchy fabric :(", 2),
    ("\u00a0", "non\u00a0breaking\u00a0spaces and   three spaces and trailing ", 3),
    ("Returned", "Cheap-looking. Returned it the next day\u2026 sigh", 1),
    ("", "Runs true to size; love the fabric & the fit", 4),
    ("Hmm", "\u201cFits\u201d they said. it doesn't fit", 2),
    ("Great jeans", "Great jeans\tgreat price\tgreat fit", 5),
    ("tight in the arms", "Tight in the arms, 2 sizes up was fine. love, love it", 4),
    ("", "Wore it to a wedding & got compliments!!", 5),
    ("Soft", "Soft, soft, soft. Wash cold, hang dry", 5),
]


def study(path: Path) -> dict:
    """The study's preprocessing code, transcribed; pandas' read_csv(...).fillna('') as csv."""
    import spacy

    tok = spacy.blank("en")

    def tokenize(text):
        text = re.sub(r"[^\x00-\x7F]+", " ", text)
        regex = re.compile("[" + re.escape(string.punctuation) + "0-9\\r\\t\\n]")  # remove punctuation and numbers
        nopunct = regex.sub(" ", text.lower())
        return [token.text for token in tok.tokenizer(nopunct)]

    with path.open(newline="", encoding="utf-8") as f:
        reviews = list(csv.DictReader(f))
    descriptions = [r["Title"] + " " + r["Review Text"] for r in reviews]
    review_length = [len(x.split()) for x in descriptions]

    counts = Counter()
    for description in descriptions:
        counts.update(tokenize(description))
    distinct = len(counts)
    for word in list(counts):
        if counts[word] < 2:
            del counts[word]
    vocab2index = {"": 0, "UNK": 1}
    words = ["", "UNK"]
    for word in counts:
        vocab2index[word] = len(words)
        words.append(word)
    return {
        "tokens": [tokenize(d) for d in descriptions],
        "distinct": distinct,
        "kept": len(counts),
        "counts": counts,
        "words": words,
        "mean_length": float(np.mean(review_length)),
    }


def test_library_gives_the_studys_figures_on_a_small_file(tmp_path):
    path = write_reviews(tmp_path / "small.csv", ROWS)
    assert b'\r\n' in path.read_bytes().split(b"\n", 1)[1]  # CRLF also inside quoted fields
    expected = study(path)

    reviews = ingest.reviews(ingest.read_table(path), IngestConfig(), source=str(path))
    cleaned = text.clean(reviews["text"], CleanConfig())
    tokens = text.tokenize(cleaned.to_list(), TokenizeConfig())
    counts = vocab.count_tokens(tokens)
    table = vocab.vocabulary(counts, min_count=2)
    fig = vocab.figures(counts, table)

    assert tokens == expected["tokens"]
    assert fig["distinct_tokens"] == expected["distinct"]
    assert fig["kept_tokens"] == expected["kept"]
    assert table["word"].to_list() == expected["words"]
    assert table["count"].to_list()[2:] == [expected["counts"][w] for w in expected["words"][2:]]
    assert ingest.figures(reviews)["mean_words"] == round(expected["mean_length"], 2)
    # The file exercises what it should: whitespace tokens, pruned words, empty texts.
    assert " " in expected["words"] and expected["distinct"] > expected["kept"] > 50
    assert ingest.figures(reviews)["empty_texts"] == 1
