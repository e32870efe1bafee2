"""The data folder's layers, numbered in pipeline order as in Kedro's `data/`: the one list of the
pipeline's stages (the plan, the command's choices and the run form's read it from here)."""

RAW = "01_raw"  # the user's reviews file

# stage -> the folder its outputs live in, in run order
LAYERS = {
    "ingest": "02_ingested",
    "clean": "03_clean",
    "tokenize": "04_tokens",
    "prune": "05_vocab",
    "encode": "06_encoded",
    "glove": "07_glove",
    "pretrain": "07_lm",
    "train": "08_models",
    "evaluate": "09_metrics",
}
STAGES = tuple(LAYERS)
