"""End to end on the real data set: the study's preprocessing figures, then every variant."""

from __future__ import annotations

import math

import pytest

from helpers import REAL_DATA, needs_real_data
from flows.pipeline import pipeline
from reviewlstm.config import profile

pytestmark = [needs_real_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("e2e-data"))


def test_article_preprocessing_figures(prefect_server, data_dir):
    summary = pipeline(raw=str(REAL_DATA), data_dir=data_dir, config=profile("article"), until="encode")
    fig = summary["figures"]
    assert fig["ingest"]["rows"] == 23486
    assert round(fig["ingest"]["mean_words"], 1) == 60.8
    assert fig["prune"]["distinct_tokens"] == 14138
    assert fig["prune"]["kept_tokens"] == 8263
    assert fig["encode"]["train_rows"] + fig["encode"]["valid_rows"] == 23486
    assert fig["encode"]["valid_rows"] == round(0.2 * 23486)


def test_every_variant_trains_and_is_evaluated(prefect_server, data_dir):
    summary = pipeline(raw=str(REAL_DATA), data_dir=data_dir, config=profile("quick"))
    status = {s["stage"]: s["status"] for s in summary["stages"]}
    # preprocessing comes from the previous test's cache; the models are new
    assert status["tokenize"] == "cached"
    variants = ("fixed", "variable", "glove", "regression", "baseline")
    assert [s for s in status if s.startswith("train[")] == [f"train[{v}]" for v in variants]
    assert summary["figures"]["glove"]["found"] > 7000  # most of the 8,265 words have a GloVe vector
    metrics = summary["metrics"]
    assert set(metrics) == set(variants)
    assert metrics["baseline"]["accuracy"] > 0.65  # TF-IDF + logistic regression: 0.673 on this split
    for name, m in metrics.items():
        for key in ("accuracy", "rmse", "mae", "rmse_expected", "within_one", "macro_f1"):
            assert math.isfinite(m[key]), (name, key)
        assert m["accuracy"] > 0.5, name
        assert sum(map(sum, m["confusion"])) == summary["figures"]["encode"]["valid_rows"]


def test_best_profile_trains_on_the_real_data(prefect_server, data_dir):
    """The default profile with a 1-epoch language model and 2-epoch classifiers: its own
    preprocessing (no whitespace tokens, 150 ids), pretraining, every variant and ensemble."""
    from reviewlstm.config import ModelConfig, Round

    cfg = profile("best")
    cfg.pretrain.epochs = 1
    for variant in cfg.variants.values():
        if isinstance(variant, ModelConfig):
            variant.rounds = [Round(epochs=2, lr=variant.rounds[0].lr)]
    summary = pipeline(raw=str(REAL_DATA), data_dir=data_dir, config=cfg)
    status = {s["stage"]: s["status"] for s in summary["stages"]}
    assert status["ingest"] == status["clean"] == "cached"  # shared with the study's profile
    assert status["tokenize"] == "ran"  # whitespace tokens dropped: other tokens
    assert status["pretrain"] == "ran"
    assert status["train[baseline]"] == "ran"
    fig = summary["figures"]
    study = pipeline(raw=str(REAL_DATA), data_dir=data_dir, config=profile("article"), until="tokenize")["figures"]
    assert fig["tokenize"]["mean_tokens"] < study["tokenize"]["mean_tokens"]  # from cache: ran earlier
    assert fig["encode"]["at_max_len"] < 10  # 150 ids keep nearly every review whole
    assert set(summary["metrics"]) == set(cfg.variants)
    for m in summary["metrics"].values():
        assert all(math.isfinite(m[k]) for k in ("accuracy", "rmse", "rmse_expected", "mae", "macro_f1"))
        assert m["accuracy"] > 0.5
    assert summary["promotion"]["variant"] in cfg.variants  # kept or promoted against the quick run's champion
