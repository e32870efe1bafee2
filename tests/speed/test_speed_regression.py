"""Speed regressions, as ratios measured side by side in the same process (never absolute
seconds: CI machines are shared and vary). Both sides alternate, the median of a few rounds
decides; the bounds are well below what bench/speed.py measures (bench/RESULTS.md)."""

from __future__ import annotations

import random
import statistics
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import REAL_DATA, needs_real_data
from reviewlstm import ingest, text, vocab
from reviewlstm.config import CleanConfig, IngestConfig, ModelConfig, TokenizeConfig
from reviewlstm.encode import encode_tokens
from reviewlstm.array_tokenizer import Lexicon
from reviewlstm.lstm_steps import projected_last_hidden
from reviewlstm.models import build_model, packed_last_hidden


def ratio(slow, fast, rounds: int = 3) -> float:
    """median(slow) / median(fast), the two called in turn after one warm-up call each."""
    slow(), fast()
    times = {slow: [], fast: []}
    for _ in range(rounds):
        for fn in (slow, fast):
            start = time.perf_counter()
            fn()
            times[fn].append(time.perf_counter() - start)
    return statistics.median(times[slow]) / statistics.median(times[fast])


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier on a busy machine; both sides alike
    yield
    torch.set_num_threads(before)


def test_padded_variable_length_training_beats_packing(one_thread):
    """The pipeline's variable-length model (padded LSTM, output gathered at each true length)
    against the study's pack_padded_sequence, one training step each on the same batch."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(length="variable", dropout=0.3), vocab_size=2000)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batch, steps = 1024, 70  # measured 2026-11-29: 2.0-2.4x at 768, 5.2-5.7x at 1024 and 1536
    lengths = torch.where(torch.rand(batch) < 0.5, torch.full((batch,), steps), torch.randint(1, steps, (batch,)))
    ids = torch.randint(2, 2000, (batch, steps)) * (torch.arange(steps) < lengths[:, None])
    y = torch.randint(0, 5, (batch,))

    def step(hidden):
        def run():
            loss = F.cross_entropy(model.head(hidden(ids, lengths)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return run

    padded = step(model.last_hidden)
    packed = step(lambda i, l: packed_last_hidden(model, i, l))
    r = ratio(packed, padded)
    print(f"packed / padded training step: {r:.2f}x")
    assert r >= 2.0


def test_fast_tokenizer_beats_spacy():
    """Review-like cleaned text: 2,000 distinct words, runs of spaces where punctuation was,
    a contraction now and then."""
    rnd = random.Random(0)
    vocab = ["".join(rnd.choice("etaoinshrdlucmwfgypb") for _ in range(rnd.randint(1, 9))) for _ in range(2000)]
    vocab += ["dont", "im", "its", "ive"]

    def review() -> str:
        words = rnd.choices(vocab, weights=[1 / (i + 1) for i in range(len(vocab))], k=60)
        return " " + "".join(w + rnd.choice([" "] * 8 + ["  ", "   "]) for w in words)

    texts = [review() for _ in range(400)]
    tok = text._tokenizer()
    spacy_side = lambda: [[t.text for t in doc] for doc in tok.pipe(texts, batch_size=1000)]  # noqa: E731
    fast_side = lambda: text.tokenize(texts, TokenizeConfig())  # noqa: E731
    assert fast_side() == spacy_side()
    r = ratio(spacy_side, fast_side)
    print(f"spaCy / fast tokenizer: {r:.2f}x")
    assert r >= 2.0


def test_projected_inference_beats_the_lstm(one_thread):
    """Prediction's steps (lstm_steps.projected_last_hidden: input table, one sigmoid for four
    gates, one TorchScript call) against nn.LSTM itself, the study's fixed model on 500 rows."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(), vocab_size=2000).eval()
    lengths = torch.randint(1, 71, (500,))
    ids = torch.randint(2, 2000, (500, 70)) * (torch.arange(70) < lengths[:, None])

    def side(hidden):
        def run():
            with torch.inference_mode():
                return hidden(model, ids, lengths)
        return run

    lstm, projected = side(lambda m, i, n: m.last_hidden(i, n)), side(projected_last_hidden)
    torch.testing.assert_close(projected(), lstm(), atol=1e-5, rtol=1e-5)
    r = ratio(lstm, projected, rounds=5)
    print(f"nn.LSTM / projected steps: {r:.2f}x")
    assert r >= 1.0  # the margin depends on the CPU's nn.LSTM kernels (bench/lstm_steps.py); never slower


@needs_real_data
def test_array_lexicon_beats_the_string_path():
    """Prediction's tokenize + encode in arrays (reviewlstm/array_tokenizer.py) against text.tokenize +
    encode_tokens, the stages' own path, on 4,000 real reviews (bench/predict_throughput.py
    measures both on more). The bound leaves room for a busy CI machine (bench/RESULTS.md,
    "Regression check in CI")."""
    reviews = ingest.reviews(ingest.read_table(REAL_DATA), IngestConfig(), source=str(REAL_DATA))
    cleaned = text.clean(reviews["text"].head(4000), CleanConfig())
    texts, cfg = cleaned.to_list(), TokenizeConfig()
    words = vocab.vocabulary(vocab.count_tokens(text.tokenize(texts, cfg)), 2)
    index = dict(zip(words["word"].to_list(), words["id"].to_list()))
    lexicon = Lexicon.of(index)
    strings = lambda: encode_tokens(text.tokenize(texts, cfg), index, 70)  # noqa: E731
    arrays = lambda: lexicon.encode(cleaned, cfg, 70)  # noqa: E731
    for got, want in zip(arrays(), strings()):
        np.testing.assert_array_equal(got, want)
    r = ratio(strings, arrays)
    print(f"string path / array lexicon: {r:.2f}x")
    assert r >= 1.25
