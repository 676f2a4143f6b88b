"""The recipe schema: one YAML file that says what to train and how, validated by pydantic.

Every section forbids unknown keys (a typo is an error with a "did you mean"), every value is
checked before any model is loaded, and every problem is reported as one
:class:`~tailtune.errors.RecipeError` naming the file, the dotted field path, the bad value and the
fix. ``docs/recipes.md`` documents every field.

Example:
    >>> recipe = recipe_from_dict({
    ...     "task": {"kind": "multiclass"},
    ...     "data": {"path": "../shared/data/tweeteval_emotion"},
    ...     "loss": {"focal": {"gamma": 1.0}},
    ... })  # doctest: +SKIP
    >>> recipe.optim.lr, recipe.loss["focal"].params  # doctest: +SKIP
    (5e-05, {'gamma': 1.0})

Every default a recipe has is written here, once (the loss parameters' defaults are the loss
signatures', the weighting defaults come from :mod:`tailtune.weighting.schemes`). What a recipe
means for a given data set is decided by :func:`tailtune.recipe.resolve`.

Relations:
    :func:`~tailtune.recipe.io.load_recipe` = safe YAML loading +
    :func:`~tailtune.recipe.overrides.apply_overrides` + :func:`~tailtune.recipe.io.recipe_from_dict`;
    :func:`~tailtune.recipe.validation.validate_against_task` checks the parts that need the data's
    :class:`~tailtune.data.TaskSpec`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tailtune.data.kinds import KINDS as TASK_KINDS
from tailtune.data.kinds import task_kind
from tailtune.data.task import GROUP_METRICS, check_groups, group_metric, hierarchy_cycle, split_group_metric
from tailtune.errors import DataError, did_you_mean
from tailtune.recipe.overrides import normalise_loss
from tailtune.weighting.schemes import DEFAULT_BETA, DEFAULT_MIN_WEIGHT, SCHEMES

PRECISIONS = ("fp32", "bf16", "fp16")
#: what ``train.compile`` compiles (tailtune.training.compiled reads this tuple)
COMPILE_SCOPES = ("layers", "model", "step")
#: metrics early stopping may watch (names of ``tailtune.metrics.classification_report`` keys, plus loss)
STOP_METRICS = ("macro_f1", "micro_f1", "weighted_f1", "accuracy", "balanced_accuracy", "mcc", "loss")


def _no_bool(value: Any) -> Any:
    """YAML ``yes``/``true`` must not silently become 1 for a numeric field."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean; write the number itself (e.g. 3), not yes/no/true/false")
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


Number = Annotated[float, BeforeValidator(_no_bool), Field(allow_inf_nan=False)]
Int = Annotated[int, BeforeValidator(_no_bool), Field(strict=True)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class TaskSection(_Section):
    """``task``: what is predicted. Anything left out is inferred from the data."""

    kind: Literal[TASK_KINDS] | None = None
    labels: list[str] | None = None
    polarities: list[str] | None = None
    hierarchy: dict[str, str] | None = None
    #: named label groups ``{group: [label, ...]}`` (aspects: groups of aspects), scored on their own
    groups: dict[str, list[str]] | None = None

    @model_validator(mode="after")
    def _groups(self) -> TaskSection:
        if not self.groups:
            self.groups = None
            return self
        kind = task_kind(self.kind) if self.kind is not None else None
        if kind is not None and kind.is_binary:
            raise ValueError("groups are for multiclass, multilabel and aspects tasks, not binary; remove task.groups")
        try:  # TaskSpec's rule; the members are checked here when task.labels is given, else against the data
            self.groups = check_groups(self.groups, list(self.labels) if self.labels else None,
                                       what="aspect" if kind is not None and kind.per_aspect else "label")
        except DataError as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _kind_specific(self) -> TaskSection:
        if self.hierarchy and self.kind is not None and not task_kind(self.kind).multi_hot:
            raise ValueError(f"hierarchy is for kind 'multilabel' only, not {self.kind!r}; remove task.hierarchy")
        if self.polarities and self.kind is not None and not task_kind(self.kind).per_aspect:
            raise ValueError(f"polarities are for kind 'aspects' only, not {self.kind!r}; remove task.polarities")
        if self.hierarchy:
            for child, parent in self.hierarchy.items():
                if child == parent:
                    raise ValueError(f"hierarchy maps {child!r} to itself; remove that entry")
            cycle = hierarchy_cycle(self.hierarchy)
            if cycle:
                raise ValueError(
                    f"hierarchy has a cycle: {' -> '.join(cycle)}; a child's parent chain must end, remove one entry"
                )
        return self


class DataSection(_Section):
    """``data``: where the texts are and how to read them."""

    path: str | None = None
    text: str | None = None
    labels: str | None = None
    val_fraction: Annotated[Number, Field(gt=0, lt=1)] = 0.1
    max_length: Annotated[Int, Field(gt=0)] = 128
    empty_text: Literal["error", "drop"] = "error"
    label_sep: str | None = None
    unused_labels: Literal["error", "drop"] = "error"

    @field_validator("label_sep")
    @classmethod
    def _sep_not_empty(cls, value: str | None) -> str | None:
        if value == "":
            raise ValueError("label_sep must be a non-empty string (e.g. '|') or null")
        return value


class ModelSection(_Section):
    """``model``: the encoder and the head (see :func:`tailtune.models.build_classifier`)."""

    name: str = "sentence-transformers/all-MiniLM-L6-v2"
    pooling: Literal["cls", "mean"] = "mean"
    dropout: Annotated[Number, Field(ge=0, lt=1)] = 0.1
    freeze_embeddings: bool = False
    freeze_layers: Annotated[Int, Field(ge=0)] = 0
    projection_dim: Annotated[Int, Field(gt=0)] | None = None
    gradient_checkpointing: bool = False
    attn_implementation: Literal["sdpa", "eager", "auto"] = "sdpa"
    trust_remote_code: bool = False


class GammaSchedule(_Section):
    """The YAML shape of a gamma schedule (field names and types, for "did you mean" messages).

    Its meaning -- which schedule the fields give, the defaults, the cross-field rules and the value
    over training -- is :class:`tailtune.losses.focal.GammaSchedule`, the one schedule type: the
    validator builds one, and the recipe keeps its canonical mapping
    (``{schedule: linear, start: 3.0, end: 1.5}``).
    """

    schedule: str | None = None
    start: Number | None = None
    end: Number | None = None
    values: list[Number] | None = None
    milestones: list[Annotated[Number, Field(gt=0, lt=1)]] | None = None

    @model_validator(mode="after")
    def _meaning(self) -> GammaSchedule:
        canonical_gamma(self.model_dump(exclude_none=True))  # raises ValueError with the loss's message
        return self


def canonical_gamma(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A gamma schedule mapping as :class:`tailtune.losses.focal.GammaSchedule` reads it, with every
    field it uses written out (``{start: 3, end: 1}`` -> ``{schedule: linear, start: 3.0, end: 1.0}``).

    Raises:
        ValueError: the losses' message (unknown schedule, missing ``end``, values vs milestones, ...).
    """
    from tailtune.losses.focal import GammaSchedule as LossGammaSchedule  # torch: only for a schedule

    g = LossGammaSchedule.from_spec(spec)
    if g.kind == "step":
        return {"schedule": "step", "values": list(g.values), "milestones": list(g.milestones)}
    if g.kind == "constant":
        return {"schedule": "constant", "start": float(g.start)}
    return {"schedule": g.kind, "start": float(g.start), "end": float(g.end)}


class LossPart(BaseModel):
    """One named part of the loss: ``weight`` (default 1), optional ``type`` and the loss's parameters.

    Parameters other than ``weight``/``type`` are passed to ``tailtune.losses.get`` (checked there).
    ``gamma`` must be a number or a schedule mapping ``{schedule, start, end}``.
    """

    model_config = ConfigDict(extra="allow")

    weight: Annotated[Number, Field(ge=0)] = 1.0
    type: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _check_gamma(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "gamma" in data:
            gamma = data["gamma"]
            if isinstance(gamma, Mapping):
                try:
                    gamma = canonical_gamma(GammaSchedule.model_validate(dict(gamma)).model_dump(exclude_none=True))
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    where = "".join(f".{p}" for p in first["loc"])
                    msg = str(first["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
                    if first["type"] == "extra_forbidden":
                        msg = f"unknown key{did_you_mean(str(first['loc'][-1]), list(GammaSchedule.model_fields))}"
                    raise ValueError(
                        f"gamma{where}: {msg}; a gamma schedule is {{schedule: linear|cosine, start: NUMBER, "
                        f"end: NUMBER}} or {{schedule: step, values: [...], milestones: [...]}}, "
                        f"got {dict(data['gamma'])!r}"
                    ) from None
            elif isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not math.isfinite(gamma):
                raise ValueError(
                    f"gamma = {gamma!r}: must be a number (e.g. 2.0) or a schedule mapping "
                    f"{{schedule: linear, start: 3.0, end: 1.5}}"
                )
            else:
                gamma = float(gamma)
            data = {**data, "gamma": gamma}
        return data

    @property
    def params(self) -> dict[str, Any]:
        """The loss parameters (everything but ``weight`` and ``type``)."""
        return dict(self.model_extra or {})

    def loss_type(self, key: str) -> str:
        """The registry name: ``type`` when given, else the part's key."""
        return self.type or key


class WeightingSection(_Section):
    """``weighting``: the one owner of class weights (see :func:`tailtune.weighting.class_weights`).

    ``per_aspect`` (aspects tasks): ``false`` (default) pools the polarities over the aspects, one
    weight per polarity and ``absent``, as recipes before it trained; ``true`` weighs every
    aspect x class cell by its own count (:func:`tailtune.weighting.aspect_class_weights`; override
    keys ``aspect#class``, ``aspect`` or ``class``).
    """

    scheme: Literal[SCHEMES] = "uniform"
    beta: Annotated[Number, Field(ge=0, lt=1)] = DEFAULT_BETA
    cap: Annotated[Number, Field(ge=1)] | None = None
    overrides: dict[str, Annotated[Number, Field(ge=0)]] = Field(default_factory=dict)
    apply_to: Literal["auto", "alpha", "weight", "pos_weight", "none"] = "auto"
    normalize: bool = True
    per_aspect: bool = False


class SampleWeightingSection(_Section):
    """``sample_weighting``: per-example weights (length, confidence), product normalised per batch."""

    length: bool = False
    confidence: bool = False
    min_weight: Annotated[Number, Field(gt=0, le=1)] = DEFAULT_MIN_WEIGHT


class OptimSection(_Section):
    """``optim``: optimiser and learning-rate schedule."""

    #: ``adamw`` is PyTorch's fused AdamW kernel (one launch for all parameters instead of several
    #: per tensor; the same update to rounding); ``adamw_fused`` is kept as its alias
    name: Literal["adamw", "adamw_fused", "sgd", "adafactor"] = "adamw"
    lr: Annotated[Number, Field(gt=0)] = 5.0e-5
    weight_decay: Annotated[Number, Field(ge=0)] = 0.01
    warmup: Annotated[Number, Field(ge=0, lt=1)] = 0.06
    schedule: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    max_grad_norm: Annotated[Number, Field(gt=0)] | None = 1.0


def check_train_levers(train) -> None:
    """Combinations of ``train`` speed levers that cannot work together (``ValueError``; inside the
    schema pydantic turns it into a ``RecipeError`` naming the section). ``train`` is the section
    object or any object with its attributes."""
    compiled = bool(getattr(train, "compile", False) or getattr(train, "cuda_graphs", False))
    if compiled and int(getattr(train, "length_chunks", 1) or 1) > 1:
        raise ValueError(
            "train.length_chunks > 1 and train.compile/cuda_graphs: chunking cuts every batch into pieces of "
            "new shapes, which a compiled step would recompile for; keep one: set train.length_chunks: 1 "
            "(with compile, pad_buckets bounds the padding) or train.compile: false"
        )


class TrainSection(_Section):
    """``train``: epochs, batches, precision and the seed."""

    epochs: Annotated[Int, Field(gt=0)] = 5
    batch_size: Annotated[Int, Field(gt=0)] = 32
    grad_accum: Annotated[Int, Field(gt=0)] = 1
    precision: Literal[PRECISIONS] = "fp32"
    seed: Annotated[Int, Field(ge=0)] = 13
    eval_batch_size: Annotated[Int, Field(gt=0)] | None = None
    dataloader_workers: Annotated[Int, Field(ge=0)] = 0
    #: speed levers (docs/recipes.md, ``train``; benchmarks/README.md measures them)
    group_by_length: bool = False
    eval_sort_by_length: bool = False
    compile: bool = False
    pin_memory: bool = True
    #: encode each training batch in at most this many length-sorted pieces (1 = off); unlike
    #: group_by_length it leaves the batches as sampled (models/chunking.py)
    length_chunks: Annotated[Int, Field(ge=1, le=64)] = 1
    #: issue 15 (training/speed.py): tailtune's own per-step loop (same results as the Trainer's),
    #: CUDA graphs for the compiled step, the compile-time bound, what compile covers, padding to a
    #: few widths (``None``: on with ``compile``)
    fast_step: bool = True
    cuda_graphs: bool = False
    compile_budget_s: Annotated[Number, Field(ge=0)] = 300.0
    compile_scope: Literal[COMPILE_SCOPES] = "layers"
    pad_buckets: bool | None = None

    @model_validator(mode="after")
    def _eval_batch(self) -> TrainSection:
        if self.eval_batch_size is None:
            self.eval_batch_size = 2 * self.batch_size
        check_train_levers(self)
        return self

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.grad_accum


class EarlyStoppingSection(_Section):
    """``early_stopping``: watch a validation metric; ``patience: 0`` disables stopping.

    ``metric`` is one of :data:`STOP_METRICS` or a label group's metric ``<metric>@<group>``
    (``macro_f1@primary``; the metrics of :data:`tailtune.data.task.GROUP_METRICS`, the group one of
    ``task.groups``).
    """

    metric: str = "macro_f1"
    patience: Annotated[Int, Field(ge=0)] = 3
    min_delta: Annotated[Number, Field(ge=0)] = 0.0

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        metric, group = split_group_metric(value)
        if group is None and metric in STOP_METRICS:
            return value
        if group is not None and metric in GROUP_METRICS and group:
            return value
        choices = [*STOP_METRICS, *(group_metric(m, "<group>") for m in GROUP_METRICS)]
        raise ValueError(
            f"not allowed{did_you_mean(metric, [*STOP_METRICS, *GROUP_METRICS])}. Fix: use one of "
            f"{', '.join(choices)} (<group>: a name of task.groups)"
        )

    @property
    def greater_is_better(self) -> bool:
        return self.metric != "loss"

    @property
    def enabled(self) -> bool:
        return self.patience > 0


def _default_loss() -> dict[str, LossPart]:
    return {"ce": LossPart()}


class Recipe(_Section):
    """A whole recipe. Every section has defaults; to train, ``data.path`` must be set (in the file
    or from the command line)."""

    name: str | None = None
    task: TaskSection = Field(default_factory=TaskSection)
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=ModelSection)
    loss: dict[str, LossPart] = Field(default_factory=_default_loss)
    loss_balance: Literal["fixed", "uncertainty"] = "fixed"
    weighting: WeightingSection = Field(default_factory=WeightingSection)
    sample_weighting: SampleWeightingSection = Field(default_factory=SampleWeightingSection)
    sampler: Literal["none", "class_balanced"] = "none"
    optim: OptimSection = Field(default_factory=OptimSection)
    train: TrainSection = Field(default_factory=TrainSection)
    early_stopping: EarlyStoppingSection = Field(default_factory=EarlyStoppingSection)
    output: str | None = None
    tailtune_version: str | None = None

    @field_validator("task", mode="before")
    @classmethod
    def _task_shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("loss", mode="before")
    @classmethod
    def _normalise_loss(cls, value: Any) -> Any:
        value = normalise_loss(value)
        if isinstance(value, Mapping) and not value:
            raise ValueError("the loss has no parts; name at least one, e.g. loss: {ce: {weight: 1.0}}")
        return value

    @field_validator("loss", mode="after")
    @classmethod
    def _positive_total(cls, value: dict[str, LossPart]) -> dict[str, LossPart]:
        total = sum(p.weight for p in value.values())
        if not total > 0:
            raise ValueError(
                f"the loss weights sum to {total:g}; give at least one part a positive weight "
                f"(weights: {', '.join(f'{k}={p.weight:g}' for k, p in value.items())})"
            )
        return value

    @model_validator(mode="after")
    def _stop_group(self) -> Recipe:
        _, group = split_group_metric(self.early_stopping.metric)
        if group is not None and group not in (self.task.groups or {}):
            declared = ", ".join(self.task.groups or {}) or "none"
            raise ValueError(
                f"early_stopping.metric {self.early_stopping.metric!r} watches group {group!r}, but task.groups "
                f"declares {declared}{did_you_mean(group, list(self.task.groups or {}))}; add "
                f"task.groups: {{{group}: [label, ...]}} or watch a plain metric (macro_f1)"
            )
        return self

    @model_validator(mode="after")
    def _cross_checks(self) -> Recipe:
        kind = self.task.kind
        if self.train.group_by_length and self.sampler == "class_balanced":
            raise ValueError(
                "train.group_by_length and sampler 'class_balanced' both choose the training batches; "
                "keep one: set train.group_by_length: false or sampler: none"
            )
        if self.weighting.per_aspect and kind is not None and not task_kind(kind).per_aspect:
            raise ValueError(
                f"weighting.per_aspect weighs aspect x class cells, for kind 'aspects' only, not {kind!r}; "
                "remove weighting.per_aspect"
            )
        if self.weighting.apply_to == "pos_weight" and kind is not None and not task_kind(kind).sigmoid:
            raise ValueError(
                f"weighting.apply_to 'pos_weight' is for binary/multilabel tasks, not {kind!r}; "
                "use 'weight' or 'alpha' (or 'auto')"
            )
        return self
