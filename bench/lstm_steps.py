"""The prediction model's time per review on one thread, LSTM step designs side by side.

Sides, each over the same (T=70, B) ids of the study's shapes (embedding 50, hidden 50, vocab
8,000, weights scaled to saturate gates as trained ones do), alternating, best CPU time of
--repeat calls in each of --rounds rounds:
- nn.LSTM: model.last_hidden under inference mode (oneDNN);
- projected, tanh: the input table and TorchScript steps with torch's tanh for g and c (the
  design before 2026-11-29 07:00, kept here as the reference);
- projected, sigmoid: the current lstm_steps.projected_last_hidden, tanh(x) as 2 sigmoid(2x) - 1.
Also one elementwise call of each function on a (B, 50) block, the size a step computes.

    .venv/bin/python bench/lstm_steps.py [--batch 500] [--rounds 3] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from common import ROOT

sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from reviewlstm.config import ModelConfig  # noqa: E402
from reviewlstm.lstm_steps import _projection, _scripted_steps, projected_last_hidden  # noqa: E402
from reviewlstm.models import build_model  # noqa: E402


def tanh_steps(table: torch.Tensor, w_hh: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The previous design's steps: gates (i, f, o, g), tanh for g and for c."""
    hidden = w_hh.shape[0]
    h = table.new_zeros(ids.shape[1], hidden)
    c = table.new_zeros(ids.shape[1], hidden)
    for t in range(ids.shape[0]):
        gates = table.index_select(0, ids[t]).addmm_(h, w_hh)
        gates[:, : 3 * hidden].sigmoid_()
        g = gates[:, 3 * hidden :].tanh_()
        c = torch.addcmul(gates[:, hidden : 2 * hidden] * c, gates[:, :hidden], g)
        h = gates[:, 2 * hidden : 3 * hidden] * c.tanh()
    return h


def cpu_us(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(ModelConfig(), vocab_size=8000).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    lengths = torch.randint(1, 71, (args.batch,))
    ids = torch.randint(2, 8000, (args.batch, 70)) * (torch.arange(70) < lengths[:, None])

    # the previous design's table: (i, f, o, g) without doubling g
    table, w_hh = _projection(model)
    g = 3 * model.lstm.hidden_size  # where the g columns start
    old_table, old_w = table.clone(), w_hh.clone()
    old_table[:, g:] /= 2
    old_w[:, g:] /= 2
    scripted_tanh = torch.jit.script(tanh_steps)
    ids_t = ids.t().contiguous()
    with torch.inference_mode():
        want = model.last_hidden(ids, lengths)
        sides = {
            "nn.LSTM": lambda: model.last_hidden(ids, lengths),
            "projected, tanh (before)": lambda: scripted_tanh(old_table, old_w, ids_t),
            "projected, sigmoid (now)": lambda: projected_last_hidden(model, ids, lengths),
        }
        for name, fn in sides.items():
            diff = (fn() - want).abs().max().item()
            print(f"{name:28s} max |h - nn.LSTM h| = {diff:.1e}")
        _scripted_steps()  # compiled before timing
        best = {name: float("inf") for name in sides}
        for r in range(args.rounds):
            for name, fn in sides.items():
                best[name] = min(best[name], us := cpu_us(fn, args.repeat) / args.batch)
                print(f"round {r + 1}: {name:28s} {us:5.1f} us a review", flush=True)
        for name in sides:
            print(f"best of the rounds: {name:28s} {best[name]:5.1f} us a review, {1e6 / best[name]:7,.0f} reviews/s, "
                  f"nn.LSTM / this {best['nn.LSTM'] / best[name]:.2f}x")
        x = torch.randn(args.batch, 50) * 2
        for name, fn in {"tanh": x.tanh, "sigmoid": x.sigmoid, "exp": x.exp, "mul": lambda: x * 2}.items():
            us = min(cpu_us(lambda: [fn() for _ in range(200)], args.repeat) / 200 for _ in range(2))
            print(f"{name:8s} on ({args.batch}, 50): {us:6.1f} us")
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}")


if __name__ == "__main__":
    main()
