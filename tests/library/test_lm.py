"""Language-model pretraining: every optimizer step uses the slanted triangular schedule's rate."""

import math

import numpy as np
import torch

from reviewlstm.config import LMConfig
from reviewlstm.lm import pretrain, slanted_triangular


def test_each_step_takes_the_schedules_learning_rate(monkeypatch):
    used = []
    step = torch.optim.Adam.step

    def recording(self, *args, **kwargs):
        used.append([group["lr"] for group in self.param_groups])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording)
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 40, size=(50, 8))
    lengths = rng.integers(2, 9, size=50)
    cfg = LMConfig(embedding_dim=8, hidden_dim=4, init="learned", epochs=3, batch_size=8, lr=0.01, output_words=20)
    _, history = pretrain(cfg, ids, lengths, 40, None, seed=0, threads=1)
    total = 3 * math.ceil(50 / 8)
    assert len(history) == 3 and len(used) == total
    assert used == [[slanted_triangular(i, total, 0.01)] * len(used[i]) for i in range(total)]
    assert used[0][0] < used[total // 10][0] == 0.01  # it rises to the peak, then decays
