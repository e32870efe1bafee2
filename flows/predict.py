"""Predictions as a flow (for deployments and the UI) and which model a prediction uses.

The model is the registry's champion, or, given a variant name, the latest model of that variant
trained with the current settings and data: the train stage's output the pipeline would reuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from reviewlstm import registry
from reviewlstm.config import DEFAULT_PROFILE, PipelineConfig
from reviewlstm.errors import InputError
from reviewlstm.predict import Preprocess
from reviewlstm.storage import read_record, stage_dir, verify


champion_ref = registry.champion_ref


def variant_ref(variant: str, cfg: PipelineConfig, data_dir: str, raw: str | None = None) -> dict[str, Any]:
    """The trained model of `variant` that the current settings and data lead to, with its vocabulary."""
    from flows.plan import plan, sources
    from tasks.keys import folder_key

    if variant not in cfg.variants:
        raise InputError(f"--model {variant!r}: no such variant; valid: {', '.join(cfg.variants)}")
    # the whole config's plan: a train key holds the thread count the full run resolved
    steps = {s.name: s for s in plan(cfg, "train")}
    needed, todo = set(), [f"train[{variant}]"]
    while todo:  # the variant's step and every step it reads from (an ensemble's members too)
        name = todo.pop()
        if name in steps and name not in needed:
            needed.add(name)
            todo.extend(steps[name].needs())
    records = sources(raw, data_dir, cfg)
    for step in (s for s in steps.values() if s.name in needed):
        folder = stage_dir(Path(data_dir).resolve(), step.stage, folder_key(step.key, step.inputs(records, data_dir)))
        record = read_record(folder)
        if record is None:
            raise InputError(f"{folder}: no {step.name} output for the current settings and data; expected a trained "
                             f"{variant!r} model (run `reviewlstm run --variant {variant}` first)")
        if not verify(record):
            missing = [f for f in ("model.pt", "model.json") if step.stage == "train" and not (folder / f).is_file()]
            what = f"{folder / missing[0]}: no such file" if missing else f"{folder}: changed since it was written"
            raise InputError(f"{what}; expected the {step.name} output (run `reviewlstm run --variant {variant}` again)")
        records[step.name] = record
    return {"model_dir": records[f"train[{variant}]"]["path"], "vocab_dir": records["prune"]["path"],
            "prep": Preprocess.of(cfg).model_dump(mode="json"), "label": f"variant {variant} (current settings)",
            "variant": variant}


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
