"""The model kinds beyond the LSTMs: the baseline, ensembles and language-model pretraining,
through the real pipeline on a small data set (a real Prefect server), then promoted and used by
`predict` like any variant."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from helpers import REAL_DATA, ROOT, SAMPLE, needs_real_data, write_reviews
from reviewlstm import registry
from reviewlstm.config import EnsembleConfig, PipelineConfig
from reviewlstm.errors import InputError
from reviewlstm.predict import EnsemblePredictor, Preprocess, load, load_bundle
from reviewlstm.tuning import tuning_split

pytestmark = pytest.mark.slow

TINY = {"kind": "lstm", "embedding_dim": 8, "hidden_dim": 4, "batch_size": 16, "micro_batch": None,
        "rounds": [{"epochs": 1, "lr": 0.01}]}


def config(**variants) -> PipelineConfig:
    return PipelineConfig.model_validate({
        "pretrain": {"embedding_dim": 8, "hidden_dim": 4, "init": "learned", "epochs": 1, "batch_size": 16},
        "variants": variants or {
            "tiny": TINY,
            "baseline": {"kind": "baseline"},
            "ens": {"kind": "ensemble", "members": {"tiny": 1, "baseline": 3}, "class_weights": [1, 2, 1, 1, 0.5]},
        },
    })


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(prefect_server, tmp_path_factory):
    from flows.pipeline import pipeline

    tmp = tmp_path_factory.mktemp("kinds")
    raw = write_reviews(tmp / "reviews.csv", SAMPLE * 3)
    data_dir = tmp / "data"
    summary = pipeline(raw=str(raw), data_dir=str(data_dir), config=config(), promote=False)
    return summary, raw, data_dir


def outputs(summary: dict) -> dict[str, str]:
    return {s["stage"]: s["output"] for s in summary["stages"]}


def test_every_kind_is_trained_and_scored_on_the_same_rows(trained):
    summary, _, _ = trained
    assert set(summary["metrics"]) == {"tiny", "baseline", "ens"}
    valid_rows = summary["figures"]["encode"]["valid_rows"]
    for m in summary["metrics"].values():
        assert sum(map(sum, m["confusion"])) == valid_rows
        assert {"accuracy", "rmse_expected", "mae", "macro_f1"} <= set(m)


def test_baseline_is_saved_as_arrays_and_tables_that_load_without_code(trained, tmp_path):
    summary, _, _ = trained
    folder = outputs(summary)["train[baseline]"]
    names = sorted(p.name for p in __import__("pathlib").Path(folder).iterdir())
    assert names == ["model.json", "record.json", "terms.parquet", "weights.npz"]
    with np.load(f"{folder}/weights.npz", allow_pickle=False) as w:  # raises on any pickled object
        assert w["coef"].dtype == np.float64 and w["coef"].shape[0] == 5
    # a weights file that carries a pickle is refused, and what it carries never runs
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    marker = tmp_path / "ran"
    with open(bad / "weights.npz", "wb") as f:
        np.savez(f, coef=np.array([_Boom(str(marker))], dtype=object), intercept=np.zeros(5))
    with pytest.raises(InputError, match="cannot load the baseline"):
        load(bad, outputs(summary)["prune"], Preprocess())
    assert not marker.exists()


class _Boom:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_ensemble_probabilities_are_the_weighted_mean_of_its_members(trained):
    summary, _, _ = trained
    out = outputs(summary)
    prep = Preprocess.of(config())
    texts = [t + " " + r for t, r, _ in SAMPLE]
    ens = load(out["train[ens]"], out["prune"], prep)
    tiny, base = load(out["train[tiny]"], out["prune"], prep), load(out["train[baseline]"], out["prune"], prep)
    expected = 0.25 * tiny.scores(texts) + 0.75 * base.scores(texts)
    np.testing.assert_allclose(ens.scores(texts), expected, rtol=1e-6, atol=1e-9)
    # the decision rule picks the class of the largest weighted probability; the expected rating is of p
    pred = ens.predict(texts)
    np.testing.assert_array_equal(pred.ratings, (expected * [1, 2, 1, 1, 0.5]).argmax(1) + 1)
    np.testing.assert_allclose(pred.expected, expected @ np.arange(5) + 1, rtol=1e-6)
    # several LSTMs share one encoding of each batch, the baseline scored beside them: still each member's own scores
    again = load(out["train[tiny]"], out["prune"], prep)
    three = EnsemblePredictor(name="three", members={"a": tiny, "b": again, "baseline": base}, prep=prep, num_classes=5,
                              cfg=EnsembleConfig(kind="ensemble", members={"a": 1, "b": 2, "baseline": 1}), source="test")
    np.testing.assert_allclose(three.scores(texts, batch_size=3), 0.75 * tiny.scores(texts) + 0.25 * base.scores(texts),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("variant", ["baseline", "ens"])
def test_promoted_kind_predicts_through_the_command(trained, prefect_server, tmp_path, variant):
    summary, raw, data_dir = trained
    out = outputs(summary)
    reviews = pl.read_parquet(f"{out['ingest']}/reviews.parquet")
    valid = reviews.filter(pl.read_parquet(f"{out['encode']}/encoded.parquet")["split"] == "valid")
    models = {n: {"path": out[f"train[{n}]"], "digest": json.loads(open(f"{out[f'train[{n}]']}/record.json").read())["digest"]}
              for n in ("tiny", "baseline", "ens")}
    metrics = json.loads(open(f"{out['evaluate']}/metrics.json").read())
    metrics[variant]["rmse_expected"] = -1.0  # this one is the best of the run
    here = tmp_path / "data"
    here.mkdir()
    cand = registry.Candidate(metrics=metrics, models=models, vocab={"path": out["prune"], "digest": "-"},
                              prep=Preprocess.of(config()), valid_texts=valid["text"].to_list(),
                              valid_labels=valid["label"].to_numpy(), select_by="rmse_expected",
                              run={"id": "test"}, sources={})
    decision = registry.promote(here, cand)
    assert decision["promoted"] and decision["variant"] == variant
    _, bundle = registry.champion_bundle(here)
    texts = ["Love this dress, fits perfectly", "Cheap fabric, returned it"]
    direct = load(out[f"train[{variant}]"], out["prune"], Preprocess.of(config())).predict(texts)
    from_bundle = load_bundle(bundle).predict(texts)
    np.testing.assert_array_equal(direct.ratings, from_bundle.ratings)
    np.testing.assert_allclose(direct.probabilities, from_bundle.probabilities, rtol=1e-6)
    proc = cli(["predict", *texts, "--data-dir", str(here), "--json"], prefect_server)
    assert proc.returncode == 0, proc.stderr
    ratings = [p["rating"] for p in json.loads(proc.stdout)["predictions"]]
    assert ratings == direct.ratings.tolist()
    source = write_reviews(tmp_path / "new.csv", SAMPLE[:5])
    proc = cli(["predict", "--input", str(source), "--output", str(tmp_path / "rated.csv"), "--data-dir", str(here)],
               prefect_server)
    assert proc.returncode == 0, proc.stderr
    rated = pl.read_csv(tmp_path / "rated.csv")
    assert {"predicted_rating", "expected_rating", "p_1", "p_5"} <= set(rated.columns) and len(rated) == 5


def test_pretraining_is_cached_and_reruns_only_when_the_text_changes(prefect_server, tmp_path):
    from flows.pipeline import pipeline

    raw = write_reviews(tmp_path / "reviews.csv", SAMPLE * 3)
    cfg = config(pre={**TINY, "embeddings": "pretrained", "length": "variable", "bidirectional": True})
    run = lambda c: {s["stage"]: s["status"] for s in  # noqa: E731
                     pipeline(raw=str(raw), data_dir=str(tmp_path / "data"), config=c, until="train")["stages"]}
    assert run(cfg)["pretrain"] == "ran"
    cfg.variants["pre"].dropout = 0.5  # a classifier setting: its training reruns, the language model does not
    again = run(cfg)
    assert again["pretrain"] == "cached" and again["train[pre]"] == "ran"
    write_reviews(raw, SAMPLE * 3 + [("New", "A review the model has never read before", 4)])
    assert run(cfg)["pretrain"] == "ran"


@pytest.mark.parametrize("setting, expect", [
    (["--set", "variants.baseline.hidden_dim=3"], "variants.baseline.hidden_dim"),
    (["--config", "CONFIG"], "variants.baseline.hidden_dim"),
    (["--config", "ENSEMBLE"], "variants.ens.members: no variant 'gone'"),
])
def test_settings_of_another_kind_are_refused_before_anything_runs(prefect_server, sample_csv, tmp_path, setting, expect):
    mixed = {"variants": {"baseline": {"kind": "baseline", "hidden_dim": 3}}}
    missing = {"variants": {"baseline": {"kind": "baseline"}, "ens": {"kind": "ensemble", "members": {"gone": 1}}}}
    for name, cfg in (("CONFIG", mixed), ("ENSEMBLE", missing)):
        (tmp_path / f"{name}.json").write_text(json.dumps(cfg))
    setting = [str(tmp_path / f"{s}.json") if s in ("CONFIG", "ENSEMBLE") else s for s in setting]
    profile = ["--config", str(tmp_path / "base.json")] if setting[0] == "--set" else []
    (tmp_path / "base.json").write_text(json.dumps({"variants": {"baseline": {"kind": "baseline"}}}))
    data_dir = tmp_path / "data"
    proc = cli(["run", "--raw", str(sample_csv), "--data-dir", str(data_dir), *profile, *setting], prefect_server)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], proc.stderr
    assert not data_dir.exists()


def test_tuning_split_never_holds_a_validation_row_or_its_text():
    train = ["a", "b", "c", "dup", "e", "f", "g", "h", "i", "dup"]
    valid = ["dup", "z"]
    fit, tune = tuning_split(train, valid, fraction=0.5, seed=0)
    assert not {train[i] for i in tune} & set(valid)
    assert sorted([*fit, *tune]) == list(range(len(train)))


@needs_real_data
def test_tuning_split_of_the_real_data_is_disjoint_from_its_validation_split():
    from reviewlstm import ingest
    from reviewlstm.config import IngestConfig, profile
    from reviewlstm.encode import split_labels

    reviews = ingest.reviews(ingest.read_table(REAL_DATA), IngestConfig(), "raw")
    enc = profile("best").encode
    valid = split_labels(reviews["label"].to_numpy(), enc.valid_fraction, enc.seed, enc.stratify)
    texts = reviews["text"].to_list()
    train_rows, valid_rows = np.flatnonzero(~valid), np.flatnonzero(valid)
    fit, tune = tuning_split([texts[i] for i in train_rows], [texts[i] for i in valid_rows])
    assert not set(train_rows[tune]) & set(valid_rows)
    assert not {texts[i] for i in train_rows[tune]} & {texts[i] for i in valid_rows}
    assert len(tune) == round(0.2 * len(train_rows))


@pytest.mark.quick_e2e
@pytest.mark.parametrize("variant", ["tiny", "baseline", "ens"])
def test_predict_model_finds_each_kind_the_run_trained(trained, prefect_server, tmp_path, variant):
    summary, raw, data_dir = trained
    (tmp_path / "cfg.json").write_text(config().model_dump_json())
    texts = ["Love this dress, fits perfectly", "Cheap fabric, returned it"]
    proc = cli(["predict", *texts, "--model", variant, "--config", str(tmp_path / "cfg.json"), "--raw", str(raw),
                "--data-dir", str(data_dir), "--json"], prefect_server)
    assert proc.returncode == 0, proc.stderr
    out = outputs(summary)
    direct = load(out[f"train[{variant}]"], out["prune"], Preprocess.of(config())).predict(texts)
    assert [p["rating"] for p in json.loads(proc.stdout)["predictions"]] == direct.ratings.tolist()


def test_predict_model_finds_a_model_whatever_thread_count_trained_it(prefect_server, tmp_path):
    from flows.pipeline import pipeline
    from flows.status import variant_ref

    raw = write_reviews(tmp_path / "reviews.csv", SAMPLE * 3)
    cfg = config(tiny=TINY)
    cfg.train.threads = 3  # as a run that trained it beside no other variant might have resolved
    summary = pipeline(raw=str(raw), data_dir=str(tmp_path / "data"), config=cfg, until="train")
    cfg.train.threads = None  # the whole configuration resolves its own count
    ref = variant_ref("tiny", cfg, str(tmp_path / "data"), str(raw))
    assert ref["model_dir"] == outputs(summary)["train[tiny]"]
