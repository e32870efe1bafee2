"""Keeping freed memory (reviewlstm/allocator.py) changes how fast training runs, never its numbers."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from helpers import ROOT

TRAIN = """
import json, numpy as np
from reviewlstm import allocator as memory
from reviewlstm.config import ModelConfig, Round
from reviewlstm.encode import Split
from reviewlstm.train import train_model
rng = np.random.default_rng(0)
split = lambda n: Split(rng.integers(1, 50, (n, 30)), np.full(n, 30), rng.integers(0, 5, n))
cfg = ModelConfig(embedding_dim=16, hidden_dim=16, batch_size=400, rounds=[Round(epochs=2, lr=0.01)])
_, history = train_model(cfg, split(800), split(100), 50, seed=1, threads=1)
print(json.dumps({"kept": memory._done, "history": history}))
"""


def train(malloc: str) -> dict:
    env = {**os.environ, "REVIEWLSTM_MALLOC": malloc}
    proc = subprocess.run([sys.executable, "-c", TRAIN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.skipif(platform.system() != "Linux", reason="mallopt is glibc's")
def test_training_keeps_freed_memory_and_gets_the_same_history_as_without():
    kept, default = train("keep"), train("default")
    assert kept["kept"] is True and default["kept"] is False
    assert kept["history"] == default["history"]
