"""The study's LSTM rating models: one module for its four variants.

ids -> Embedding -> Dropout -> LSTM -> Linear on the last hidden state. What varies:
- length="fixed": the hidden state after all max_len steps, padding included (the study's model);
  length="variable": the hidden state at each review's true length.
- head="classify": one logit per class; head="regress": one number, the rating 0..4.
- embeddings: learned from scratch, or GloVe vectors copied in, frozen or fine-tuned.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from reviewlstm.config import ModelConfig
from reviewlstm.encode import PAD
from reviewlstm.errors import InputError


class ReviewLSTM(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, num_classes: int = 5):
        super().__init__()
        self.variable = cfg.length == "variable"
        self.regress = cfg.head == "regress"
        # padding_idx: the padding row starts at zero and never receives a gradient
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embedding_dim, cfg.hidden_dim, num_layers=cfg.num_layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden_dim, 1 if self.regress else num_classes)
        # frozen GloVe: fixed here too, so a model rebuilt by load_model trains the same way
        self.embedding.weight.requires_grad_(cfg.embeddings != "glove_frozen")

    def last_hidden(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, hidden) state of the top LSTM layer where each review ends."""
        x = self.dropout(self.embedding(ids))  # (B, T, E)
        out, (ht, _) = self.lstm(x)  # out: (B, T, H), top layer at every step
        if not self.variable:
            return ht[-1]  # after all T steps, padding included
        # The study packed the batch (pack_padded_sequence), which oneDNN cannot run, so on CPU
        # it is several times slower. With post-padding, a unidirectional LSTM's output at step
        # length-1 has not seen any padding yet: it is exactly the packed final state.
        last = lengths.clamp(1, ids.shape[1]).to(out.device) - 1
        return out[torch.arange(len(ids), device=out.device), last]

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B, C), or the predicted rating (B,) for the regression head."""
        y = self.head(self.last_hidden(ids, lengths))
        return y.squeeze(-1) if self.regress else y


def packed_last_hidden(model: ReviewLSTM, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The study's variable-length path (pack_padded_sequence), kept as the reference that
    ReviewLSTM.last_hidden must equal; too slow on CPU to train with."""
    x = model.dropout(model.embedding(ids))
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    _, (ht, _) = model.lstm(packed)  # ht is returned in the caller's row order
    return ht[-1]


def build_model(
    cfg: ModelConfig, vocab_size: int, num_classes: int = 5, embeddings: np.ndarray | None = None
) -> ReviewLSTM:
    """A fresh model; GloVe variants start from `embeddings` (vocab_size, embedding_dim).

    `embeddings` is ignored by the "learned" variant, so callers may pass it to every variant.
    """
    model = ReviewLSTM(cfg, vocab_size, num_classes)
    if cfg.embeddings == "learned":
        return model
    if embeddings is None:
        raise ValueError(f"embeddings={cfg.embeddings!r} needs an embedding matrix")
    if embeddings.ndim != 2 or embeddings.shape[1] != cfg.embedding_dim:
        raise InputError(
            f"the GloVe vectors have {embeddings.shape[-1]} dimensions but the model's "
            f"embedding_dim is {cfg.embedding_dim}; use vectors of that size or change embedding_dim"
        )
    if embeddings.shape[0] != vocab_size:
        raise InputError(
            f"the embedding matrix has {embeddings.shape[0]} rows but the vocabulary has "
            f"{vocab_size} words; rebuild it from this vocabulary"
        )
    with torch.no_grad():
        model.embedding.weight.copy_(torch.from_numpy(np.asarray(embeddings, dtype=np.float32)))
    return model
