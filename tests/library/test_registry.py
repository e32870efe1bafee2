"""The registry: which model is champion, when a new one replaces it, and what a promotion keeps."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from helpers import SAMPLE
from model_fixtures import Trained, make_model
from reviewlstm import registry
from reviewlstm.errors import InputError
from reviewlstm.metrics import classification_metrics
from reviewlstm.predict import load_bundle


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Trained]:
    root = tmp_path_factory.mktemp("models")
    return {"a": make_model(root, "a", seed=0), "b": make_model(root, "b", seed=1),
            # another vocabulary (words seen 4 times or more) and other validation reviews
            "c": make_model(root, "c", seed=2, min_count=4, rows=SAMPLE[:15] * 4)}


def candidate(t: Trained, score: float, select_by: str = "rmse_expected", run: str = "run-1", **extra) -> registry.Candidate:
    return registry.Candidate(metrics={t.name: {select_by: score, "confusion": [[1]], **extra}}, models={t.name: t.model},
                              vocab=t.vocab, prep=t.prep, valid_texts=t.valid_texts, valid_labels=t.valid_labels,
                              select_by=select_by, run={"id": run, "name": f"name-{run}"}, sources={"vocab": "05_vocab/x"})


def test_direction_of_each_metric():
    assert registry.better(0.8, 0.9, "rmse_expected") and not registry.better(0.9, 0.8, "rmse")
    assert registry.better(0.7, 0.6, "accuracy") and registry.better(0.5, 0.4, "macro_f1")
    assert not registry.better(0.5, 0.5, "mae")  # a tie keeps the champion
    metrics = {"x": {"rmse_expected": 0.9, "accuracy": 0.6}, "y": {"rmse_expected": 0.8, "accuracy": 0.5},
               "z": {"rmse_expected": float("nan"), "accuracy": 0.99}}
    assert registry.best_variant(metrics, "rmse_expected") == "y"
    assert registry.best_variant(metrics, "accuracy") == "z"
    assert registry.best_variant({"p": {"rmse": 1.0}, "q": {"rmse": 1.0}}, "rmse") == "p"


def test_first_promotion_keeps_everything_predict_needs(models, tmp_path):
    a = models["a"]
    decision = registry.promote(tmp_path, candidate(a, 1.2))
    assert decision["promoted"] and decision["reason"] == "no champion yet" and decision["previous"] is None
    reg = json.loads((tmp_path / "registry.json").read_text())
    (item,) = reg["models"]
    assert reg["champion"] == item["id"] == decision["champion"]
    assert item["variant"] == "a" and item["score"] == 1.2 and item["flow_run"] == {"id": "run-1", "name": "name-run-1"}
    assert "confusion" not in item["metrics"] and item["model_digest"] == a.model["digest"]
    assert item["vocab_digest"] == a.vocab["digest"] and item["validation"]["rows"] == len(a.valid_texts)
    assert item["preprocess"]["max_len"] == a.prep.max_len and item["preprocess"]["label_min"] == 1
    bundle = tmp_path / item["bundle"]
    assert sorted(p.name for p in bundle.iterdir()) == ["model.json", "model.onnx", "model.pt", "preprocess.json", "vocab"]
    assert not [p for p in tmp_path.rglob(".*") if p.name != registry.LOCK]  # no temporary files left


def test_bundle_outlives_the_stage_outputs(models, tmp_path):
    a = models["a"]
    copy = tmp_path / "stage"
    shutil.copytree(a.model["path"], copy / "model")
    shutil.copytree(a.vocab["path"], copy / "vocab")
    moved = Trained(a.name, {**a.model, "path": str(copy / "model")}, {**a.vocab, "path": str(copy / "vocab")},
                    a.prep, a.valid_texts, a.valid_labels)
    registry.promote(tmp_path / "data", candidate(moved, 1.0))
    shutil.rmtree(copy)  # a cache clean-up
    _, bundle = registry.champion_bundle(tmp_path / "data")
    assert load_bundle(bundle).predict(["love it"]).ratings.shape == (1,)


def test_better_replaces_worse_keeps_and_same_model_is_a_no_op(models, tmp_path):
    a, b = models["a"], models["b"]
    first = registry.promote(tmp_path, candidate(a, 1.2))["champion"]
    before = (tmp_path / "registry.json").read_bytes()
    again = registry.promote(tmp_path, candidate(a, 1.2, run="run-2"))
    assert not again["promoted"] and again["reason"] == "already the champion"
    worse = registry.promote(tmp_path, candidate(b, 1.3, run="run-3"))
    assert not worse["promoted"] and worse["champion"] == first and worse["previous_score"] == 1.2
    assert "recorded on the same validation reviews" in worse["reason"]
    tie = registry.promote(tmp_path, candidate(b, 1.2, run="run-4"))
    assert not tie["promoted"]
    assert (tmp_path / "registry.json").read_bytes() == before  # nothing written when nothing changes
    better = registry.promote(tmp_path, candidate(b, 1.1, run="run-5"))
    assert better["promoted"] and better["previous"] == first
    reg = registry.load(tmp_path)
    assert [m["variant"] for m in reg["models"]] == ["a", "b"] and reg["champion"] == better["champion"]
    assert reg["models"][1]["beat"] == {"id": first, "score": 1.2} and reg["models"][1]["flow_run"]["id"] == "run-5"
    assert len(list((tmp_path / "champions").iterdir())) == 2


def test_higher_is_better_for_accuracy(models, tmp_path):
    a, b = models["a"], models["b"]
    registry.promote(tmp_path, candidate(a, 0.60, "accuracy"))
    assert not registry.promote(tmp_path, candidate(b, 0.55, "accuracy"))["promoted"]
    assert registry.promote(tmp_path, candidate(b, 0.65, "accuracy"))["promoted"]


def test_champion_from_other_validation_data_is_rescored_through_its_own_preprocessing(models, tmp_path):
    a, c = models["a"], models["c"]
    registry.promote(tmp_path, candidate(a, 0.01))  # an unbeatable score, but on other reviews
    item, bundle = registry.champion_bundle(tmp_path)
    probs = load_bundle(bundle).scores(c.valid_texts)  # a's vocabulary and settings on c's reviews
    theirs = classification_metrics(c.valid_labels, probs)["rmse_expected"]
    assert theirs != pytest.approx(0.01)

    kept = registry.promote(tmp_path, candidate(c, theirs + 0.5))
    assert not kept["promoted"] and kept["previous_score"] == pytest.approx(theirs)
    assert "re-scored on the current validation reviews" in kept["reason"]
    won = registry.promote(tmp_path, candidate(c, theirs - 0.01))
    assert won["promoted"] and won["previous"] == item["id"]


def test_damaged_champion_is_replaced(models, tmp_path):
    a, c = models["a"], models["c"]
    registry.promote(tmp_path, candidate(a, 0.5))
    _, bundle = registry.champion_bundle(tmp_path)
    (bundle / "model.pt").unlink()
    decision = registry.promote(tmp_path, candidate(c, 2.0))
    assert decision["promoted"] and "cannot be used" in decision["reason"] and "model.pt" in decision["reason"]
    _, bundle = registry.champion_bundle(tmp_path)
    shutil.rmtree(bundle / "vocab")  # the same validation reviews: the recorded score would do, but it cannot predict
    assert registry.promote(tmp_path, candidate(a, 3.0))["promoted"]


def test_damaged_registry_is_an_input_error_and_is_not_overwritten(models, tmp_path):
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(InputError, match="registry.json: not readable JSON"):
        registry.promote(tmp_path, candidate(models["a"], 1.0))
    assert (tmp_path / "registry.json").read_text() == "{not json"
    assert not (tmp_path / "champions").exists()


def test_validation_digest_is_of_texts_and_labels():
    d = registry.validation_digest(["a b", "c"], np.array([1, 2]))
    assert d == registry.validation_digest(["a b", "c"], np.array([1, 2]))
    assert d != registry.validation_digest(["a b", "c"], np.array([1, 3]))
    assert d != registry.validation_digest(["a", "b c"], np.array([1, 2]))


def test_a_champion_file_changed_added_or_removed_is_refused_by_name(models, tmp_path):
    a, b = models["a"], models["b"]
    registry.promote(tmp_path, candidate(a, 1.0))
    _, bundle = registry.champion_bundle(tmp_path)
    registry.champion_ref(tmp_path)  # intact: accepted
    damage = {
        "model.pt": lambda: shutil.copy2(f"{b.model['path']}/model.pt", bundle / "model.pt"),  # another model's weights
        "model.json": lambda: (bundle / "model.json").write_text(
            (bundle / "model.json").read_text().replace('"pooling": "last"', '"pooling": "max"')),
        "preprocess.json": lambda: (bundle / "preprocess.json").write_text(
            (bundle / "preprocess.json").read_text().replace('"max_len": 20', '"max_len": 200')),
        "model.onnx": lambda: (bundle / "model.onnx").unlink(),
        "extra.onnx": lambda: (bundle / "extra.onnx").write_bytes(b"planted"),
    }
    for name, damage_it in damage.items():
        saved = {p: p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
        damage_it()
        with pytest.raises(InputError, match=rf"{name}: (changed since it was promoted|no such file|not a file of the promoted bundle)"):
            registry.champion_ref(tmp_path)
        (bundle / "extra.onnx").unlink(missing_ok=True)
        for p, data in saved.items():
            p.write_bytes(data)
    registry.champion_ref(tmp_path)


def test_the_next_promotion_repairs_a_damaged_champion_from_its_model(models, tmp_path):
    a = models["a"]
    first = registry.promote(tmp_path, candidate(a, 1.0))["champion"]
    _, bundle = registry.champion_bundle(tmp_path)
    files = registry.champion(tmp_path)["files"]
    shutil.rmtree(bundle)
    cand = candidate(a, 1.0, run="run-2")
    digest = registry.validation_digest(cand.valid_texts, cand.valid_labels)
    # a run with nothing to do does not trust it: promotion has to run
    assert registry.kept(tmp_path, cand.metrics, "rmse_expected", {"a": a.model["digest"]}, digest) is None
    decision = registry.promote(tmp_path, cand)
    assert not decision["promoted"] and decision["champion"] == first
    assert decision["reason"].startswith(f"repaired the champion {first} (") and "no such folder" in decision["reason"]
    assert registry.champion(tmp_path)["files"] == files and registry.champion_ref(tmp_path)["id"] == first
    assert registry.promote(tmp_path, cand)["repaired"] is None  # intact now: nothing to repair
