"""The study's LSTM for inference, faster on a CPU than nn.LSTM's forward (ReviewLSTM.last_hidden),
which it replaces in scoring and must equal (tests/library/test_models.py; figures in bench/RESULTS.md)."""

from __future__ import annotations

import warnings
from functools import lru_cache

import torch

from reviewlstm.models import ReviewLSTM


def can_project(model: ReviewLSTM) -> bool:
    """Whether projected_last_hidden computes this model's features (the study's shapes)."""
    return model.lstm_back is None and model.pooling == "last" and model.lstm.num_layers == 1


def projected_last_hidden(model: ReviewLSTM, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """last_hidden for inference, faster on a CPU for the study's models (bench/RESULTS.md).

    Without dropout, a word's input to the LSTM gates (embedding @ W_ih^T + both biases) depends
    on the word alone: one (vocab, 4H) table replaces the input half of every step's arithmetic
    with a row lookup. A variable-length model's rows go longest first and each step computes
    only the rows still inside their review (what packing does); a finished row keeps its state.
    The steps run as one TorchScript call, which releases the GIL for the whole batch, so threads
    scoring side by side do not wait on each other or on a thread that tokenizes.
    Equal to last_hidden in eval mode up to float rounding (tests/library/test_models.py).
    """
    table, w_hh = _projection(model)
    batch, steps = ids.shape
    if model.variable:
        n = lengths.to(ids.device).clamp(1, steps)
        order = torch.argsort(n, descending=True, stable=True)
        ids, n = ids[order], n[order]
        active = (n[None, :] > torch.arange(int(n[0]), device=ids.device)[:, None]).sum(1).tolist()  # rows per step
    else:
        active = [batch] * steps
    h = _scripted_steps()(table, w_hh, ids.t().contiguous(), active)
    if model.variable:
        h = h[torch.argsort(order)]
    return h


def _projection(model: ReviewLSTM) -> tuple[torch.Tensor, torch.Tensor]:
    """The (vocab, 4H) input table and W_hh^T, gate columns reordered to (i, f, o, g) and the g
    columns doubled, so that one sigmoid covers all four gates (tanh(x) = 2 sigmoid(2x) - 1, and
    doubling is exact in floats); kept on the model until one of its weights changes (an
    optimizer step or a load bumps the tensors' version)."""
    lstm = model.lstm
    weights = (model.embedding.weight, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    key = tuple((w.data_ptr(), w._version) for w in weights)
    cached = model.__dict__.get("_projection")
    if cached is None or cached[0] != key:
        hidden = lstm.hidden_size
        gates = torch.cat([torch.arange(2 * hidden), torch.arange(3 * hidden, 4 * hidden), torch.arange(2 * hidden, 3 * hidden)])
        with torch.no_grad():
            table = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, model.embedding.weight, lstm.weight_ih_l0.t())
            table, w_hh = table[:, gates].contiguous(), lstm.weight_hh_l0.t()[:, gates].contiguous()
            table[:, 3 * hidden :] *= 2
            w_hh[:, 3 * hidden :] *= 2
            cached = (key, table, w_hh)
        model.__dict__["_projection"] = cached  # not a parameter or buffer: never saved
    return cached[1], cached[2]


def _steps(table: torch.Tensor, w_hh: torch.Tensor, ids: torch.Tensor, active: list[int]) -> torch.Tensor:
    """The LSTM recurrence over (T, B) ids, rows sorted longest first; `active`: rows per step.

    tanh goes through sigmoid: torch's float tanh costs about three sigmoids on this CPU
    (bench/RESULTS.md), and the identity moves results by rounding only (about 1e-6 after 70
    saturated steps)."""
    hidden = w_hh.shape[0]
    batch = ids.shape[1]
    h = table.new_zeros(batch, hidden)
    c = table.new_zeros(batch, hidden)
    for t in range(len(active)):
        k = active[t]
        # i, f, o, sigmoid(2 g); in place: fewer buffers
        gates = table.index_select(0, ids[t, :k]).addmm_(h[:k], w_hh).sigmoid_()
        g = gates[:, 3 * hidden :].mul_(2).sub_(1)
        c_k = torch.addcmul(gates[:, hidden : 2 * hidden] * c[:k], gates[:, :hidden], g)
        h_k = (c_k * 2).sigmoid_().mul_(2).sub_(1).mul_(gates[:, 2 * hidden : 3 * hidden])
        if k == batch:
            h, c = h_k, c_k
        else:
            h[:k] = h_k
            c[:k] = c_k
    return h


@lru_cache(maxsize=1)
def _scripted_steps():
    """_steps compiled on first use, not at import. TorchScript is deprecated in
    favour of torch.compile, which needs a C++ compiler at run time; should a later torch drop
    it, the same loop runs in Python (same results, holding the GIL between steps)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(_steps)
    except Exception:  # noqa: BLE001 - any failure to compile leaves the Python loop
        return _steps
