"""The command's one-line errors for the model half: GloVe files and variant names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import ROOT


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    return lines[0]


def _glove_file(path, rows):
    path.write_text("".join(rows))
    return path


@pytest.mark.parametrize("case, content, expect", [
    ("missing", None, "no such file"),
    ("empty", [], "empty"),
    ("ragged", ["love 0.1 0.2 0.3\n", "dress 0.1 0.2\n"], "line 2"),
    ("wrong dimension", ["love 0.1 0.2 0.3\n", "dress 0.4 0.5 0.6\n"], "embedding_dim is 50"),
])
def test_bad_glove_file_is_one_line_and_exit_2(prefect_server, sample_csv, tmp_path, case, content, expect):
    path = tmp_path / "vectors.txt"
    if content is not None:
        _glove_file(path, content)
    data_dir = tmp_path / "data"
    proc = cli(["run", "--raw", str(sample_csv), "--data-dir", str(data_dir), "--until", "glove",
                "--set", f"glove.path={path}"], prefect_server)
    line = one_line_error(proc)
    assert str(path) in line or "GloVe" in line, line
    assert expect in line, line
    assert not any((data_dir / "07_glove").glob("*")) if (data_dir / "07_glove").exists() else True


def test_unknown_variant_lists_the_valid_names(prefect_server, sample_csv, tmp_path):
    line = one_line_error(cli(["run", "--raw", str(sample_csv), "--variant", "lstm9"], prefect_server))
    assert "valid: bilstm" in line  # the default profile, best
    article = ["--profile", "article"]
    line = one_line_error(cli(["run", "--raw", str(sample_csv), *article, "--variant", "lstm9"], prefect_server))
    assert "fixed, variable, glove, regression" in line
    line = one_line_error(cli(["run", "--raw", str(sample_csv), *article, "--set", "variants.lstm9.hidden_dim=3"],
                              prefect_server))
    assert "fixed, variable, glove, regression" in line
