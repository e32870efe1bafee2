"""What training would need, checked before anything runs."""

from __future__ import annotations

import os

from reviewlstm.config import ModelConfig, PipelineConfig
from reviewlstm.errors import InputError

# bytes a training row keeps per step, per LSTM direction and layer and unit of hidden_dim: the
# gates, states and their gradients, with a margin (about 29 floats a unit at batch 5000 when b299ed0 set it)
PER_UNIT = 32 * 4
PER_EMBEDDING = 4 * 4  # the embedded step, its dropout and gradients, per embedding dimension


def _rows(v: ModelConfig) -> int:
    """Rows in one forward and backward pass: a micro-batch, else the batch."""
    return min(v.batch_size, v.micro_batch or v.batch_size)


def training_bytes(v: ModelConfig, max_len: int) -> int:
    """About the most memory one forward and backward pass of the variant holds: a micro-batch of
    rows at max_len steps (a variable-length batch is cut at its longest review, at most that)."""
    per_step = (2 if v.bidirectional else 1) * v.num_layers * v.hidden_dim * PER_UNIT + v.embedding_dim * PER_EMBEDDING
    return _rows(v) * max_len * per_step


def machine_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(cfg: PipelineConfig, total: int | None = None) -> None:
    """InputError naming the first variant, and the settings, whose training would need more
    memory than the machine has: refused before any stage runs, not found out at 16 GB."""
    total, steps = total or machine_bytes(), cfg.encode.max_len
    lstms = {name: v for name, v in cfg.variants.items() if isinstance(v, ModelConfig)}
    trainings = [(f"variants.{name}", v, training_bytes(v, steps)) for name, v in lstms.items()]
    if any(v.embeddings == "pretrained" for v in lstms.values()):  # the language model: its encoder, and its output layer
        lm = cfg.pretrain.encoder().model_copy(update={"batch_size": cfg.pretrain.batch_size, "micro_batch": None})
        logits = lm.batch_size * steps * (cfg.pretrain.output_words + 1) * 8 * 2  # both directions' logits and gradients
        trainings.insert(0, ("pretrain", lm, training_bytes(lm, steps) + logits))
    for name, v, need in trainings:
        if need > total:
            raise InputError(
                f"{name}: training would hold about {need / 2**30:.1f} GiB ({_rows(v)} rows of batch_size/micro_batch "
                f"x encode.max_len {steps} steps x hidden_dim {v.hidden_dim}), more than this machine's "
                f"{total / 2**30:.1f} GiB; expected a smaller encode.max_len, micro_batch or model")
