"""The pipeline's plan: which step feeds which, each step's task key and parameters.

The single description of the pipeline: `flows.pipeline` runs it as Prefect tasks; `reviewlstm
status`, `predict --model` and a run with nothing to do walk it without importing Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from reviewlstm.config import BaselineConfig, EnsembleConfig, ModelConfig, PipelineConfig, TrainConfig, profile as named_profile
from reviewlstm.cores import available_cores
from reviewlstm.devices import resolve
from reviewlstm.errors import InputError
from reviewlstm.memory import check_fits
from reviewlstm.paths import find_raw, glove_record, raw_record
from reviewlstm.layers import STAGES
from reviewlstm.storage import Record

Stage = Literal[STAGES]  # a choice in the UI's run form


@dataclass
class Step:
    """One task call: records it takes from earlier steps, and its own parameters."""

    name: str
    stage: str
    upstream: dict[str, str | dict[str, str]]  # parameter -> step name (or name -> step name)
    params: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # the task's key (tasks.keys.KEYS): the stage's, or a model kind's (train-baseline)

    def __post_init__(self) -> None:
        self.key = self.key or self.stage

    def inputs(self, records: dict[str, Record], data_dir: str) -> dict[str, Any]:
        taken = {p: {n: records[s] for n, s in src.items()} if isinstance(src, dict) else records[src]
                 for p, src in self.upstream.items()}
        return {**taken, **self.params, "data_dir": data_dir}

    def needs(self) -> list[str]:
        return [s for src in self.upstream.values() for s in (src.values() if isinstance(src, dict) else [src])]


def plan(cfg: PipelineConfig, until: str | None = None) -> list[Step]:
    """Every step from ingest up to and including the stage `until` (default: the config's last), in run order."""
    steps = [
        Step("ingest", "ingest", {"raw": "raw"}, {"cfg": cfg.ingest}),
        Step("clean", "clean", {"reviews": "ingest"}, {"cfg": cfg.clean}),
        Step("tokenize", "tokenize", {"cleaned": "clean"}, {"cfg": cfg.tokenize}),
        Step("prune", "prune", {"tokens": "tokenize"}, {"cfg": cfg.prune}),
        Step("encode", "encode", {"tokens": "tokenize", "vocab": "prune"}, {"cfg": cfg.encode}),
    ]
    lstms = {n: v for n, v in cfg.variants.items() if isinstance(v, ModelConfig)}
    pretrained = [n for n, v in lstms.items() if v.embeddings == "pretrained"]
    glove_dims = {v.embedding_dim for v in lstms.values() if v.embeddings.startswith("glove")}
    if pretrained and cfg.pretrain.init == "glove":
        glove_dims.add(cfg.pretrain.embedding_dim)
    if len(glove_dims) > 1:
        raise InputError(f"variants that use GloVe have embedding_dim {sorted(glove_dims)}; expected one size")
    if glove_dims:
        steps.append(Step("glove", "glove", {"vocab": "prune", "source": "glove_source"},
                          {"cfg": cfg.glove, "dim": glove_dims.pop()}))
    if pretrained:
        upstream = {"encoded": "encode", "vocab": "prune", **({"glove": "glove"} if cfg.pretrain.init == "glove" else {})}
        params = {"cfg": cfg.pretrain, "seed": cfg.train.seed, "threads": cfg.train.threads or available_cores(),
                  **({} if "glove" in upstream else {"glove": None})}
        steps.append(Step("pretrain", "pretrain", upstream, params))
    num_classes = cfg.ingest.num_classes
    for name, variant in cfg.variants.items():
        if isinstance(variant, BaselineConfig):
            steps.append(Step(f"train[{name}]", "train", {"reviews": "ingest", "encoded": "encode"},
                              {"name": name, "cfg": variant, "num_classes": num_classes}, key="train-baseline"))
        elif isinstance(variant, EnsembleConfig):
            continue  # after its members
        else:
            upstream = {"encoded": "encode", "vocab": "prune"}
            upstream |= {"glove": "glove"} if variant.embeddings.startswith("glove") else {}
            upstream |= {"pretrained": "pretrain"} if variant.embeddings == "pretrained" else {}
            params = {"name": name, "cfg": variant, "trainer": trainer_for(cfg), "num_classes": num_classes,
                      **({} if "glove" in upstream else {"glove": None}),
                      **({} if "pretrained" in upstream else {"pretrained": None})}
            steps.append(Step(f"train[{name}]", "train", upstream, params))
    for name, variant in cfg.variants.items():
        if isinstance(variant, EnsembleConfig):
            steps.append(Step(f"train[{name}]", "train", {"members": {m: f"train[{m}]" for m in variant.members}},
                              {"name": name, "cfg": variant, "num_classes": num_classes}, key="train-ensemble"))
    if cfg.variants:
        models = {name: f"train[{name}]" for name in cfg.variants}
        steps.append(Step("evaluate", "evaluate", {"reviews": "ingest", "encoded": "encode", "models": models}))
    order = list(dict.fromkeys(s.stage for s in steps))
    until = until or order[-1]
    if until not in order:
        raise InputError(f"stage {until!r} is not part of this configuration; its stages: {', '.join(order)}")
    chosen = [s for s in steps if order.index(s.stage) <= order.index(until)]
    if any(s.stage in ("pretrain", "train") for s in chosen):
        check_fits(cfg)  # a training that cannot fit is refused before any stage runs
    return chosen


def parallel_trains(cfg: PipelineConfig) -> int:
    """How many LSTM variants train at the same time: the setting, else one per core."""
    lstms = sum(isinstance(v, ModelConfig) for v in cfg.variants.values())
    return max(1, min(cfg.train.parallel or available_cores(), lstms or 1))


def trainer_for(cfg: PipelineConfig) -> TrainConfig:
    """The train settings each variant gets: threads and device resolved, so that a cache key names
    the thread count and the device that trained (float sums, and so results, may depend on them)."""
    threads = cfg.train.threads or max(1, available_cores() // parallel_trains(cfg))
    return cfg.train.model_copy(update={"threads": threads, "parallel": None, "device": resolve(cfg.train.device)})


def sources(raw: str | None, data_dir: str, cfg: PipelineConfig) -> dict[str, Record]:
    """The user's files as records: the first inputs of the plan."""
    return {"raw": raw_record(find_raw(raw, data_dir)), "glove_source": glove_record(cfg.glove.path)}


def resolve_config(profile: str, config: PipelineConfig | None) -> PipelineConfig:
    return config if config is not None else named_profile(profile)


def summary(cfg: PipelineConfig, records: dict[str, Record], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run returns and prints: its stages (ran or cached, seconds, output) and their figures."""
    return {"profile": cfg.profile, "raw": records["raw"]["path"], "stages": runs,
            "figures": {r["stage"]: records[r["stage"]]["figures"] for r in runs if r["stage"] != "evaluate"}}
