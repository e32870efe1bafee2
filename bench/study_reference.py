"""The study's training code, re-implemented plainly: the reference that bench/speed.py times the
pipeline against. Not used by the pipeline.

What it keeps from the study ("Multiclass Text Classification using LSTM in Pytorch"):
- a per-item `Dataset` (ids as `torch.from_numpy(x.astype(np.int32))`, label, length) and
  `DataLoader(batch_size=5000, shuffle=True)` for training, an unshuffled one for validation;
- its four models: `LSTM_fixed_len` (embedding -> dropout 0.2 -> LSTM -> linear(ht[-1])),
  `LSTM_variable_input` (dropout 0.3, `pack_padded_sequence(enforce_sorted=False)`),
  `LSTM_glove_vecs` (frozen embeddings), `LSTM_regr` (linear(1), MSE);
- its loop: a fresh Adam per call of `train_model`, `sum_loss += loss.item() * y.shape[0]`,
  `validation_metrics` after every epoch, without `torch.no_grad()` as in the study; the RMSE of
  the predicted class per batch weighted by the batch size (the study's sklearn
  `mean_squared_error`, computed here with numpy).

One addition, off by default: `loaders(..., shuffle_seed=S)` draws each epoch's order as
`torch.randperm(n, generator=Generator().manual_seed(S))` (one draw per epoch, the pipeline's
order) and keeps the DataLoader from drawing on torch's global generator, so that, seeded the
same, both sides see the same batches and the same dropout masks. Timing is the same either way.

It takes the project's encoded arrays (`reviewlstm.encode.Split`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, Dataset, Sampler

from reviewlstm.encode import Split


class ReviewsDataset(Dataset):
    """The study's dataset: one review at a time, as (ids int32, label, length)."""

    def __init__(self, split: Split):
        # the study's X: per review (encoded array, length); y: Python ints
        self.X = list(zip(split.ids, split.lengths.tolist()))
        self.y = split.labels.tolist()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx):
        return torch.from_numpy(self.X[idx][0].astype(np.int32)), self.y[idx], self.X[idx][1]


class SeededOrder(Sampler[int]):
    """Each epoch: torch.randperm(n) from one generator seeded once (the pipeline's order)."""

    def __init__(self, n: int, seed: int):
        self.n, self.generator = n, torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n, generator=self.generator).tolist())

    def __len__(self) -> int:
        return self.n


def loaders(train: Split, valid: Split, batch_size: int = 5000, shuffle_seed: int | None = None):
    """(train_dl, val_dl) as in the study; with shuffle_seed, the aligned order (module doc)."""
    train_ds, valid_ds = ReviewsDataset(train), ReviewsDataset(valid)
    if shuffle_seed is None:
        return DataLoader(train_ds, batch_size=batch_size, shuffle=True), DataLoader(valid_ds, batch_size=batch_size)
    # a private generator for the loader's base seed: the global one then only drives dropout
    train_dl = DataLoader(train_ds, batch_size=batch_size, sampler=SeededOrder(len(train_ds), shuffle_seed),
                          generator=torch.Generator().manual_seed(0))
    val_dl = DataLoader(valid_ds, batch_size=batch_size, generator=torch.Generator().manual_seed(0))
    return train_dl, val_dl


class LSTM_fixed_len(torch.nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.linear = nn.Linear(hidden_dim, 5)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x, l):
        x = self.embeddings(x)
        x = self.dropout(x)
        lstm_out, (ht, ct) = self.lstm(x)
        return self.linear(ht[-1])


class LSTM_variable_input(torch.nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.dropout = nn.Dropout(0.3)
        self.embeddings = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.linear = nn.Linear(hidden_dim, 5)

    def forward(self, x, s):
        x = self.embeddings(x)
        x = self.dropout(x)
        x_pack = pack_padded_sequence(x, s, batch_first=True, enforce_sorted=False)
        out_pack, (ht, ct) = self.lstm(x_pack)
        out = self.linear(ht[-1])
        return out


class LSTM_glove_vecs(torch.nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, glove_weights):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.embeddings.weight.data.copy_(torch.from_numpy(glove_weights))
        self.embeddings.weight.requires_grad = False  # freeze embeddings
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.linear = nn.Linear(hidden_dim, 5)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x, l):
        x = self.embeddings(x)
        x = self.dropout(x)
        lstm_out, (ht, ct) = self.lstm(x)
        return self.linear(ht[-1])


class LSTM_regr(torch.nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.linear = nn.Linear(hidden_dim, 1)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x, l):
        x = self.embeddings(x)
        x = self.dropout(x)
        lstm_out, (ht, ct) = self.lstm(x)
        return self.linear(ht[-1])


def _rmse(pred: torch.Tensor, y: torch.Tensor) -> float:
    # the study: np.sqrt(mean_squared_error(pred, y.unsqueeze(-1)))
    diff = pred.numpy().astype(np.float64) - y.numpy().astype(np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def validation_metrics(model, valid_dl):
    model.eval()
    correct = 0
    total = 0
    sum_loss = 0.0
    sum_rmse = 0.0
    for x, y, l in valid_dl:
        x = x.long()
        y = y.long()
        y_hat = model(x, l)
        loss = F.cross_entropy(y_hat, y)
        pred = torch.max(y_hat, 1)[1]
        correct += (pred == y).float().sum()
        total += y.shape[0]
        sum_loss += loss.item() * y.shape[0]
        sum_rmse += _rmse(pred, y) * y.shape[0]
    return sum_loss / total, float(correct / total), sum_rmse / total


def train_model(model, train_dl, val_dl, epochs=10, lr=0.001):
    """The study's train_model; returns one row per epoch instead of printing every 5th."""
    return list(train_epochs(model, train_dl, val_dl, epochs, lr))


def train_epochs(model, train_dl, val_dl, epochs=10, lr=0.001) -> Iterator[dict]:
    """The body of the study's train_model, yielding after each epoch (so that a benchmark can
    interleave its epochs with another trainer's)."""
    parameters = filter(lambda p: p.requires_grad, model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=lr)
    for i in range(epochs):
        model.train()
        sum_loss = 0.0
        total = 0
        for x, y, l in train_dl:
            x = x.long()
            y = y.long()
            y_pred = model(x, l)
            optimizer.zero_grad()
            loss = F.cross_entropy(y_pred, y)
            loss.backward()
            optimizer.step()
            sum_loss += loss.item() * y.shape[0]
            total += y.shape[0]
        val_loss, val_acc, val_rmse = validation_metrics(model, val_dl)
        yield {"train_loss": sum_loss / total, "valid_loss": val_loss, "accuracy": val_acc, "rmse": val_rmse}


def validation_metrics_regr(model, valid_dl):
    model.eval()
    total = 0
    sum_loss = 0.0
    for x, y, l in valid_dl:
        x = x.long()
        y = y.float()
        y_hat = model(x, l)
        loss = np.sqrt(F.mse_loss(y_hat, y.unsqueeze(-1)).item())
        total += y.shape[0]
        sum_loss += loss.item() * y.shape[0]
    return sum_loss / total


def train_model_regr(model, train_dl, val_dl, epochs=10, lr=0.001):
    return list(train_epochs_regr(model, train_dl, val_dl, epochs, lr))


def train_epochs_regr(model, train_dl, val_dl, epochs=10, lr=0.001) -> Iterator[dict]:
    parameters = filter(lambda p: p.requires_grad, model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=lr)
    for i in range(epochs):
        model.train()
        sum_loss = 0.0
        total = 0
        for x, y, l in train_dl:
            x = x.long()
            y = y.float()
            y_pred = model(x, l)
            optimizer.zero_grad()
            loss = F.mse_loss(y_pred, y.unsqueeze(-1))
            loss.backward()
            optimizer.step()
            sum_loss += loss.item() * y.shape[0]
            total += y.shape[0]
        val_loss = validation_metrics_regr(model, val_dl)
        yield {"train_loss": sum_loss / total, "rmse": val_loss}


def build(variant: str, vocab_size: int, glove_weights: np.ndarray | None = None, embedding_dim: int = 50,
          hidden_dim: int = 50) -> nn.Module:
    """The study's model for a variant name of the article profile."""
    if variant == "fixed":
        return LSTM_fixed_len(vocab_size, embedding_dim, hidden_dim)
    if variant == "variable":
        return LSTM_variable_input(vocab_size, embedding_dim, hidden_dim)
    if variant == "glove":
        return LSTM_glove_vecs(vocab_size, embedding_dim, hidden_dim, np.asarray(glove_weights, dtype=np.float32))
    if variant == "regression":
        return LSTM_regr(vocab_size, embedding_dim, hidden_dim)
    raise ValueError(f"unknown variant {variant!r}")


def epochs(variant: str, model: nn.Module, train_dl, val_dl, n: int, lr: float) -> Iterator[dict]:
    """The study's training of a variant for n epochs at lr, one epoch per step."""
    return (train_epochs_regr if variant == "regression" else train_epochs)(model, train_dl, val_dl, n, lr)


# The study's parameter names -> the pipeline's (ReviewLSTM): same tensors, other names.
TO_PIPELINE = {"embeddings.": "embedding.", "lstm.": "lstm.", "linear.": "head."}


def pipeline_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The study model's weights under the pipeline's parameter names."""
    out = {}
    for key, value in model.state_dict().items():
        prefix = next(p for p in TO_PIPELINE if key.startswith(p))
        out[TO_PIPELINE[prefix] + key[len(prefix):]] = value
    return out
