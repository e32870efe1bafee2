"""Predictions: the training preprocessing, ratings on the user's scale, files in and out, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from helpers import ROOT, SAMPLE, write_reviews
from model_fixtures import make_model
from reviewlstm import predict as lib
from reviewlstm import text
from reviewlstm.encode import encode_tokens
from reviewlstm.errors import InputError
from reviewlstm.registry import write_bundle
from reviewlstm.inference import predict_proba


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def regressor(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("models"), "reg", head="regress")


def load(t):
    return lib.load(t.model["path"], t.vocab["path"], t.prep)


def test_same_ids_as_the_pipeline_stages(trained):
    """clean -> tokenize -> encode_tokens with the model's vocabulary and max_len, nothing else."""
    p = load(trained)
    texts = ["Love it!! Absolutely wonderful - silky", "", "Dress runs small, esp. where the zipper is 123"]
    tokens = text.tokenize(text.clean(pl.Series(texts), trained.prep.clean).to_list(), trained.prep.tokenize)
    ids, lengths = encode_tokens(tokens, p.index, trained.prep.max_len)
    got_ids, got_lengths = p.encode(texts)
    assert np.array_equal(got_ids, ids) and np.array_equal(got_lengths, lengths)
    assert got_ids.shape == (3, trained.prep.max_len)
    assert got_ids[0, 0] != 1  # "love" is in the vocabulary, not UNK


def test_classifier_ratings_are_the_most_probable_class_plus_label_min(trained):
    p = load(trained)
    texts = [f"{t} {r}" for t, r, _ in SAMPLE]
    pred = p.predict(texts)
    ids, lengths = p.encode(texts)
    probs = predict_proba(p.model, ids, lengths)
    assert np.allclose(pred.probabilities, probs, atol=1e-6)
    assert np.array_equal(pred.ratings, probs.argmax(1) + 1)
    assert np.allclose(pred.expected, probs @ np.arange(5) + 1)
    assert set(pred.ratings.tolist()) <= {1, 2, 3, 4, 5}


def test_batching_does_not_change_a_prediction(trained):
    p = load(trained)
    texts = [f"{t} {r}" for t, r, _ in SAMPLE] * 3
    one = p.scores(texts, batch_size=len(texts))
    many = p.scores(texts, batch_size=7)
    assert np.allclose(one, many, atol=1e-6)
    assert p.scores([], 5).shape == (0, 5)


def test_regression_rounds_half_up_and_clips_to_the_scale():
    pred = lib.to_ratings(np.array([-1.3, 0.49, 0.5, 2.5, 3.7, 9.0]), True, 5, 1)
    assert pred.ratings.tolist() == [1, 1, 2, 4, 5, 5]
    assert pred.probabilities is None
    assert pred.expected.tolist() == [1.0, 1.49, 1.5, 3.5, 4.7, 5.0]
    assert lib.to_ratings(np.array([[0.1, 0.2, 0.7]]), False, 3, 0).ratings.tolist() == [2]


def test_regressor_predicts_ratings_on_the_scale(regressor):
    pred = load(regressor).predict(["Love it", "terrible"])
    assert pred.probabilities is None and set(pred.ratings.tolist()) <= {1, 2, 3, 4, 5}


def test_bundle_loads_like_the_stage_outputs(trained, tmp_path):
    bundle = write_bundle(tmp_path, "m1", Path(trained.model["path"]), Path(trained.vocab["path"]), trained.prep)
    assert sorted(p.name for p in bundle.iterdir()) == ["model.json", "model.onnx", "model.pt", "preprocess.json", "vocab"]
    texts = ["Love this dress", "cheap material"]
    assert np.allclose(lib.load_bundle(bundle).scores(texts), load(trained).scores(texts), rtol=0, atol=1e-5)


def test_vocabulary_of_another_run_is_refused(trained, tmp_path):
    other = make_model(tmp_path, "other", min_count=4, epochs=0)
    with pytest.raises(InputError, match="vocabulary digest .* does not match"):
        lib.load(trained.model["path"], other.vocab["path"], trained.prep)


def test_missing_model_file_names_it(trained, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained.model["path"], model_dir)
    (model_dir / "model.pt").unlink()
    with pytest.raises(InputError, match="model.pt"):
        lib.load(model_dir, trained.vocab["path"], trained.prep)
    (model_dir / "model.json").unlink()
    with pytest.raises(InputError, match="model.json: no such file"):
        lib.load(model_dir, trained.vocab["path"], trained.prep)


def test_table_gets_rating_columns_and_file_round_trips(trained, tmp_path):
    p = load(trained)
    source = write_reviews(tmp_path / "in.csv", SAMPLE)
    for suffix in (".csv", ".tsv", ".parquet"):
        out = tmp_path / f"out{suffix}"
        summary = lib.score_file(p, source, out, ["Title", "Review Text"])
        assert summary["rows"] == len(SAMPLE) and sum(summary["ratings"].values()) == len(SAMPLE)
        table = pl.read_parquet(out) if suffix == ".parquet" else pl.read_csv(out, separator="\t" if suffix == ".tsv" else ",")
        assert table.columns[:6] == ["", "Clothing ID", "Age", "Title", "Review Text", "Rating"]
        assert {"predicted_rating", "expected_rating", "p_1", "p_5"} <= set(table.columns)
        texts = [f"{t} {r}" for t, r, _ in SAMPLE]
        assert table["predicted_rating"].to_list() == p.predict(texts).ratings.tolist()
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_file_without_the_text_column_writes_nothing(trained, tmp_path):
    source = write_reviews(tmp_path / "in.csv", SAMPLE, header=["", "Clothing ID", "Age", "Title", "Body", "Rating"])
    out = tmp_path / "out.csv"
    with pytest.raises(InputError, match="column 'Review Text' not found"):
        lib.score_file(load(trained), source, out, ["Title", "Review Text"])
    assert not out.exists() and list(tmp_path.iterdir()) == [source]
    with pytest.raises(InputError, match="expected .csv, .tsv or .parquet"):
        lib.score_file(load(trained), source, tmp_path / "out.xlsx", ["Title"])


# --- the command, against a registry made in a temporary data directory ----------------------


def cli(args: list[str]) -> subprocess.CompletedProcess:
    """`reviewlstm predict ARGS`, in this process (fast): exit status, stdout and stderr."""
    from flows.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["predict", *args])
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def test_command_as_a_process_prints_one_line_errors(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "predict", "text", "--data-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "no champion yet" in one_line_error(proc)
    assert "Traceback" not in proc.stderr


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def champion_dir(trained, tmp_path_factory):
    from reviewlstm import registry

    data_dir = tmp_path_factory.mktemp("data")
    cand = registry.Candidate(metrics={"fixed": {"rmse_expected": 1.0}}, models={"fixed": trained.model},
                              vocab=trained.vocab, prep=trained.prep, valid_texts=trained.valid_texts,
                              valid_labels=trained.valid_labels, select_by="rmse_expected",
                              run={"id": "test", "name": "test"}, sources={})
    assert registry.promote(data_dir, cand)["promoted"]
    return data_dir


def test_command_prints_ratings_and_json(champion_dir, trained):
    proc = cli(["Love this dress", "Cheap fabric", "--data-dir", str(champion_dir)])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == ["Love this dress", "Cheap fabric"]
    expected = load(trained).predict(["Love this dress", "Cheap fabric"]).ratings.tolist()
    assert [int(line.split()[0]) for line in lines] == expected
    out = json.loads(cli(["Love this dress", "--json", "--data-dir", str(champion_dir)]).stdout)
    assert out["model"].startswith("champion ")
    row = out["predictions"][0]
    assert row["rating"] == expected[0] and abs(sum(row["probabilities"].values()) - 1) < 1e-3
    assert set(row["probabilities"]) == {"1", "2", "3", "4", "5"}


def test_command_bad_input_is_one_line_and_leaves_the_registry_alone(champion_dir, tmp_path):
    before = (champion_dir / "registry.json").read_bytes()
    assert "no champion yet" in one_line_error(cli(["text", "--data-dir", str(tmp_path / "empty")]))
    assert "valid: bilstm" in one_line_error(cli(["text", "--model", "lstm9", "--data-dir", str(champion_dir)]))
    assert "fixed, variable, glove, regression" in one_line_error(
        cli(["text", "--model", "lstm9", "--profile", "article", "--data-dir", str(champion_dir)]))
    bad = write_reviews(tmp_path / "bad.csv", SAMPLE, header=["", "Clothing ID", "Age", "Title", "Body", "Rating"])
    line = one_line_error(cli(["--input", str(bad), "--output", str(tmp_path / "o.csv"), "--data-dir", str(champion_dir)]))
    assert str(bad) in line and "'Review Text' not found" in line and not (tmp_path / "o.csv").exists()
    assert "expected review texts or --input" in one_line_error(cli(["--data-dir", str(champion_dir)]))
    # a damaged champion: its model file gone
    bundle = next((champion_dir / "champions").iterdir())
    saved = (bundle / "model.pt").read_bytes()
    (bundle / "model.pt").unlink()
    try:
        assert "model.pt" in one_line_error(cli(["text", "--data-dir", str(champion_dir)]))
    finally:
        (bundle / "model.pt").write_bytes(saved)
    # a champion whose vocabulary was swapped
    vocab = bundle / "vocab" / "vocab.parquet"
    saved = vocab.read_bytes()
    pl.read_parquet(vocab).head(5).write_parquet(vocab)
    try:
        assert "vocab.parquet: changed since it was promoted" in one_line_error(cli(["text", "--data-dir", str(champion_dir)]))
    finally:
        vocab.write_bytes(saved)
    assert (champion_dir / "registry.json").read_bytes() == before


def test_command_scores_a_file(champion_dir, tmp_path):
    source = write_reviews(tmp_path / "in.csv", SAMPLE)
    out = tmp_path / "rated.parquet"
    proc = cli(["--input", str(source), "--output", str(out), "--data-dir", str(champion_dir), "--json"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows"] == len(SAMPLE)
    assert len(pl.read_parquet(out)) == len(SAMPLE)


def test_threads_are_restored(trained):
    before = torch.get_num_threads()
    load(trained).scores(["a b c"] * 5, batch_size=2)
    assert torch.get_num_threads() == before


def test_a_file_where_a_folder_belongs_and_a_binary_config_are_named(champion_dir, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"\x89PNG\x00\xff")
    assert "a-file: a file, not a folder" in one_line_error(cli(["text", "--data-dir", str(a_file)]))
    source = write_reviews(tmp_path / "in.csv", SAMPLE)
    line = one_line_error(cli(["--input", str(source), "--output", str(a_file / "out.csv"), "--data-dir", str(champion_dir)]))
    assert f"{a_file} is a file, not a folder" in line
    assert f"{a_file}: byte 0 is not UTF-8" in one_line_error(cli(["text", "--config", str(a_file), "--data-dir", str(champion_dir)]))


def test_a_full_disk_while_writing_the_output_names_the_output(champion_dir, tmp_path, monkeypatch):
    @contextlib.contextmanager
    def full(path, mode="wb"):
        raise OSError(28, "No space left on device")  # as a write deep in a library raises it: no file name
        yield

    monkeypatch.setattr(lib, "atomic_file", full)
    out = tmp_path / "rated.csv"
    proc = cli(["--input", str(write_reviews(tmp_path / "in.csv", SAMPLE)), "--output", str(out),
                "--data-dir", str(champion_dir)])
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: {out}: no space left on device"), proc.stderr
    assert not out.exists()
