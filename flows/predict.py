"""Predictions as a flow (for deployments and the UI) and which model a prediction uses.

The model is the registry's champion, or, given a variant name, the latest model of that variant
trained with the current settings and data: the train stage's output the pipeline would reuse.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.status import variant_ref
from reviewlstm import registry
from reviewlstm.config import DEFAULT_PROFILE, PipelineConfig
from reviewlstm.errors import InputError


champion_ref = registry.champion_ref


def model_ref(model: str | None, cfg: PipelineConfig, data_dir: str, raw: str | None = None) -> dict[str, Any]:
    return champion_ref(data_dir) if not model else variant_ref(model, cfg, data_dir, raw)


@flow(name="reviewlstm-predict", log_prints=True)
def predict(
    texts: list[str] | None = None,
    input: str | None = None,
    output: str | None = None,
    model: str | None = None,
    data_dir: str = "data",
    raw: str | None = None,
    profile: str = DEFAULT_PROFILE,
    config: PipelineConfig | None = None,
) -> dict[str, Any]:
    """Ratings for `texts`, or for every review in the table `input` (written to `output`).

    `model`: a variant name for the latest model of that variant trained with these settings;
    empty for the registry's champion.
    """
    from flows.plan import resolve_config
    from tasks.predict import predict_file, predict_texts

    if bool(texts) == bool(input):
        raise InputError("predict: expected either texts or an input file, not both and not neither")
    if input and not output:
        raise InputError(f"{input}: no output file; expected output (a .csv, .tsv or .parquet path)")
    cfg = resolve_config(profile, config)
    ref = model_ref(model, cfg, data_dir, raw)
    get_run_logger().info("model: %s", ref["label"])
    if texts:
        return {"model": ref["label"], **predict_texts(ref, texts)}
    return {"model": ref["label"], **predict_file(ref, input, output, list(cfg.ingest.text_columns))}
