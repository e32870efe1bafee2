"""The project's own model options: bidirectional reading within the true length, pooling,
the expected-rating loss, length buckets and early stopping on a held-out part of training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reviewlstm.config import ModelConfig, Round, best
from reviewlstm.encode import Split
from reviewlstm.models import build_model
from reviewlstm.train import _batches, _hold_out, _loss, train_model
from reviewlstm.inference import predict_proba

SMALL = dict(length="variable", embedding_dim=6, hidden_dim=5, dropout=0.0)


def model(**over):
    torch.manual_seed(0)
    return build_model(ModelConfig(**{**SMALL, **over}), vocab_size=30).eval()


def padded(words: list[int], width: int) -> torch.Tensor:
    return torch.tensor([words + [0] * (width - len(words))])


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "max_mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_features_do_not_depend_on_padding_or_on_the_other_rows(pooling, bidirectional):
    m = model(pooling=pooling, bidirectional=bidirectional)
    review = [5, 9, 2, 17]
    short, long = padded(review, 6), padded(review, 15)
    n = torch.tensor([4])
    with torch.no_grad():
        alone = m.last_hidden(short, n)
        assert torch.allclose(alone, m.last_hidden(long, n), atol=1e-6)
        batch = torch.cat([long, padded([3] * 15, 15)])
        assert torch.allclose(alone, m.last_hidden(batch, torch.tensor([4, 15]))[:1], atol=1e-6)
        width = 5 * (2 if bidirectional else 1) * (2 if pooling == "max_mean" else 1)
        assert alone.shape == (1, width)


def test_backward_direction_reads_the_review_reversed_from_its_last_word():
    m = model(bidirectional=True, pooling="last")
    review = [5, 9, 2, 17]
    with torch.no_grad():
        features = m.last_hidden(padded(review, 9), torch.tensor([4]))
        x = m.embedding(torch.tensor([review[::-1]]))
        _, (h_back, _) = m.lstm_back(x)  # the reversed words alone, no padding at all
        _, (h_fwd, _) = m.lstm(m.embedding(torch.tensor([review])))
    assert torch.allclose(features, torch.cat([h_fwd[-1], h_back[-1]], -1), atol=1e-6)


def test_the_study_variants_keep_their_parameters():
    names = set(build_model(ModelConfig(), 30).state_dict())
    assert names == {"embedding.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                     "lstm.bias_hh_l0", "head.weight", "head.bias"}


def test_expected_rating_loss_adds_the_squared_error_of_the_expected_rating():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 3.0]])
    y = torch.tensor([0, 4])
    ce = F.cross_entropy(logits, y)
    expected = (logits.softmax(-1) * torch.arange(5.0)).sum(-1)
    mse = ((expected - y) ** 2).mean()
    assert torch.isclose(_loss(logits, y, False, 0.0), ce)
    assert torch.isclose(_loss(logits, y, False, 0.5), ce + 0.5 * mse)


def test_length_buckets_cover_every_row_once_with_similar_lengths():
    lengths = torch.tensor(np.random.default_rng(0).integers(1, 100, 1000))
    batches = _batches(lengths, 64, True, torch.Generator().manual_seed(1))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    spans = [int(lengths[b].max() - lengths[b].min()) for b in batches]
    assert np.mean(spans) < 20  # random batches of 64 would span about 95


def split(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, n)
    ids = np.where(np.arange(10) < lengths[:, None], rng.integers(2, 30, (n, 10)), 0)
    labels = (ids[:, 0] % 5).astype(np.int64)  # learnable from the first word
    return Split(ids.astype(np.int64), lengths.astype(np.int64), labels)


def test_holdout_rows_are_drawn_from_training_only_and_by_the_seed():
    train = split(100, 1)
    fit, held = _hold_out(train, 0.2, seed=3)
    assert len(fit) == 80 and len(held) == 20
    rows = {tuple(r) for r in np.c_[train.ids, train.lengths]}
    assert {tuple(r) for r in np.c_[held.ids, held.lengths]} <= rows
    assert np.array_equal(_hold_out(train, 0.2, seed=3)[1].ids, held.ids)


def test_early_stopping_keeps_the_best_held_out_epoch_and_stops_after_patience():
    cfg = ModelConfig(**{**SMALL, "dropout": 0.1}, pooling="max", bidirectional=True, bucket=True,
                      batch_size=16, holdout=0.25, patience=2, rounds=[Round(epochs=40, lr=0.2)])
    state, history = train_model(cfg, split(200, 1), split(60, 2), 30, seed=0, threads=1)
    losses = [r["holdout_loss"] for r in history]
    best_epoch = int(np.argmin(losses)) + 1
    assert [r["epoch"] for r in history if r["kept"]] == [best_epoch]
    assert len(history) == min(40, best_epoch + 2)  # stopped `patience` epochs after the best
    m = build_model(cfg, 30)
    m.load_state_dict(state)
    probs = predict_proba(m, split(60, 2))
    assert probs.shape == (60, 5) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_bucket_without_true_lengths_is_refused():
    with pytest.raises(ValueError, match="bucket"):
        ModelConfig(length="fixed", bucket=True)


def test_best_profile_is_valid_and_reads_true_lengths():
    cfg = best()
    lstms = [v for v in cfg.variants.values() if v.kind == "lstm"]
    assert {v.kind for v in cfg.variants.values()} == {"lstm", "baseline", "ensemble"}
    variant = lstms[0]
    assert all(v.length == "variable" and v.holdout > 0 and v.embeddings == "pretrained" for v in lstms)
    assert len({v.seed for v in lstms}) == len(lstms) and cfg.tokenize.drop_whitespace
