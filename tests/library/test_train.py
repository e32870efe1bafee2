"""The training loop on tiny synthetic data: determinism, rounds, learning, loading."""

import pickle

import numpy as np
import pytest
import torch

from reviewlstm.config import ModelConfig, Round
from reviewlstm import encode
from reviewlstm.encode import Split
from reviewlstm.errors import InputError
from reviewlstm.models import build_model
from reviewlstm.train import train_model
from reviewlstm.inference import load_model, predict_proba

VOCAB, T = 30, 10


def task(n: int, seed: int) -> Split:
    """Reviews of random filler words (7..29) with one marker word 2 + label somewhere in them:
    the label is predictable from that one token. Lengths 3..T, post-padded."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    lengths = rng.integers(3, T + 1, n)
    ids = rng.integers(7, VOCAB, (n, T))
    ids[np.arange(n), rng.integers(0, lengths)] = 2 + labels
    ids[np.arange(T) >= lengths[:, None]] = 0
    return Split(ids=ids.astype(np.int64), lengths=lengths.astype(np.int64), labels=labels.astype(np.int64))


TRAIN, VALID = task(400, 1), task(100, 2)


def small(**kw) -> ModelConfig:
    base = dict(embedding_dim=8, hidden_dim=8, batch_size=64, rounds=[Round(epochs=2, lr=0.02)])
    return ModelConfig(**(base | kw))


def test_same_seed_same_history_and_weights_other_seed_differs():
    cfg = small(dropout=0.3, rounds=[Round(epochs=1, lr=0.02), Round(epochs=1, lr=0.01)])
    state1, hist1 = train_model(cfg, TRAIN, VALID, VOCAB, seed=7, threads=1)
    state2, hist2 = train_model(cfg, TRAIN, VALID, VOCAB, seed=7, threads=1)
    assert hist1 == hist2
    assert state1.keys() == state2.keys()
    assert all(torch.equal(state1[k], state2[k]) for k in state1)
    state3, hist3 = train_model(cfg, TRAIN, VALID, VOCAB, seed=8, threads=1)
    assert hist3 != hist1
    assert not torch.equal(state3["head.weight"], state1["head.weight"])
    assert all(v.device.type == "cpu" for v in state1.values())


def test_history_rows_rounds_and_fresh_optimizers(monkeypatch):
    from reviewlstm import train as library

    made = []
    adam = library.adam

    def spy(params, lr, scales=None):
        made.append(lr)
        return adam(params, lr, scales)

    monkeypatch.setattr(library, "adam", spy)
    seen = []
    cfg = small(rounds=[Round(epochs=2, lr=0.05), Round(epochs=0, lr=0.5), Round(epochs=1, lr=0.01)])
    _, hist = train_model(cfg, TRAIN, VALID, VOCAB, seed=0, threads=1, on_epoch=seen.append)
    assert made == [0.05, 0.5, 0.01]  # one fresh Adam per round
    assert [(h["epoch"], h["round"], h["lr"]) for h in hist] == [(1, 1, 0.05), (2, 1, 0.05), (3, 3, 0.01)]
    assert seen == hist
    expected = {"epoch", "round", "lr", "train_loss", "valid_loss", "accuracy", "rmse", "mae",
                "within_one", "macro_f1", "rmse_expected", "mae_expected", "mae_median"}
    assert set(hist[0]) == expected
    assert all(type(v) in (int, float) for h in hist for v in h.values())


@pytest.mark.parametrize("length", ["fixed", "variable"])
def test_learns_a_token_predictable_label(length):
    cfg = small(length=length, embedding_dim=16, hidden_dim=16, dropout=0.0, rounds=[Round(epochs=25, lr=0.03)])
    _, hist = train_model(cfg, TRAIN, VALID, VOCAB, seed=0, threads=1)
    assert hist[-1]["accuracy"] > 0.9
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


def test_regression_head(tmp_path):
    cfg = small(head="regress", embedding_dim=16, hidden_dim=16, dropout=0.0, rounds=[Round(epochs=25, lr=0.03)])
    state, hist = train_model(cfg, TRAIN, VALID, VOCAB, seed=0, threads=1)
    assert {"rmse", "mae", "accuracy"} <= set(hist[-1])
    assert hist[-1]["rmse"] < 0.5 < hist[0]["rmse"]  # always predicting 2 gives about 1.4
    assert state["head.weight"].shape == (1, 16)
    torch.save(state, tmp_path / "reg.pt")
    pred = predict_proba(load_model(cfg, VOCAB, tmp_path / "reg.pt"), VALID)
    assert pred.shape == (len(VALID),) and pred.dtype == np.float32


def test_frozen_glove_stays_frozen_in_training():
    glove = np.random.default_rng(0).uniform(-0.25, 0.25, (VOCAB, 8)).astype(np.float32)
    glove[0] = 0
    state, _ = train_model(small(embeddings="glove_frozen"), TRAIN, VALID, VOCAB, seed=0, threads=1, embeddings=glove)
    np.testing.assert_array_equal(state["embedding.weight"].numpy(), glove)


def test_threads_setting_is_restored():
    before = torch.get_num_threads()
    train_model(small(rounds=[Round(epochs=1, lr=0.01)]), TRAIN, VALID, VOCAB, seed=0, threads=1)
    assert torch.get_num_threads() == before


def test_save_load_predict_roundtrip(tmp_path):
    cfg = small(length="variable")
    state, _ = train_model(cfg, TRAIN, VALID, VOCAB, seed=0, threads=1)
    torch.save(state, tmp_path / "model.pt")
    model = load_model(cfg, VOCAB, tmp_path / "model.pt")
    probs = predict_proba(model, VALID, batch_size=33)
    assert probs.shape == (len(VALID), 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    # batches change only float rounding (the steps of a variable-length batch shrink as rows end)
    np.testing.assert_allclose(probs, predict_proba(model, VALID.ids, VALID.lengths, batch_size=1000), atol=1e-6)
    np.testing.assert_array_equal(probs, predict_proba(model, VALID.ids, VALID.lengths, batch_size=33))


def test_load_errors_name_the_file(tmp_path):
    cfg = small()
    with pytest.raises(InputError, match=r"missing\.pt: cannot load"):
        load_model(cfg, VOCAB, tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"junk\.pt: cannot load"):
        load_model(cfg, VOCAB, tmp_path / "junk.pt")
    state, _ = train_model(small(rounds=[]), TRAIN, VALID, VOCAB, seed=0, threads=1)
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(InputError, match=r"model\.pt: embedding\.weight has shape \(30, 8\), expected \(40, 8\)"):
        load_model(cfg, 40, tmp_path / "model.pt")
    with pytest.raises(InputError, match=r"model\.pt: expected a state_dict"):
        load_model(small(num_layers=2), VOCAB, tmp_path / "model.pt")


def test_bad_splits_raise_input_error():
    with pytest.raises(InputError, match="encoded with another vocabulary"):
        train_model(small(), TRAIN, VALID, 20, seed=0, threads=1)
    empty = Split(ids=np.zeros((0, T), np.int64), lengths=np.zeros(0, np.int64), labels=np.zeros(0, np.int64))
    with pytest.raises(InputError, match="validation split has no rows"):
        train_model(small(), TRAIN, empty, VOCAB, seed=0, threads=1)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_mask_is_the_draw_of_the_models_own_dropout(p):
    # micro-batches embed part by part with this noise: it must be F.dropout's draw, bit for
    # bit, so that the random stream and the batch's values stay the study's
    model = build_model(ModelConfig(embedding_dim=8, dropout=p), vocab_size=30).train()
    ids = torch.randint(0, 30, (40, 12))
    torch.manual_seed(5)
    want, want_next = model.embed(ids), torch.rand(3)
    torch.manual_seed(5)
    keep = model.dropout_mask(ids)
    got_next = torch.rand(3)
    got = torch.cat([model.dropped(model.embedding(ids[i : i + 7]), keep[i : i + 7]) for i in range(0, 40, 7)])
    assert torch.equal(got, want)
    assert torch.equal(got_next, want_next)  # as much of the stream used: later batches draw the same
    assert model.eval().dropout_mask(ids) is None
    assert build_model(ModelConfig(dropout=0.0), vocab_size=30).train().dropout_mask(ids) is None


@pytest.mark.parametrize("kw", [
    dict(),  # fixed length, last state after the padding (the study's fixed model)
    dict(length="variable", dropout=0.3),
    dict(head="regress"),
    dict(embeddings="glove_frozen"),  # no gradient into the embedding
    dict(length="variable", bidirectional=True, pooling="max_mean", expected_weight=0.5),
])
def test_micro_batches_train_the_same_model_as_whole_batches(kw):
    # Same dropout draw (made once per batch), gradients summed over the parts: only float
    # rounding may differ. A wrong share of the loss or a lost embedding gradient would not.
    emb = np.random.default_rng(0).normal(size=(VOCAB, 8)).astype(np.float32)
    cfg = small(dropout=kw.pop("dropout", 0.2), **kw)
    whole_state, whole = train_model(cfg.model_copy(update={"micro_batch": None}), TRAIN, VALID, VOCAB,
                                     seed=3, threads=1, embeddings=emb)
    parts_state, parts = train_model(cfg.model_copy(update={"micro_batch": 7}), TRAIN, VALID, VOCAB,
                                     seed=3, threads=1, embeddings=emb)
    for a, b in zip(whole, parts):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["valid_loss"] == pytest.approx(b["valid_loss"], rel=1e-4)
    for key in whole_state:
        assert torch.allclose(whole_state[key], parts_state[key], atol=1e-4), key


def test_gradual_unfreezing_trains_the_head_alone_first():
    """Epoch 1 of gradual unfreezing moves only the head: the embedding and LSTM keep their
    initial weights (those build_model draws from the seed)."""
    cfg = small(gradual_unfreeze=True, rounds=[Round(epochs=1, lr=0.02)])
    state, _ = train_model(cfg, TRAIN, VALID, VOCAB, seed=5, threads=1)
    torch.manual_seed(5)
    initial = build_model(cfg, VOCAB).state_dict()
    for key, value in state.items():
        assert torch.equal(value, initial[key]) != key.startswith("head."), key
    two, _ = train_model(cfg.model_copy(update={"rounds": [Round(epochs=3, lr=0.02)]}), TRAIN, VALID, VOCAB, seed=5, threads=1)
    assert not torch.equal(two["embedding.weight"], initial["embedding.weight"])  # by epoch 3 everything trains


def test_a_teacher_mixes_its_probabilities_into_the_targets():
    """Distillation (bench/candidates.py): a teacher that gives the labels themselves trains the
    model the labels train; another teacher trains another model."""
    cfg = small(expected_weight=0.5, holdout=0.2)
    train, valid = task(200, 0), task(60, 1)
    plain, _ = train_model(cfg, train, valid, VOCAB, seed=0, threads=1)
    same, _ = train_model(cfg, train, valid, VOCAB, seed=0, threads=1, teacher=np.eye(5)[train.labels], teacher_weight=0.7)
    for k in plain:
        torch.testing.assert_close(same[k], plain[k], rtol=0, atol=1e-5)
    uniform, _ = train_model(cfg, train, valid, VOCAB, seed=0, threads=1, teacher=np.full((200, 5), 0.2), teacher_weight=0.7)
    assert not torch.allclose(uniform["head.weight"], plain["head.weight"], atol=1e-3)


def test_an_unreadable_weights_file_gets_no_advice_to_load_it_unsafely(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError) as info:
        load_model(small(), VOCAB, tmp_path / "junk.pt")
    assert "not a file torch.save wrote" in str(info.value) and "weights_only" not in str(info.value)


@pytest.mark.parametrize("length", ["fixed", "variable"])
def test_int32_and_memory_mapped_ids_train_as_int64_ids_do(length, tmp_path):
    """encode.to_split keeps the stored int32 ids (half the memory), encode.read_split maps them
    from a file and pickles as its name (what a training child gets): the same weights and history."""
    cfg = small(length=length, bucket=length == "variable", holdout=0.2 if length == "variable" else 0.0,
                rounds=[Round(epochs=2, lr=0.02)])
    narrow = lambda s: Split(s.ids.astype(np.int32), s.lengths, s.labels)  # noqa: E731

    def mapped(s: Split, name: str) -> Split:
        np.save(tmp_path / name, s.ids.astype(np.int32))
        sent = pickle.dumps(encode._mapped(str(tmp_path / name), s.lengths, s.labels))
        assert len(sent) < s.ids.nbytes / 4  # the file's name, not the ids
        return pickle.loads(sent)

    wide = train_model(cfg, TRAIN, VALID, VOCAB, seed=3, threads=1)
    thin = train_model(cfg, narrow(TRAIN), narrow(VALID), VOCAB, seed=3, threads=1)
    train, valid = mapped(TRAIN, "train.npy"), mapped(VALID, "valid.npy")
    assert isinstance(train.ids, np.memmap) and isinstance(valid.ids, np.memmap)
    disk = train_model(cfg, train, valid, VOCAB, seed=3, threads=1)
    assert TRAIN.ids.dtype == np.int64 and wide[1] == thin[1] == disk[1]
    assert all(torch.equal(wide[0][k], thin[0][k]) and torch.equal(wide[0][k], disk[0][k]) for k in wide[0])
    np.testing.assert_array_equal(predict_proba(load_state(cfg, wide[0]), valid), predict_proba(load_state(cfg, wide[0]), VALID))


def load_state(cfg: ModelConfig, state: dict) -> torch.nn.Module:
    model = build_model(cfg, VOCAB, 5)
    model.load_state_dict(state)
    return model
