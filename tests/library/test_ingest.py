"""reviewlstm.ingest: reading a user's export and validating it, as plain functions.

Good files of every supported kind are read into (text, label); every bad file stops with
InputError whose message is one line naming the file, the row or column, and what was expected.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import polars as pl
import pytest

from helpers import SAMPLE, write_reviews
from reviewlstm import ingest
from reviewlstm.config import IngestConfig
from reviewlstm.errors import InputError

HEAD = "Title,Review Text,Rating\r\n"


def load(path: Path, cfg: IngestConfig | None = None) -> pl.DataFrame:
    """The ingest stage's route: checked lazily, then read (the whole-table route is
    test_whole_tables_read_as_the_stage_reads_files)."""
    return ingest.load(path, cfg or IngestConfig()).collect()


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def input_error(path: Path, cfg: IngestConfig | None = None) -> str:
    """The message of the InputError that loading `path` raises; checks it is one line."""
    with pytest.raises(InputError) as info:
        load(path, cfg)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message, message
    return message


# --- good inputs ---------------------------------------------------------------------------


def test_csv_like_the_real_export(sample_csv):
    out = load(sample_csv)
    assert out.columns == ["text", "label"]
    assert out.schema == {"text": pl.String, "label": pl.Int8}
    assert len(out) == len(SAMPLE) * 3
    title, text, rating = SAMPLE[0]
    assert out["text"][0] == f"{title} {text}"
    assert out["label"][0] == rating - 1
    assert out["label"].to_list() == [r - 1 for _, _, r in SAMPLE * 3]


def test_text_joins_columns_with_a_space_and_missing_parts_as_empty(tmp_path):
    path = write_reviews(tmp_path / "r.csv", [("", "only text", 5), ("only title", "", 4), ("", "", 3), ("a", "b", 1)])
    assert load(path)["text"].to_list() == [" only text", "only title ", " ", "a b"]


def test_quoted_fields_keep_embedded_crlf_and_lf_newlines(tmp_path):
    path = write(tmp_path / "r.csv", HEAD + '"Two\r\nlines","first\r\nsecond\nthird",5\r\nplain,"x, ""quoted"" y",4\r\n')
    out = load(path)
    assert out["text"].to_list() == ["Two\r\nlines first\r\nsecond\nthird", 'plain x, "quoted" y']
    assert out["label"].to_list() == [4, 3]


def test_utf8_bom_before_the_first_column_name(tmp_path):
    path = write(tmp_path / "r.csv", b"\xef\xbb\xbfTitle,Review Text,Rating\r\nGreat,fits well,5\r\n")
    out = load(path)
    assert out["text"].to_list() == ["Great fits well"]
    assert out["label"].to_list() == [4]


def test_utf8_bom_before_a_quoted_first_column_name(tmp_path):
    path = write(tmp_path / "r.csv", b'\xef\xbb\xbf"Title","Review Text","Rating"\r\n"Great","fits well","2"\r\n')
    assert load(path).to_dicts() == [{"text": "Great fits well", "label": 1}]


def test_non_ascii_text_is_read_unchanged(tmp_path):
    path = write_reviews(tmp_path / "r.csv", [("Caf\u00e9 \u2019n\u2019 \U0001F60D", "na\u00efve \u201cfit\u201d", 5)])
    assert load(path)["text"][0] == "Caf\u00e9 \u2019n\u2019 \U0001F60D na\u00efve \u201cfit\u201d"


@pytest.mark.parametrize("name", ["r.tsv", "r.tab", "r.txt"])
def test_tsv_with_commas_in_the_text(tmp_path, name):
    path = write(tmp_path / name, 'Title\tReview Text\tRating\nSmall, tight\t"runs\tsmall\nsize up"\t2\nok\tfine, really\t4\n')
    out = load(path)
    assert out["text"].to_list() == ["Small, tight runs\tsmall\nsize up", "ok fine, really"]
    assert out["label"].to_list() == [1, 3]


def test_parquet_keeps_nulls_and_integer_ratings(tmp_path):
    path = tmp_path / "r.parquet"
    pl.DataFrame(
        {"Title": ["Nice", None, "Meh"], "Review Text": ["soft\r\nfabric", "runs small", None], "Rating": [5, 1, 3]}
    ).write_parquet(path)
    out = load(path)
    assert out.to_dicts() == [
        {"text": "Nice soft\r\nfabric", "label": 4},
        {"text": " runs small", "label": 0},
        {"text": "Meh ", "label": 2},
    ]
    assert out.schema["label"] == pl.Int8


def test_parquet_under_a_csv_name_is_recognised_by_its_magic_bytes(tmp_path):
    path = tmp_path / "export.csv"
    pl.DataFrame({"Title": ["a"], "Review Text": ["b"], "Rating": [4.0]}).write_parquet(path)
    assert load(path).to_dicts() == [{"text": "a b", "label": 3}]


@pytest.mark.parametrize("written", ["4.0", "4", " 4 ", "4.00"])
def test_integer_labels_written_as_floats_or_padded_are_accepted(tmp_path, written):
    path = write(tmp_path / "r.csv", HEAD + f"a,b,{written}\r\n")
    assert load(path)["label"].to_list() == [3]


def test_label_becomes_zero_based_int8_for_every_rating(tmp_path):
    path = write_reviews(tmp_path / "r.csv", [("t", "x", r) for r in (1, 2, 3, 4, 5)])
    out = load(path)
    assert out["label"].dtype == pl.Int8
    assert out["label"].to_list() == [0, 1, 2, 3, 4]


def test_custom_text_and_label_columns(tmp_path):
    path = write(tmp_path / "other.csv", "id,stars,body,extra\n1,3,decent shirt,z\n2,1,,q\n")
    cfg = IngestConfig(text_columns=["body"], label_column="stars")
    assert load(path, cfg).to_dicts() == [{"text": "decent shirt", "label": 2}, {"text": "", "label": 0}]
    # The default columns are not in this export: the error names the first one missing.
    assert "'Title'" in input_error(path)


def test_custom_label_range(tmp_path):
    path = write(tmp_path / "r.csv", "body,score\nx,0\ny,10\n")
    cfg = IngestConfig(text_columns=["body"], label_column="score", label_min=0, label_max=10)
    assert load(path, cfg)["label"].to_list() == [0, 10]


def test_blank_lines_in_a_csv_are_not_reviews(tmp_path):
    # Spreadsheet exports often end with an empty line; the study's pandas reader skips them.
    path = write(tmp_path / "r.csv", HEAD + "a,b,5\r\n\r\nc,d,4\r\n\r\n")
    assert load(path).to_dicts() == [{"text": "a b", "label": 4}, {"text": "c d", "label": 3}]


def test_rows_with_empty_text_are_kept_and_counted(tmp_path):
    rows = [("", "", 5), ("t", "x", 4), ("", "", 1), ("", " ", 2), ("Title only", "", 3)]
    out = load(write_reviews(tmp_path / "r.csv", rows))
    assert len(out) == 5
    fig = ingest.figures(out)
    assert fig["rows"] == 5
    assert fig["empty_texts"] == 3


def test_figures_mean_words_is_the_studys_mean_of_split(tmp_path):
    rows = [
        ("Love it", "Absolutely wonderful -  silky\tand sexy\r\nand comfortable", 5),
        ("", "", 4),
        ("Nice", "", 3),
        ("", "one", 2),
        ("non\u00a0breaking", "thin\u2009space and   runs", 1),
        ("emoji\U0001F60Dglued", "5'5\" 125 lbs, xs/s", 5),
        ("x", "unit\x1fseparator", 4),
    ]
    path = write_reviews(tmp_path / "r.csv", rows)
    out = load(path)
    # The study: description = Title.fillna('') + ' ' + Review Text.fillna(''); len(x.split()).
    with path.open(newline="", encoding="utf-8") as f:
        lengths = [len((row["Title"] + " " + row["Review Text"]).split()) for row in csv.DictReader(f)]
    assert ingest.figures(out)["mean_words"] == round(sum(lengths) / len(lengths), 2)
    assert ingest.figures(out)["rows"] == len(rows)


# --- bad inputs: one line naming the file, where, and what was expected ---------------------


def test_missing_file(tmp_path):
    message = input_error(tmp_path / "nope.csv")
    assert "no such file" in message


def test_directory_given_as_the_file(tmp_path):
    folder = tmp_path / "reviews.csv"
    folder.mkdir()
    assert "directory" in input_error(folder)


def test_empty_file(tmp_path):
    assert "empty" in input_error(write(tmp_path / "r.csv", b""))


@pytest.mark.parametrize("data", [HEAD, HEAD.rstrip("\r\n"), HEAD + "\r\n\r\n"])
def test_header_only(tmp_path, data):
    message = input_error(write(tmp_path / "r.csv", data))
    assert "no rows" in message


@pytest.mark.parametrize(
    "header, missing",
    [("Title,Rating", "Review Text"), ("Review Text,Rating", "Title"), ("Title,Review Text,Stars", "Rating")],
)
def test_missing_column(tmp_path, header, missing):
    ncols = header.count(",") + 1
    path = write(tmp_path / "r.csv", header + "\n" + ",".join(["5"] * ncols) + "\n")
    message = input_error(path)
    assert f"column {missing!r} not found" in message
    assert "expected columns" in message


@pytest.mark.parametrize(
    "value, row, shown",
    [("five", 2, "'five'"), ("4.5", 2, "'4.5'"), ("", 2, "empty"), ("4,5", 2, "'4,5'")],
)
def test_label_not_an_integer(tmp_path, value, row, shown):
    path = tmp_path / "r.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["Title", "Review Text", "Rating"], ["a", "b", "5"], ["c", "d", value], ["e", "f", "x"]])
    message = input_error(path)
    assert f"row {row}" in message
    assert "'Rating'" in message
    assert shown in message
    assert "not an integer" in message
    assert "1..5" in message


@pytest.mark.parametrize("value", ["0", "6", "-1", "50"])
def test_label_outside_the_range(tmp_path, value):
    path = write(tmp_path / "r.csv", HEAD + "a,b,5\r\nc,d,4\r\ne,f," + value + "\r\n")
    message = input_error(path)
    assert "row 3" in message
    assert "'Rating'" in message
    assert f"rating {value} is outside 1..5" in message


def test_label_error_in_a_parquet_file(tmp_path):
    path = tmp_path / "r.parquet"
    pl.DataFrame({"Title": ["a", "b"], "Review Text": ["x", "y"], "Rating": [5, 7]}).write_parquet(path)
    message = input_error(path)
    assert "row 2" in message and "outside 1..5" in message


def test_bytes_that_are_not_utf8_name_the_line(tmp_path):
    path = write(tmp_path / "r.csv", HEAD.encode() + b"a,b,5\r\n\"two\r\nlines\",ok,4\r\ncaf\xe9,latin-1,3\r\n")
    message = input_error(path)
    assert "line 5" in message
    assert "not UTF-8" in message
    assert "0xe9" in message


def test_utf16_export_is_not_utf8(tmp_path):
    path = write(tmp_path / "r.csv", (HEAD + "a,b,5\r\n").encode("utf-16"))
    message = input_error(path)
    assert "line 1" in message and "UTF-8" in message


def test_file_ending_inside_a_multibyte_character(tmp_path):
    path = write(tmp_path / "r.csv", HEAD.encode() + b"a,b,5\r\n\xe2\x82")
    assert "UTF-8" in input_error(path)


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 5, 7, 16, 1 << 20])
def test_bad_byte_is_located_whatever_the_read_chunk(tmp_path, chunk):
    # A multi-byte character split across two reads, then a stray byte on the next line.
    data = b"Title\n\xe2\x82\xac\n\xff\n"
    path = write(tmp_path / "r.csv", data)
    with pytest.raises(InputError) as info:
        ingest._check_utf8(path, chunk=chunk)
    message = str(info.value)
    assert "line 3, byte 10" in message, message
    assert "0xff" in message, message


@pytest.mark.parametrize(
    "name, data",
    [
        ("png.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"),
        ("random.csv", bytes(range(256)) * 4),
        ("zip.csv", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb6\x93\xcd\xa7"),
        ("random.tsv", os.urandom(64) + b"\xff"),
    ],
)
def test_binary_file_is_not_a_table(tmp_path, name, data):
    message = input_error(write(tmp_path / name, data))
    assert "UTF-8" in message or "not a readable" in message


@pytest.mark.parametrize("data", [b"PAR1" + bytes(range(200)) + b"PAR1", b"PAR1garbage", b"not parquet at all"])
def test_corrupt_parquet(tmp_path, data):
    message = input_error(write(tmp_path / "r.parquet", data))
    assert "Parquet" in message


def test_truncated_parquet(tmp_path):
    good = tmp_path / "good.parquet"
    pl.DataFrame({"Title": ["a"] * 100, "Review Text": ["b"] * 100, "Rating": [5] * 100}).write_parquet(good)
    path = write(tmp_path / "r.parquet", good.read_bytes()[:-30])
    assert "Parquet" in input_error(path)


@pytest.mark.parametrize(
    "data",
    [HEAD + '"never closed,b,5\r\n', HEAD + "a,b,5,extra,fields\r\n", b"\xef\xbb\xbf", b"\n"],
)
def test_text_that_is_not_a_well_formed_table(tmp_path, data):
    message = input_error(write(tmp_path / "r.csv", data))
    assert re.search(r"not a readable CSV|no rows|not found|not an integer", message), message


def test_a_prose_file_is_not_the_expected_table(tmp_path):
    message = input_error(write(tmp_path / "notes.txt", "Dear diary\ntoday I bought a dress\n"))
    assert "not found" in message and "expected columns" in message


def test_messages_name_the_source_given_to_reviews():
    table = pl.DataFrame({"Title": ["a"], "Review Text": ["b"], "Rating": ["9"]})
    with pytest.raises(InputError, match=r"^upload-17: row 1, column 'Rating': rating 9 is outside 1\.\.5$"):
        ingest.reviews(table, IngestConfig(), source="upload-17")


# Exports as spreadsheets and third-party tools write them (issue 19)

def test_a_tsv_with_a_quote_that_never_closes_reads_it_as_text(tmp_path):
    path = write(tmp_path / "r.tsv", 'Title\tReview Text\tRating\n"Great\tlove the 5" heels\t5\nMeh\tok\t3\n')
    out = load(path)
    assert out["text"].to_list() == ['"Great love the 5" heels', "Meh ok"] and out["label"].to_list() == [4, 2]
    assert "ingest.quote=none" in input_error(path, IngestConfig(quote="double"))  # the setting that reads it


def test_a_latin1_export_reads_with_its_encoding_and_is_named_without_it(tmp_path):
    path = write(tmp_path / "r.csv", "Title,Review Text,Rating\nCaf\u00e9,na\u00efve fit \u00a3,5\n".encode("latin-1"))
    assert load(path, IngestConfig(encoding="latin-1"))["text"].to_list() == ["Caf\u00e9 na\u00efve fit \u00a3"]
    assert load(path, IngestConfig(encoding="cp1252"))["text"].to_list() == ["Caf\u00e9 na\u00efve fit \u00a3"]
    line = input_error(path)
    assert "line 2" in line and "not UTF-8" in line and "ingest.encoding" in line
    utf16 = write(tmp_path / "u.csv", "\ufeffTitle,Review Text,Rating\nOk,fine,4\n".encode("utf-16"))
    assert load(utf16, IngestConfig(encoding="utf-16"))["label"].to_list() == [3]
    odd = write(tmp_path / "odd.csv", "\ufeffTitle,Review Text,Rating\n".encode("utf-16") + b"\x00")  # half a character
    assert "not utf-16" in input_error(odd, IngestConfig(encoding="utf-16"))


@pytest.mark.parametrize("sep", [";", "|", "\t"])
def test_the_separator_is_found_in_the_header(tmp_path, sep):
    path = write(tmp_path / "r.csv", f"Title{sep}Review Text{sep}Rating\nNice, soft{sep}fits{sep}5\n")
    assert load(path)["text"].to_list() == ["Nice, soft fits"]
    assert load(path, IngestConfig(separator=sep))["label"].to_list() == [4]


def test_bad_ingest_settings_are_refused():
    with pytest.raises(ValueError, match="unknown encoding 'latin-9x'"):
        IngestConfig(encoding="latin-9x")
    with pytest.raises(ValueError, match="expected one character"):
        IngestConfig(separator=";;")


@pytest.mark.parametrize("name, data, cfg", [
    ("r.csv", HEAD + "a,b,5\r\n\r\nc,,1\r\n\r\n", IngestConfig()),
    ("r.tsv", 'Title\tReview Text\tRating\n"Great\tlove the 5" heels\t5\nMeh\tok\t3\n', IngestConfig()),
    ("r.csv", "Title,Review Text,Rating\nCaf\u00e9,na\u00efve,5\n".encode("latin-1"), IngestConfig(encoding="latin-1")),
    ("r.csv", HEAD + "a,b,5\r\nc,d,4.5\r\n", IngestConfig()),
    ("r.csv", HEAD + "a,b,5\r\nc,d,0\r\n", IngestConfig()),
    ("r.csv", "Title,Rating\r\n", IngestConfig()),
])
def test_whole_tables_read_as_the_stage_reads_files(tmp_path, name, data, cfg):
    """read_table + reviews (what prediction and the benchmarks call) against load (the stage):
    the same rows, or the same message."""
    path = write(tmp_path / name, data)
    try:
        whole = ingest.reviews(ingest.read_table(path, cfg), cfg, source=str(path))
    except InputError as e:
        assert input_error(path, cfg) == str(e)
    else:
        assert load(path, cfg).equals(whole)
