"""Bad input through the real command, as a user runs it, against a real Prefect server.

Each case: exit status 2, exactly one line on stderr ("error: ..." naming the file), no
traceback anywhere, and nothing left in the ingest layer, not even a hidden temporary folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import HEADER, ROOT, write_reviews
from reviewlstm.storage import LAYERS

HEAD = "Title,Review Text,Rating\r\n"


def _write(data: bytes | str):
    def make(path: Path) -> Path:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    return make


def _missing(path: Path) -> Path:
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    (path / "inside.csv").write_text(HEAD + "a,b,5\r\n")
    return path


def _good_rows_then(rating: str):
    def make(path: Path) -> Path:
        return write_reviews(path, [("Nice", "fits well", 5), ("Meh", "runs small", 3), ("Bad", "tore", rating)])

    return make


# (case id, file name, how to make it, words the one line must contain besides the file name)
CASES = [
    ("missing file", "missing.csv", _missing, ["no such file"]),
    ("directory", "reviews.csv", _directory, ["directory"]),
    ("empty file", "empty.csv", _write(b""), ["empty"]),
    ("header only", "header.csv", _write(",".join(HEADER) + "\r\n"), ["no rows"]),
    ("no text column", "notext.csv", _write("Title,Rating\r\nNice,5\r\n"), ["'Review Text'", "not found"]),
    ("no label column", "nolabel.csv", _write("Title,Review Text,Stars\r\nNice,fits,5\r\n"), ["'Rating'", "not found"]),
    ("label not an integer", "five.csv", _good_rows_then("five"), ["row 3", "'Rating'", "'five'", "not an integer"]),
    ("label outside 1..5", "six.csv", _good_rows_then("6"), ["row 3", "'Rating'", "outside 1..5"]),
    ("not UTF-8", "latin1.csv", _write(HEAD.encode() + b"Caf\xe9,ok,5\r\n"), ["line 2", "not UTF-8"]),
    ("not a table", "image.csv", _write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))), ["UTF-8"]),
    ("corrupt parquet", "reviews.parquet", _write(b"PAR1" + bytes(range(100)) + b"PAR1"), ["Parquet"]),
]


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single error line; fails with everything the command printed otherwise."""
    shown = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    assert proc.returncode == 2, shown
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    assert lines[0].startswith("error: "), shown
    return lines[0]


@pytest.mark.parametrize("case, name, make, words", CASES, ids=[c[0] for c in CASES])
def test_bad_raw_file_stops_with_one_line_and_no_output(prefect_server, tmp_path, case, name, make, words):
    raw = make(tmp_path / name)
    data_dir = tmp_path / "data"
    proc = cli(prefect_server, "run", "--raw", str(raw), "--data-dir", str(data_dir), "--until", "ingest")
    line = one_error_line(proc)
    assert str(raw) in line, line
    for word in words:
        assert word in line, line
    ingested = data_dir / LAYERS["ingest"]
    assert not ingested.exists() or sorted(p.name for p in ingested.iterdir()) == []


@pytest.mark.parametrize(
    "args, words",
    [
        (["--set", "prune.min_cnt=3"], ["prune.min_cnt", "no setting"]),
        (["--set", "nosection.x=1"], ["nosection.x", "no setting"]),
        (["--set", "prune.min_count=0"], ["prune.min_count", "greater than or equal to 1"]),
        (["--set", "prune.min_count"], ["KEY=VALUE"]),
        (["--profile", "nope"], ["'nope'", "article", "quick"]),
    ],
    ids=["unknown key", "unknown section", "invalid value", "no value", "unknown profile"],
)
def test_bad_settings_stop_with_one_line(prefect_server, sample_csv, tmp_path, args, words):
    data_dir = tmp_path / "data"
    proc = cli(prefect_server, "run", "--raw", str(sample_csv), "--data-dir", str(data_dir), "--until", "ingest", *args)
    line = one_error_line(proc)
    for word in words:
        assert word in line, line
    assert not data_dir.exists() or not any(data_dir.rglob("*"))


@pytest.mark.parametrize(
    "args, words",
    [
        (["--set", "encode.max_len=100000"], ["variants.fixed", "GiB", "encode.max_len 100000", "more than this machine's"]),
        (["--set", "variants.fixed.rounds=[]"], ["variants.fixed.rounds", "no epochs to train"]),
        (["--set", "variants.variable.rounds=[{\"epochs\": 0, \"lr\": 0.1}]"], ["variants.variable.rounds", "no epochs"]),
    ],
    ids=["training larger than the machine", "no rounds", "zero epochs"],
)
def test_settings_that_cannot_train_stop_before_anything_runs(prefect_server, sample_csv, tmp_path, args, words):
    data_dir = tmp_path / "data"
    proc = cli(prefect_server, "run", "--profile", "quick", "--raw", str(sample_csv), "--data-dir", str(data_dir), *args)
    line = one_error_line(proc)
    for word in words:
        assert word in line, line
    assert not data_dir.exists() or not any(data_dir.rglob("*"))


def test_the_run_forms_profile_choice_is_every_profile():
    import typing

    from reviewlstm.config import PROFILES, ProfileName

    assert sorted(typing.get_args(ProfileName)) == sorted(PROFILES)
