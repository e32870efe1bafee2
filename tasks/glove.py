"""glove: the vocabulary's embedding matrix from pre-trained GloVe vectors."""

import polars as pl

from reviewlstm import glove as lib
from reviewlstm.config import GloveConfig
from reviewlstm.storage import Record, file_of
from tasks.stage import output, stage_task


@stage_task("glove")
def glove(vocab: Record, source: Record, cfg: GloveConfig, dim: int, data_dir: str) -> Record:
    """Look up every vocabulary word in GloVe; unknown words get uniform(-0.25, 0.25) rows."""
    with output("glove", data_dir, vocab=vocab, source=source, cfg=cfg, dim=dim) as out:
        words = pl.read_parquet(file_of(vocab, "vocab.parquet"))["word"].to_list()
        known, vectors = lib.package_vectors() if cfg.path is None else lib.text_vectors(source["path"])
        out.npy("embeddings.npy", lib.embedding_matrix(words, known, vectors, seed=cfg.seed, dim=dim))
        out.figures = {"vocab_size": len(words), "found": lib.count_found(words, known), "dim": int(vectors.shape[1])}
    return out.record
