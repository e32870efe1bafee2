"""The model's shapes, padding, frozen embeddings, and the padded == packed equivalence."""

import numpy as np
import pytest
import torch

from reviewlstm.config import ModelConfig, article
from reviewlstm.errors import InputError
from reviewlstm.lstm_steps import can_project, projected_last_hidden
from reviewlstm.models import build_model, packed_last_hidden

IDS = torch.tensor([
    [1, 2, 12, 34, 56, 78, 90, 80],
    [12, 45, 99, 67, 6, 23, 77, 82],
    [3, 24, 6, 99, 12, 56, 21, 22],
])


def test_study_sanity_check_shapes():
    # the study's first check, with plain torch modules and then with ReviewLSTM's parts
    torch.manual_seed(0)
    emb, lstm = torch.nn.Embedding(100, 7, padding_idx=0), torch.nn.LSTM(7, 3, num_layers=1, batch_first=True)
    x = emb(IDS)
    assert x.shape == (3, 8, 7)
    _, (ht, _) = lstm(x)
    assert ht[-1].shape == (3, 3)

    model = build_model(ModelConfig(embedding_dim=7, hidden_dim=3), vocab_size=100)
    assert model.embedding(IDS).shape == (3, 8, 7)
    assert model.last_hidden(IDS, torch.full((3,), 8)).shape == (3, 3)


@pytest.mark.parametrize("name", [n for n, v in article().variants.items() if v.kind == "lstm"])
def test_article_variants_output_shapes(name):
    cfg = article().variants[name]
    glove = np.random.default_rng(0).normal(size=(100, cfg.embedding_dim)).astype(np.float32)
    model = build_model(cfg, vocab_size=100, embeddings=glove)
    out = model(IDS, torch.tensor([8, 3, 1]))
    assert out.shape == ((3,) if cfg.head == "regress" else (3, 5))
    assert model.embedding.weight.requires_grad == (cfg.embeddings != "glove_frozen")


def test_padding_row_is_zero_and_gets_no_gradient():
    model = build_model(ModelConfig(embedding_dim=4, hidden_dim=3), vocab_size=20)
    assert model.embedding.padding_idx == 0
    assert torch.all(model.embedding.weight[0] == 0)
    ids = torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0]])
    model(ids, torch.tensor([2, 1])).sum().backward()
    assert torch.all(model.embedding.weight.grad[0] == 0)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_variable_length_equals_packed_reference(num_layers):
    torch.manual_seed(0)
    cfg = ModelConfig(length="variable", embedding_dim=6, hidden_dim=5, num_layers=num_layers)
    model = build_model(cfg, vocab_size=50).eval()
    T = 12
    lengths = torch.tensor([1, T, 5, 2, T, 7, 1, 11, 3])
    ids = torch.randint(2, 50, (len(lengths), T))
    ids[torch.arange(T) >= lengths[:, None]] = 0  # post-padding
    padded = model.last_hidden(ids, lengths)
    packed = packed_last_hidden(model, ids, lengths)
    torch.testing.assert_close(padded, packed, atol=1e-5, rtol=0)
    # fixed length reads past the padding, so it differs for the short rows
    model.variable = False
    assert not torch.allclose(model.last_hidden(ids, lengths)[0], packed[0], atol=1e-3)


def test_zero_length_is_read_as_one():
    model = build_model(ModelConfig(length="variable", embedding_dim=4, hidden_dim=3), vocab_size=10).eval()
    ids = torch.tensor([[0, 0, 0]])
    torch.testing.assert_close(model(ids, torch.tensor([0])), model(ids, torch.tensor([1])))


def test_frozen_glove_unchanged_after_a_step_finetuned_changes():
    glove = np.random.default_rng(1).uniform(-1, 1, (30, 8)).astype(np.float32)
    glove[0] = 0
    ids, lengths, y = torch.randint(1, 30, (4, 6)), torch.full((4,), 6), torch.tensor([0, 1, 2, 3])
    for mode, changes in (("glove_frozen", False), ("glove_finetune", True)):
        model = build_model(ModelConfig(embeddings=mode, embedding_dim=8, hidden_dim=4), 30, embeddings=glove)
        np.testing.assert_array_equal(model.embedding.weight.detach().numpy(), glove)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
        torch.nn.functional.cross_entropy(model(ids, lengths), y).backward()
        opt.step()
        assert (not np.array_equal(model.embedding.weight.detach().numpy(), glove)) == changes


def test_glove_width_mismatch_names_both_numbers():
    with pytest.raises(InputError, match=r"300 dimensions.*embedding_dim is 50"):
        build_model(ModelConfig(embeddings="glove_frozen"), 10, embeddings=np.zeros((10, 300), np.float32))
    with pytest.raises(InputError, match=r"12 rows.*10 words"):
        build_model(ModelConfig(embeddings="glove_frozen"), 10, embeddings=np.zeros((12, 50), np.float32))
    with pytest.raises(ValueError, match="needs an embedding matrix"):
        build_model(ModelConfig(embeddings="glove_finetune"), 10)


@pytest.mark.parametrize("kw", [dict(), dict(length="variable"), dict(head="regress"),
                                dict(length="variable", embeddings="glove_frozen")])
def test_projected_inference_equals_the_lstm(kw):
    # the word-table shortcut of prediction against nn.LSTM itself, trained-looking weights
    torch.manual_seed(1)
    cfg = ModelConfig(embedding_dim=6, hidden_dim=5, **kw)
    glove = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    model = build_model(cfg, vocab_size=50, embeddings=glove).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # saturate some gates, as trained weights do
    T = 12
    lengths = torch.tensor([1, T, 5, 2, T, 7, 0, 11, 3])
    ids = torch.randint(2, 50, (len(lengths), T))
    ids[torch.arange(T) >= lengths[:, None]] = 0
    assert can_project(model)
    with torch.inference_mode():
        torch.testing.assert_close(projected_last_hidden(model, ids, lengths), model.last_hidden(ids, lengths),
                                   atol=1e-5, rtol=1e-5)
    # the input table is kept on the model: a weight changed in place (an optimizer step, a
    # load) must rebuild it
    for weight in (model.embedding.weight, model.lstm.weight_ih_l0, model.lstm.bias_hh_l0):
        with torch.no_grad():
            weight.add_(0.5)
        with torch.inference_mode():
            torch.testing.assert_close(projected_last_hidden(model, ids, lengths), model.last_hidden(ids, lengths),
                                       atol=1e-5, rtol=1e-5)


def test_projection_is_only_for_the_study_shapes():
    assert not can_project(build_model(ModelConfig(bidirectional=True, length="variable"), 20))
    assert not can_project(build_model(ModelConfig(pooling="max", length="variable"), 20))
    assert not can_project(build_model(ModelConfig(num_layers=2), 20))
