"""What the reliability tests share: the command in a subprocess, tiny settings, output checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from reviewlstm.storage import LAYERS, RECORD, read_record, verify

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def tiny_config(path: Path, epochs: int = 2, batch_size: int = 16, **variant) -> Path:
    """A whole PipelineConfig as JSON: one small learned-embedding variant, one thread."""
    cfg = {
        "profile": "tiny",
        "train": {"threads": 1, "seed": 0},
        "variants": {"tiny": {"embedding_dim": 8, "hidden_dim": 4, "batch_size": batch_size,
                              "rounds": [{"epochs": epochs, "lr": 0.05}], **variant}},
    }
    path.write_text(json.dumps(cfg))
    return path


def cli_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    env = {**(os.environ if base is None else base), **extra}
    env["PYTHONPATH"] = str(ROOT)
    return env


def cli_cmd(*args: str) -> list[str]:
    return [PY, "-m", "flows.cli", *args]


def cli(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str, status: int | None = None) -> str:
    """Exit status non-zero (or `status`), stderr exactly one line `error: ...`, no traceback."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    if status is not None:
        assert proc.returncode == status, (proc.returncode, proc.stderr[-3000:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def published(data_dir: Path) -> dict[str, list[Path]]:
    """Per stage, the output folders a later run would look at (named by their key)."""
    return {stage: sorted(p for p in (data_dir / layer).iterdir() if not p.name.startswith("."))
            for stage, layer in LAYERS.items() if (data_dir / layer).is_dir()}


def leftovers(data_dir: Path) -> list[Path]:
    """Hidden temporary folders and files in the layers (the checkpoints' folder aside, when empty)."""
    found = []
    for layer in LAYERS.values():
        folder = data_dir / layer
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.startswith(".") and not (p.name == ".checkpoints" and not any(p.iterdir())):
                    found.append(p)
    return found


def assert_all_published_intact(data_dir: Path) -> int:
    """Every published folder has its record and holds exactly what the record describes."""
    count = 0
    for stage, folders in published(data_dir).items():
        for folder in folders:
            record = read_record(folder)
            assert record is not None and (folder / RECORD).is_file(), folder
            assert verify(record), f"{folder}: content differs from its record"
            count += 1
    return count


def synthetic_split(n: int, seed: int, vocab: int = 30, max_len: int = 10):
    """Reviews of random filler words with one marker word 2 + label: learnable, tiny, seeded."""
    import numpy as np

    from reviewlstm.encode import Split

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    lengths = rng.integers(3, max_len + 1, n)
    ids = rng.integers(7, vocab, (n, max_len))
    ids[np.arange(n), rng.integers(0, lengths)] = 2 + labels
    ids[np.arange(max_len) >= lengths[:, None]] = 0
    return Split(ids=ids.astype(np.int64), lengths=lengths.astype(np.int64), labels=labels.astype(np.int64))
