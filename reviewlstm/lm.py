"""Language-model pretraining of a classifier's encoder on review text (ULMFiT's first step).

The classifier's own embedding and LSTMs learn to predict each review's next word (the forward
LSTM) and previous word (the backward one), through a projection to the embedding size and the
embedding matrix itself as the output layer (tied weights). The classifier then starts from
these weights instead of GloVe's alone.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reviewlstm.config import LMConfig
from reviewlstm.models import ENCODER, ReviewLSTM, build_model
from reviewlstm.train import _batches, adam


class LanguageModel(nn.Module):
    """The encoder with an output layer over its `words` most frequent words and one class for
    every other word: the softmax over the whole vocabulary would cost most of the time."""

    def __init__(self, encoder: ReviewLSTM, words: torch.Tensor):
        super().__init__()
        self.encoder = encoder
        dim, hidden = encoder.embedding.embedding_dim, encoder.lstm.hidden_size
        self.proj = nn.Linear(hidden, dim)
        self.proj_back = nn.Linear(hidden, dim) if encoder.lstm_back is not None else None
        self.register_buffer("words", words)  # output class k: word id words[k]; the last: any other
        target = torch.full((encoder.embedding.num_embeddings,), len(words), dtype=torch.int64)
        target[words] = torch.arange(len(words))
        self.register_buffer("target", target)
        self.other = nn.Parameter(torch.zeros(1, dim))
        self.bias = nn.Parameter(torch.zeros(len(words) + 1))

    def _loss(self, proj: nn.Linear, out: torch.Tensor, ids: torch.Tensor, has_next: torch.Tensor) -> torch.Tensor:
        h = out[:, :-1][has_next]  # (N, H): states that have a next word
        weight = torch.cat([self.encoder.embedding.weight[self.words], self.other])  # tied to the embedding
        return F.cross_entropy(F.linear(proj(h), weight, self.bias), self.target[ids[:, 1:][has_next]])

    def loss(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean next-word loss (and previous-word loss, averaged in) over the reviews' words."""
        steps = ids.shape[1]
        n = lengths.clamp(1, steps)
        t = torch.arange(steps, device=ids.device)
        has_next = (t[None, :-1] < n[:, None] - 1)
        x = self.encoder.embed(ids)
        out, _ = self.encoder.lstm(x)
        loss = self._loss(self.proj, out, ids, has_next)
        if self.proj_back is None:
            return loss
        rev = torch.where(t < n[:, None], n[:, None] - 1 - t, t)  # word n-1-t at step t, padding behind
        back, _ = self.encoder.lstm_back(x.gather(1, rev[:, :, None].expand_as(x)))
        return (loss + self._loss(self.proj_back, back, ids.gather(1, rev), has_next)) / 2


def slanted_triangular(step: int, total: int, peak: float, warmup: float = 0.1, ratio: float = 32.0) -> float:
    """ULMFiT's schedule: a short linear rise to `peak`, then a long linear decay to peak/ratio."""
    cut = max(1, math.floor(total * warmup))
    p = step / cut if step < cut else 1 - (step - cut) / max(1, total - cut)
    return peak * (1 + p * (ratio - 1)) / ratio


def pretrain(lm: LMConfig, ids: np.ndarray, lengths: np.ndarray, vocab_size: int,
             embeddings: np.ndarray | None, seed: int, threads: int | None = None,
             on_epoch=None) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The encoder's weights (embedding, LSTMs) after language-model training on these reviews,
    and one history row per epoch (epoch, lr, train_loss: mean per word)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        encoder = build_model(lm.encoder(), vocab_size, 5, embeddings)
        counts = np.zeros(vocab_size, dtype=np.int64)
        for at in range(0, len(ids), 10_000):  # a slice at a time: `ids` may be a memory-mapped file
            part, part_lengths = np.asarray(ids[at : at + 10_000]), np.asarray(lengths[at : at + 10_000])
            counts += np.bincount(part[np.arange(ids.shape[1]) < part_lengths[:, None]], minlength=vocab_size)
        counts[:2] = 0  # padding and UNK are never among the output words
        words = torch.from_numpy(np.argsort(-counts, kind="stable")[: min(lm.output_words, int((counts > 0).sum()))])
        model = LanguageModel(encoder, words).train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = adam(params, lm.lr)
        kept = np.flatnonzero(np.asarray(lengths) > 1)  # a one-word review has no next word
        n = torch.from_numpy(np.asarray(lengths, dtype=np.int64)[kept])
        shuffle = torch.Generator().manual_seed(seed)
        per_epoch = math.ceil(len(n) / lm.batch_size)
        total, step, history = per_epoch * lm.epochs, 0, []
        for epoch in range(1, lm.epochs + 1):
            order = torch.randperm(len(n), generator=shuffle)
            sum_loss = seen = 0.0
            # batches of similar lengths, cut at their longest review, in random order (as training's)
            for batch in _batches(n[order], lm.batch_size, True, shuffle):
                rows = order[batch]
                nb = n[rows]
                xb = torch.from_numpy(np.array(ids[kept[rows.numpy()]], dtype=np.int64))[:, : int(nb.max())]
                for group in optimizer.param_groups:
                    group["lr"] = slanted_triangular(step, total, lm.lr)
                optimizer.zero_grad()
                loss = model.loss(xb, nb)
                loss.backward()
                nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                step += 1
                count = float((nb - 1).sum())
                sum_loss += loss.item() * count
                seen += count
            row = {"epoch": epoch, "lr": lm.lr, "train_loss": sum_loss / seen}
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
        state = {k: v.detach().clone() for k, v in encoder.state_dict().items() if k.startswith(ENCODER)}
        return state, history
    finally:
        torch.set_num_threads(previous)
