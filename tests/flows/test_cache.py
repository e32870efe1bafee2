"""Cache behaviour through real Prefect runs against a real server.

Exactly the stages whose inputs, settings or code changed run again; a damaged output is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT
from flows.pipeline import pipeline
from reviewlstm.config import PipelineConfig

PRE = ["ingest", "clean", "tokenize", "prune", "encode"]


def statuses(summary: dict) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in summary["stages"]}


def ran(summary: dict) -> list[str]:
    return [s for s, status in statuses(summary).items() if status == "ran"]


@pytest.fixture
def run(prefect_server, sample_csv, tmp_path):
    data_dir = str(tmp_path / "data")

    def _run(cfg: PipelineConfig | None = None, raw: Path = sample_csv, until: str = "encode") -> dict:
        return pipeline(raw=str(raw), data_dir=data_dir, config=cfg or PipelineConfig(), until=until)

    _run.data_dir, _run.raw = Path(data_dir), sample_csv
    return _run


def test_second_run_with_nothing_changed_runs_no_stage(run):
    assert ran(run()) == PRE
    assert ran(run()) == []


def test_output_folders_are_the_cache_under_another_prefect_result_store(run, tmp_path):
    """Prefect's records only index the folders: with an empty result store every stage is
    found in its folder and nothing runs; a forced stage (`reviewlstm stage`) still computes."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    assert ran(run()) == PRE
    with temporary_settings(updates={PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(tmp_path / "other-store")}):
        assert ran(run()) == []
        forced = pipeline(raw=str(run.raw), data_dir=str(run.data_dir), config=PipelineConfig(), until="clean",
                          force=["clean"])
    assert ran(forced) == ["clean"]


def test_min_count_change_reruns_prune_and_encode_only(run):
    run()
    cfg = PipelineConfig()
    cfg.prune.min_count = 4  # the sample repeats each review 3 times: words seen 3 times go
    assert ran(run(cfg)) == ["prune", "encode"]
    assert ran(run()) == []  # the first settings' outputs are still there, side by side


def edit_one_byte(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1
    path.write_bytes(data.replace(old, new, 1))


def test_one_byte_edit_of_raw_file_reruns_everything(run, sample_csv):
    run()
    edit_one_byte(sample_csv, b"wonderful", b"vonderful")
    assert ran(run()) == PRE


def test_edit_that_cleaning_erases_stops_at_clean(run, sample_csv):
    """Outputs are content-addressed: identical cleaned text leaves tokenize onwards cached."""
    run()
    edit_one_byte(sample_csv, b"wonderful", b"Wonderful")
    assert ran(run()) == ["ingest", "clean"]


def test_deleted_or_edited_output_is_rebuilt_not_trusted(run):
    first = run()
    tokens = Path(next(s["output"] for s in first["stages"] if s["stage"] == "tokenize"))
    shutil.rmtree(tokens)
    again = run()
    # rebuilt with the same content, so what follows it stays cached
    assert statuses(again) == {"ingest": "cached", "clean": "cached", "tokenize": "ran", "prune": "cached", "encode": "cached"}
    assert (tokens / "tokens.parquet").is_file()

    encoded = tokens.parent.parent / "06_encoded"
    parquet = next(encoded.glob("*/encoded.parquet"))
    parquet.write_bytes(parquet.read_bytes()[:-10])  # truncated
    assert ran(run()) == ["encode"]


def _cli(args: list[str], env: dict, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "flows.cli", *args, "--json"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_changed_library_code_reruns_that_stage_and_what_follows(prefect_server, sample_csv, tmp_path):
    """A copy of the code base: editing reviewlstm/vocab.py reruns prune and encode only."""
    code = tmp_path / "code"
    for pkg in ("reviewlstm", "tasks", "flows"):
        shutil.copytree(ROOT / pkg, code / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**prefect_server, "PYTHONPATH": str(code)}
    args = ["run", "--raw", str(sample_csv), "--data-dir", str(tmp_path / "data"), "--until", "encode"]
    assert ran(_cli(args, env, code)) == PRE

    vocab = code / "reviewlstm" / "vocab.py"
    source = vocab.read_text()
    vocab.write_text(source + "\n# a comment changes nothing\n")
    assert ran(_cli(args, env, code)) == []

    # Same vocabulary from new code: prune reruns, encode sees identical content and stays cached.
    same = source.replace('group_by("tokens", maintain_order=True).len()', 'group_by("tokens", maintain_order=True).agg(pl.len())')
    assert same != source  # the edit took
    vocab.write_text(same)
    assert ran(_cli(args, env, code)) == ["prune"]

    # A rule change that alters the vocabulary: prune and everything after it rerun.
    assert "c >= min_count" in source
    vocab.write_text(source.replace("c >= min_count", "c >= 2 * min_count"))
    assert ran(_cli(args, env, code)) == ["prune", "encode"]


def test_status_lists_fresh_and_stale_without_running(run, prefect_server, sample_csv):
    run()
    args = ["status", "--raw", str(sample_csv), "--data-dir", str(run.data_dir), "--profile", "article",
            "--set", "prune.min_count=4"]
    rows = {r["stage"]: r["status"] for r in _cli(args, prefect_server, ROOT)["stages"]}
    assert rows.pop("ingest") == rows.pop("clean") == rows.pop("tokenize") == "fresh"
    assert set(rows) >= {"prune", "encode", "glove", "train[fixed]", "evaluate"}
    assert set(rows.values()) == {"stale"}  # prune's settings changed; the models were never trained
    assert ran(run()) == []  # status ran nothing and changed nothing


def tiny_models() -> PipelineConfig:
    from reviewlstm.config import ModelConfig, Round

    small = dict(embedding_dim=8, hidden_dim=4, batch_size=16, rounds=[Round(epochs=1, lr=0.01)])
    return PipelineConfig(variants={"a": ModelConfig(**small), "b": ModelConfig(length="variable", **small)})


def test_one_variant_setting_reruns_only_its_training_and_evaluation(run):
    cfg = tiny_models()
    first = run(cfg, until="evaluate")
    assert ran(first) == [*PRE, "train[a]", "train[b]", "evaluate"]
    assert set(first["metrics"]) == {"a", "b"}
    cfg.variants["b"].hidden_dim = 6
    assert ran(run(cfg, until="evaluate")) == ["train[b]", "evaluate"]
    assert ran(run(cfg, until="evaluate")) == []
