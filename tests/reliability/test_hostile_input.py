"""Hostile and odd input files: each gives a correct result or one clear InputError, never a
traceback; large files are read in bounded memory and time."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability_helpers import ROOT
from reviewlstm import encode as enc
from reviewlstm import ingest, text, vocab
from reviewlstm.config import CleanConfig, EncodeConfig, IngestConfig, TokenizeConfig
from reviewlstm.errors import InputError

CFG = IngestConfig()


def outcome(path: Path) -> pl.DataFrame | str:
    """The reviews, or the InputError's message; any other exception fails the test."""
    try:
        out = ingest.reviews(ingest.read_table(path), CFG, source=str(path))
    except InputError as e:
        message = str(e)
        assert "\n" not in message and "\r" not in message, repr(message)
        assert str(path) in message, message
        return message
    assert out.columns == ["text", "label"]
    assert out.schema == {"text": pl.String, "label": pl.Int8}
    assert len(out) >= 1
    assert out["label"].min() >= 0 and out["label"].max() <= 4
    assert out["text"].null_count() == 0
    return out


# --- property-based: any bytes, any table-like text ------------------------------------------

SUFFIXES = st.sampled_from([".csv", ".tsv", ".txt", ".tab"])
HEADER_NAMES = st.sampled_from(["Title", "Review Text", "Rating", "", "Rating", "Title", "x", "\ufeffTitle", "Raiting"])
FIELD = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "5", "4.0", " 5 ", "0", "6", "-1", "nan", "inf", "1e0", "", "NA", "five"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.text(alphabet=',\t"\r\n \\\x00ab', max_size=8),
)
LINE_END = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def table_text(draw) -> str:
    """Rows of fields joined by a separator and line ends, sometimes quoted, often malformed."""
    sep = draw(st.sampled_from([",", "\t", ";"]))
    header = draw(st.lists(HEADER_NAMES, min_size=1, max_size=5))
    rows = draw(st.lists(st.lists(FIELD, min_size=0, max_size=6), min_size=0, max_size=6))
    quote = draw(st.sampled_from(["never", "always", "csv"]))
    out = io.StringIO()
    for row in [header, *rows]:
        if quote == "csv":
            w = csv.writer(out, delimiter=sep, lineterminator=draw(LINE_END))
            w.writerow(row)
        else:
            cells = [f'"{c}"' if quote == "always" else c for c in row]
            out.write(sep.join(cells) + draw(LINE_END))
    return out.getvalue()[: draw(st.integers(min_value=0, max_value=10_000))]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(table_text(), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))), suffix=SUFFIXES,
       raw_bytes=st.booleans())
def test_any_table_text_gives_reviews_or_one_input_error(tmp_path_factory, content, suffix, raw_bytes):
    path = tmp_path_factory.mktemp("prop") / f"reviews{suffix}"
    path.write_bytes(content.encode("latin-1", errors="replace") if raw_bytes else content.encode("utf-8"))
    outcome(path)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
                            st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60),
                            st.integers(1, 5), st.sampled_from(["{}", "{}.0", " {} ", "{}.00"])),
                  min_size=1, max_size=20),
    tsv=st.booleans(),
    line_end=st.sampled_from(["\n", "\r\n"]),
)
def test_well_formed_files_are_read_exactly(tmp_path_factory, rows, tsv, line_end):
    """A file a CSV writer produced (any text, quoted as needed): exactly its rows come back."""
    # A row whose fields are all empty reads as a blank line; the label keeps that from happening.
    buf = io.StringIO()
    # With "\n" line ends, QUOTE_MINIMAL would leave a lone "\r" unquoted: a file no reader agrees on.
    w = csv.writer(buf, delimiter="\t" if tsv else ",", lineterminator=line_end,
                   quoting=csv.QUOTE_ALL if line_end == "\n" else csv.QUOTE_MINIMAL)
    w.writerow(["Title", "Review Text", "Rating"])
    for title, body, rating, form in rows:
        w.writerow([title, body, form.format(rating)])
    path = tmp_path_factory.mktemp("exact") / ("reviews.tsv" if tsv else "reviews.csv")
    path.write_bytes(buf.getvalue().encode("utf-8"))
    out = outcome(path)
    if isinstance(out, str):  # a well-formed file is never refused
        pytest.fail(out)
    assert out["text"].to_list() == [f"{t} {b}" for t, b, _, _ in rows]
    assert out["label"].to_list() == [r - 1 for _, _, r, _ in rows]


# --- one case each ---------------------------------------------------------------------------


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_mixed_line_endings(tmp_path):
    path = write(tmp_path / "mixed.csv",
                 'Title,Review Text,Rating\r\nA,lf next,5\nB,"quoted\r\nbreak",1\r\nC,lone\rcr inside,3\nD,last,2')
    out = outcome(path)
    assert out.to_dicts() == [
        {"text": "A lf next", "label": 4},
        {"text": "B quoted\r\nbreak", "label": 0},
        {"text": "C lone\rcr inside", "label": 2},
        {"text": "D last", "label": 1},
    ]


def test_old_mac_line_endings_are_a_clear_error(tmp_path):
    message = outcome(write(tmp_path / "mac.csv", "Title,Review Text,Rating\rA,ok,5\rB,ok,4\r"))
    assert "lone CR" in message and "LF or CRLF" in message


def test_float_labels_like_4_0_are_accepted_as_integers(tmp_path):
    out = outcome(write(tmp_path / "floats.csv", "Title,Review Text,Rating\nA,x,4.0\nB,y, 2.00 \nC,z,5\n"))
    assert out["label"].to_list() == [3, 1, 4]
    assert "'4.5' is not an integer" in outcome(write(tmp_path / "half.csv", "Title,Review Text,Rating\nA,x,4.5\n"))
    assert "'nan' is not an integer" in outcome(write(tmp_path / "nan.csv", "Title,Review Text,Rating\nA,x,nan\n"))


@pytest.mark.parametrize("header,name", [("Title,Review Text,Rating,Rating", "Rating"),
                                         ("Title,Title,Review Text,Rating", "Title")])
def test_duplicate_column_names_are_an_error_naming_the_column(tmp_path, header, name):
    row = ",".join(["a"] * (header.count(",")) + ["4"])
    message = outcome(write(tmp_path / "dup.csv", f"{header}\n{row}\n"))
    assert f"column {name!r} appears more than once" in message


def test_duplicates_of_unused_columns_are_fine(tmp_path):
    out = outcome(write(tmp_path / "dup.csv", "x,x,Title,Review Text,Rating\n1,2,a,b,4\n"))
    assert out.to_dicts() == [{"text": "a b", "label": 3}]


def test_a_directory_given_as_the_file(tmp_path):
    folder = tmp_path / "reviews.csv"
    folder.mkdir()
    assert "is a directory" in outcome(folder)


@pytest.mark.parametrize("frame,words", [
    (lambda: pl.DataFrame({"Title": [["a"]], "Review Text": ["b"], "Rating": [4]}), "List"),
    (lambda: pl.DataFrame({"Title": [{"x": 1}], "Review Text": ["b"], "Rating": [4]}), "Struct"),
    (lambda: pl.DataFrame({"Title": [b"\xff"], "Review Text": ["b"], "Rating": [4]}), "not UTF-8"),
    (lambda: pl.DataFrame({"Title": ["a"], "Review Text": ["b"], "Rating": [[4]]}), "List"),
])
def test_parquet_columns_of_odd_types(tmp_path, frame, words):
    path = tmp_path / "odd.parquet"
    frame().write_parquet(path)
    assert words in outcome(path)


def test_a_10_mb_review_goes_through_every_preprocessing_step(tmp_path):
    big = ("Lovely, soft fabric! " * 500_000)[:10_000_000]
    path = write(tmp_path / "big.csv", f'Title,Review Text,Rating\nHuge,"{big}",5\nSmall,fits well,4\n')
    out = outcome(path)
    assert out["text"].str.len_chars().to_list() == [len("Huge ") + len(big), len("Small fits well")]
    cleaned = text.clean(out["text"], CleanConfig())
    tokens = text.tokenize(cleaned.to_list(), TokenizeConfig(drop_whitespace=True))
    words = "".join(c if c.isalpha() else " " for c in big.lower()).split()
    assert tokens[0] == ["huge", *words] and tokens[1] == ["small", "fits", "well"]
    counts = vocab.count_tokens(tokens)
    table = pl.DataFrame({"tokens": pl.Series(tokens, dtype=pl.List(pl.Utf8)), "label": out["label"]})
    encoded = enc.encode(table, vocab.vocabulary(counts, 1), EncodeConfig(max_len=70, valid_fraction=0.5))
    assert encoded["length"].to_list() == [70, 3]


# --- a million rows, in a subprocess: bounded memory and time -------------------------------

INGEST_1M = r"""
import json, resource, sys, time
from reviewlstm import ingest
from reviewlstm.config import IngestConfig


def peak_kb():
    # VmHWM: Linux carries the parent's resident size over an exec into ru_maxrss (a big pytest)
    try:
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


started = time.perf_counter()
out = ingest.reviews(ingest.read_table(sys.argv[1]), IngestConfig(), source=sys.argv[1])
out.write_parquet(sys.argv[2], statistics=False)
print(json.dumps({"rows": len(out), "labels": out["label"].value_counts().sort("label")["count"].to_list(),
                  "last": out.row(-1), "seconds": time.perf_counter() - started,
                  "peak_mb": peak_kb() / 1024}))
"""

N = 1_000_000
PEAK_MB = 1500


def test_a_million_rows_in_bounded_memory(tmp_path):
    path = tmp_path / "million.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        f.write(",Clothing ID,Age,Title,Review Text,Rating\r\n")
        block = []
        for i in range(N):
            block.append(f'{i},{1000 + i % 977},{20 + i % 50},Nice dress {i % 13},"Fits well, soft {i % 101}",{1 + i % 5}\r\n')
            if len(block) == 20_000:
                f.write("".join(block))
                block = []
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", INGEST_1M, str(path), str(tmp_path / "out.parquet")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    print(f"1M rows ({path.stat().st_size / 1e6:.0f} MB): {result['seconds']:.1f} s, peak RSS {result['peak_mb']:.0f} MB")
    assert result["rows"] == N and result["labels"] == [N // 5] * 5
    assert result["last"] == [f"Nice dress {(N - 1) % 13} Fits well, soft {(N - 1) % 101}", (N - 1) % 5]
    assert result["peak_mb"] < PEAK_MB, result
    assert wall < 60, wall
