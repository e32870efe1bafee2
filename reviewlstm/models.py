"""The LSTM rating models: the study's four variants and the project's own, in one module.

ids -> Embedding -> Dropout -> LSTM -> features -> Linear. What varies:
- length="fixed": every review is max_len steps long, padding included (the study's model);
  length="variable": a review ends at its true length.
- pooling="last": the features are the LSTM state where the review ends (the study);
  max/mean/max_mean: pooled over the review's steps, so an early word is not forgotten.
- bidirectional: a second LSTM reads each review reversed within its true length, so it too
  starts at a word and not at padding (the packed-sequence result, without packing).
- head="classify": one logit per class; head="regress": one number, the rating 0..4.
- embeddings: learned from scratch, or GloVe vectors copied in, frozen or fine-tuned.
With the defaults the modules, parameters and random draws are exactly the study's.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from reviewlstm.config import ModelConfig
from reviewlstm.encode import PAD
from reviewlstm.errors import InputError


# the parts of a ReviewLSTM that language-model pretraining gives a classifier; the rest is its head
ENCODER = ("embedding.", "lstm.", "lstm_back.")


class ReviewLSTM(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, num_classes: int = 5):
        super().__init__()
        self.variable = cfg.length == "variable"
        self.regress = cfg.head == "regress"
        self.pooling = cfg.pooling
        # padding_idx: the padding row starts at zero and never receives a gradient
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embedding_dim, cfg.hidden_dim, num_layers=cfg.num_layers, batch_first=True)
        # Created only when used: the study's variants keep their parameters and random draws.
        self.lstm_back = (nn.LSTM(cfg.embedding_dim, cfg.hidden_dim, num_layers=cfg.num_layers, batch_first=True)
                          if cfg.bidirectional else None)
        self.head_dropout = nn.Dropout(cfg.head_dropout) if cfg.head_dropout > 0 else None
        width = cfg.hidden_dim * (2 if cfg.bidirectional else 1) * (2 if cfg.pooling == "max_mean" else 1)
        self.head = nn.Linear(width, 1 if self.regress else num_classes)
        # frozen GloVe: fixed here too, so a model rebuilt by load_model trains the same way
        self.embedding.weight.requires_grad_(cfg.embeddings != "glove_frozen")

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, E) embedded, dropout applied (one random draw for the batch)."""
        return self.dropout(self.embedding(ids))

    def dropout_mask(self, ids: torch.Tensor) -> torch.Tensor | None:
        """Which embedded values embed's dropout keeps for this batch, drawn as F.dropout draws
        them on a CPU (bernoulli(1 - p) over the (B, T, E) shape: the same random stream), one
        bool a value, a quarter of the float noise's memory. A batch embedded part by part with
        `dropped` then gets the draw of one pass (tests/library/test_train.py; a GPU's fused dropout
        draws differently, so there the draw is another, equally random one).
        None where dropout draws nothing (p = 0, or eval mode)."""
        p = self.dropout.p
        if p == 0 or not self.dropout.training:
            return None
        mask = torch.empty(*ids.shape, self.embedding.embedding_dim, dtype=torch.bool, device=ids.device)
        return mask.bernoulli_(1 - p)

    def dropped(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x times the dropout noise of these kept values, the noise made as F.dropout makes it."""
        return x * keep.to(x.dtype).div_(1 - self.dropout.p)

    def last_hidden(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, features): what the head reads."""
        return self.features(self.embed(ids), lengths)

    def features(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, E) embedded -> (B, features); rows are independent, so any split of the batch
        gives the same rows (training runs it in micro-batches to bound memory)."""
        out, (ht, _) = self.lstm(x)  # out: (B, T, H), top layer at every step
        if self.pooling == "last" and self.lstm_back is None:
            if not self.variable:
                return ht[-1]  # after all T steps, padding included
            # The study packed the batch (pack_padded_sequence), which oneDNN cannot run, so on
            # CPU it is several times slower. With post-padding, a unidirectional LSTM's output at
            # step length-1 has not seen any padding yet: it is exactly the packed final state.
            last = lengths.clamp(1, x.shape[1]).to(out.device) - 1
            return out[torch.arange(x.shape[0], device=out.device), last]  # shape, not len: ONNX export keeps it
        return self._features(x, out, lengths)

    def _features(self, x: torch.Tensor, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Bidirectional and pooled features; a fixed-length model's reviews are T steps long."""
        batch, steps = x.shape[:2]
        t = torch.arange(steps, device=x.device)
        n = lengths.to(x.device).clamp(1, steps) if self.variable else torch.full((batch,), steps, device=x.device)
        outs = [out]
        if self.lstm_back is not None:
            # step t of the reversed review holds word n-1-t; the padding stays behind the text
            rev = torch.where(t < n[:, None], n[:, None] - 1 - t, t)
            back, _ = self.lstm_back(x.gather(1, rev[:, :, None].expand_as(x)))
            outs.append(back)
        if self.pooling == "last":
            rows = torch.arange(batch, device=x.device)
            return torch.cat([o[rows, n - 1] for o in outs], -1)
        # pooling is order-free, so the reversed direction needs no un-reversing
        inside = (t < n[:, None])[:, :, None]  # (B, T, 1)
        pooled = []
        for o in outs:
            if self.pooling in ("max", "max_mean"):
                pooled.append(o.masked_fill(~inside, float("-inf")).amax(1))
            if self.pooling in ("mean", "max_mean"):
                pooled.append((o * inside).sum(1) / n[:, None])
        return torch.cat(pooled, -1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B, C), or the predicted rating (B,) for the regression head."""
        return self.output(self.last_hidden(ids, lengths))

    def output(self, h: torch.Tensor) -> torch.Tensor:
        """Features (B, F) -> logits (B, C) or ratings (B,)."""
        if self.head_dropout is not None:
            h = self.head_dropout(h)
        y = self.head(h)
        return y.squeeze(-1) if self.regress else y


def packed_last_hidden(model: ReviewLSTM, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The study's variable-length path (pack_padded_sequence), kept as the reference that
    ReviewLSTM.last_hidden must equal; too slow on CPU to train with."""
    x = model.dropout(model.embedding(ids))
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    _, (ht, _) = model.lstm(packed)  # ht is returned in the caller's row order
    return ht[-1]


def build_model(
    cfg: ModelConfig, vocab_size: int, num_classes: int = 5, embeddings: np.ndarray | None = None,
    encoder: dict[str, torch.Tensor] | None = None,
) -> ReviewLSTM:
    """A fresh model; GloVe variants start from `embeddings` (vocab_size, embedding_dim),
    pretrained ones from `encoder` (the embedding and LSTM weights of reviewlstm.lm.pretrain).

    Each is ignored by the variants that do not use it, so callers may pass them to every variant.
    """
    model = ReviewLSTM(cfg, vocab_size, num_classes)
    if cfg.embeddings == "learned":
        return model
    if cfg.embeddings == "pretrained":
        if encoder is None:
            raise ValueError('embeddings="pretrained" needs the pretrain stage\'s encoder weights')
        own = model.state_dict()
        wrong = [k for k, v in encoder.items() if k not in own or own[k].shape != v.shape]
        if wrong or not encoder:
            raise InputError(f"the pretrained encoder does not fit this variant ({(wrong or ['no weights'])[0]}): "
                             f"expected the same embedding_dim, hidden_dim, num_layers and bidirectional as pretrain")
        model.load_state_dict(encoder, strict=False)
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
