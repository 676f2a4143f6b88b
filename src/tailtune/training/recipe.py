"""The recipe: one YAML file that says what to train and how, validated by pydantic.

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

Relations:
    :func:`load_recipe` = safe YAML loading + :func:`~tailtune.training.overrides.apply_overrides`
    + :func:`recipe_from_dict`; :func:`resolved_recipe_dict` is what a run writes to ``recipe.yaml``
    (loading that file again gives an equal recipe); :func:`validate_against_task` checks the parts
    that need the data's :class:`~tailtune.data.TaskSpec`.
"""

from __future__ import annotations

import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tailtune.errors import RecipeError, did_you_mean
from tailtune.training.overrides import Override, apply_overrides, normalise_loss, yaml_load

TASK_KINDS = ("binary", "multiclass", "multilabel", "aspects")
PRECISIONS = ("fp32", "bf16", "fp16")
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

    kind: Literal["binary", "multiclass", "multilabel", "aspects"] | None = None
    labels: list[str] | None = None
    polarities: list[str] | None = None
    hierarchy: dict[str, str] | None = None

    @model_validator(mode="after")
    def _kind_specific(self) -> TaskSection:
        if self.hierarchy and self.kind not in (None, "multilabel"):
            raise ValueError(f"hierarchy is for kind 'multilabel' only, not {self.kind!r}; remove task.hierarchy")
        if self.polarities and self.kind not in (None, "aspects"):
            raise ValueError(f"polarities are for kind 'aspects' only, not {self.kind!r}; remove task.polarities")
        if self.hierarchy:
            for child, parent in self.hierarchy.items():
                if child == parent:
                    raise ValueError(f"hierarchy maps {child!r} to itself; remove that entry")
            from tailtune.data.task import hierarchy_cycle

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
    """A focusing parameter that changes over training (progress 0 -> 1); mirrors
    :class:`tailtune.losses.focal.GammaSchedule`.

    ``linear``/``cosine`` go from ``start`` to ``end``; ``constant`` stays at ``start``; ``step`` takes
    ``values[k]`` after the k-th of the increasing ``milestones`` in (0, 1).
    """

    schedule: Literal["constant", "linear", "cosine", "step"] = "linear"
    start: Number | None = None
    end: Number | None = None
    values: list[Number] | None = None
    milestones: list[Annotated[Number, Field(gt=0, lt=1)]] | None = None

    @model_validator(mode="after")
    def _complete(self) -> GammaSchedule:
        if self.schedule in ("linear", "cosine") and (self.start is None or self.end is None):
            raise ValueError(f"a {self.schedule} schedule needs start and end")
        if self.schedule == "constant" and self.start is None:
            raise ValueError("a constant schedule needs start")
        if self.schedule == "step":
            if self.values is None or self.milestones is None:
                raise ValueError("a step schedule needs values and milestones")
            if len(self.values) != len(self.milestones) + 1:
                raise ValueError(
                    f"a step schedule needs one more value than milestones, got {len(self.values)} values "
                    f"and {len(self.milestones)} milestones"
                )
            if self.milestones != sorted(self.milestones):
                raise ValueError(f"milestones {self.milestones} must increase")
        return self


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
                    gamma = GammaSchedule.model_validate(dict(gamma)).model_dump(exclude_none=True)
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    where = "".join(f".{p}" for p in first["loc"])
                    msg = str(first["msg"]).removeprefix("Value error, ")
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
    """``weighting``: the one owner of class weights (see :func:`tailtune.weighting.class_weights`)."""

    scheme: Literal["uniform", "inverse", "sqrt_inverse", "effective_number"] = "uniform"
    beta: Annotated[Number, Field(ge=0, lt=1)] = 0.999
    cap: Annotated[Number, Field(ge=1)] | None = None
    overrides: dict[str, Annotated[Number, Field(ge=0)]] = Field(default_factory=dict)
    apply_to: Literal["auto", "alpha", "weight", "pos_weight", "none"] = "auto"
    normalize: bool = True


class SampleWeightingSection(_Section):
    """``sample_weighting``: per-example weights (length, confidence), product normalised per batch."""

    length: bool = False
    confidence: bool = False
    min_weight: Annotated[Number, Field(gt=0, le=1)] = 0.1


class OptimSection(_Section):
    """``optim``: optimiser and learning-rate schedule."""

    #: ``adamw_fused``: the same AdamW update in PyTorch's fused kernel (one launch for all
    #: parameters instead of several per tensor; the fastest choice on a GPU)
    name: Literal["adamw", "adamw_fused", "sgd", "adafactor"] = "adamw"
    lr: Annotated[Number, Field(gt=0)] = 5.0e-5
    weight_decay: Annotated[Number, Field(ge=0)] = 0.01
    warmup: Annotated[Number, Field(ge=0, lt=1)] = 0.06
    schedule: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    max_grad_norm: Annotated[Number, Field(gt=0)] | None = 1.0


class TrainSection(_Section):
    """``train``: epochs, batches, precision and the seed."""

    epochs: Annotated[Int, Field(gt=0)] = 5
    batch_size: Annotated[Int, Field(gt=0)] = 32
    grad_accum: Annotated[Int, Field(gt=0)] = 1
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
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

    @model_validator(mode="after")
    def _eval_batch(self) -> TrainSection:
        if self.eval_batch_size is None:
            self.eval_batch_size = 2 * self.batch_size
        return self

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.grad_accum


class EarlyStoppingSection(_Section):
    """``early_stopping``: watch a validation metric; ``patience: 0`` disables stopping."""

    metric: Literal["macro_f1", "micro_f1", "weighted_f1", "accuracy", "balanced_accuracy", "mcc", "loss"] = (
        "macro_f1"
    )
    patience: Annotated[Int, Field(ge=0)] = 3
    min_delta: Annotated[Number, Field(ge=0)] = 0.0

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
    def _cross_checks(self) -> Recipe:
        kind = self.task.kind
        if self.train.group_by_length and self.sampler == "class_balanced":
            raise ValueError(
                "train.group_by_length and sampler 'class_balanced' both choose the training batches; "
                "keep one: set train.group_by_length: false or sampler: none"
            )
        if self.weighting.apply_to == "pos_weight" and kind in ("multiclass", "aspects"):
            raise ValueError(
                f"weighting.apply_to 'pos_weight' is for binary/multilabel tasks, not {kind!r}; "
                "use 'weight' or 'alpha' (or 'auto')"
            )
        return self


# ---------------------------------------------------------------------------------------- errors
_FIX_BY_TYPE = {
    "missing": "add this field",
    "int_type": "use a whole number",
    "int_parsing": "use a whole number",
    "int_from_float": "use a whole number",
    "float_type": "use a number, e.g. 3.0e-5",
    "float_parsing": "use a number, e.g. 3.0e-5",
    "finite_number": "use a finite number",
    "bool_type": "use true or false",
    "bool_parsing": "use true or false",
    "string_type": "use a text value (quote it)",
    "dict_type": "use a mapping (key: value lines)",
    "model_type": "use a mapping (key: value lines)",
    "model_attributes_type": "use a mapping (key: value lines)",
    "list_type": "use a list, e.g. [a, b]",
}


def _unwrap_model(annotation: Any) -> Any:
    """The BaseModel (or dict value type) inside ``X | None`` / ``Annotated[X, ...]``."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _unwrap_model(arg)
    return annotation


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class validating the mapping at ``loc`` inside a Recipe."""
    current: Any = Recipe
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = _unwrap_model(field.annotation)
        elif typing.get_origin(current) is dict:
            current = _unwrap_model(typing.get_args(current)[1])
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _dotted(loc: Iterable) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _clean_loc(loc: tuple) -> tuple:
    # pydantic adds the validator/union branch names (e.g. 'function-after[...]', 'float') to locs
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("float", "int", "str"))))


def _describe(err: dict) -> str:
    loc = _clean_loc(tuple(err.get("loc", ())))
    path = _dotted(loc)
    etype = err.get("type", "")
    value = err.get("input")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if etype == "extra_forbidden":
        model = _model_at(loc[:-1])
        choices = sorted(model.model_fields) if model else []
        hint = did_you_mean(str(loc[-1]), choices) if choices else ""
        valid = f" valid keys here: {', '.join(choices)}" if choices else ""
        return f"{path}: unknown key{hint}. Fix: remove or rename it;{valid}"
    # a model-level check (value_error on a whole mapping) names the field in its message
    shown = "" if etype == "missing" or (etype == "value_error" and isinstance(value, Mapping)) else f" = {value!r}"
    if etype == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = [c.strip("'") for c in expected.replace(" or ", ", ").split(", ")]
        return f"{path}{shown}: not allowed{did_you_mean(str(value), choices)}. Fix: use one of {expected}"
    if etype in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[etype]
        bound = next(iter(ctx.values()), "")
        return f"{path}{shown}: {msg}. Fix: use a value {op} {bound}"
    fix = _FIX_BY_TYPE.get(etype)
    return f"{path}{shown}: {msg}" + (f". Fix: {fix}" if fix else "")


def _raise_validation(exc: ValidationError, source: str) -> typing.NoReturn:
    problems = [_describe(e) for e in exc.errors(include_url=False)]
    if len(problems) == 1:
        raise RecipeError(f"{source}: {problems[0]}") from None
    listed = "\n".join(f"  - {p}" for p in problems)
    raise RecipeError(f"{source}: {len(problems)} problems:\n{listed}") from None


# ---------------------------------------------------------------------------------- loss registry
#: Loss constructor arguments the trainer sets (from the data, the task or its loss contract); a recipe
#: never writes them.
TRAINER_PARAMS = ("counts", "priors", "num_samples", "parent_of", "names", "kind", "reduction", "absent_index")
#: Constructor arguments that carry class weights (filled by the ``weighting`` section).
CLASS_WEIGHT_PARAMS = ("alpha", "weight", "pos_weight")


def _loss_registry():
    """The :mod:`tailtune.losses.registry` module (imported lazily: torch is only needed here)."""
    from tailtune.losses import registry

    return registry


def _num_classes(task: Any) -> int:
    if task.kind == "aspects":
        return len(task.polarities) + 1
    if task.kind == "binary":
        return 1
    return len(task.labels)


def _placeholders(factory_params: Iterable[str], given: Mapping[str, Any], task: Any) -> dict[str, Any] | None:
    """Stand-ins for the data-derived arguments so a loss can be built once to check its parameters;
    ``None`` when they cannot be made without the data (no task yet)."""
    out: dict[str, Any] = {}
    for name in factory_params:
        if name in given or name not in ("counts", "num_samples", "parent_of", "names"):
            continue
        if task is None:
            return None
        if name == "counts":
            out[name] = [1.0] * _num_classes(task)
        elif name == "num_samples":
            out[name] = 2
        elif name == "parent_of":
            out[name] = dict(task.hierarchy or {})
        elif name == "names":
            out[name] = list(task.labels)
    return out


def _class_weight_target(recipe: Recipe, kind: str) -> str | None:
    """The loss argument the weighting section fills for ``kind`` (the trainer's rule), or None."""
    w = recipe.weighting
    if w.scheme == "uniform" or w.apply_to == "none":
        return None
    if w.apply_to == "auto":
        return "pos_weight" if kind in ("binary", "multilabel") else "alpha"
    return w.apply_to


def check_losses(recipe: Recipe, *, kind: str | None = None, task: Any = None, source: str = "recipe") -> None:
    """Check every loss part against :mod:`tailtune.losses`: the name is registered, it exists for the
    task kind (when known), its parameters are ones the loss accepts, and (when the task is known, or
    the loss needs nothing from the data) that the loss can be built with them.

    Raises:
        RecipeError: naming ``loss.<part>``, the bad name or parameter, and the valid choices.
    """
    import inspect

    registry = _loss_registry()
    kind = kind or (task.kind if task is not None else None) or recipe.task.kind
    names = list(registry.available())
    for key, part in recipe.loss.items():
        name = part.loss_type(key)
        where = f"loss.{key}" + (".type" if part.type else "")
        if name not in names:
            raise RecipeError(
                f"{source}: {where} = {name!r}: not a registered loss{did_you_mean(name, names)}. "
                f"Fix: use one of {', '.join(sorted(names))} (or name the part freely and set type: to one)"
            )
        if kind is None:
            continue
        kind_names = list(registry.available(kind=kind))
        if name not in kind_names:
            raise RecipeError(
                f"{source}: {where} = {name!r}: not available for {kind} tasks. "
                f"Fix: use one of {', '.join(sorted(kind_names))}"
            )
        params = dict(part.params)
        spec = registry.spec(name, kind=kind)
        accepted = [p for p in inspect.signature(spec.factory).parameters if p != "self"]
        settable = [p for p in accepted if p not in TRAINER_PARAMS]
        for param in params:
            if param in TRAINER_PARAMS and param in accepted:
                raise RecipeError(
                    f"{source}: loss.{key}.{param}: set by the trainer (from the data and the task), not in the "
                    "recipe. Fix: remove it"
                )
            if param not in accepted:
                raise RecipeError(
                    f"{source}: loss.{key}.{param}: {spec.name} has no parameter {param!r}"
                    f"{did_you_mean(param, settable)}. Fix: use one of {', '.join(settable) or '(none)'}"
                )
        target = _class_weight_target(recipe, kind)
        if target is not None and target in params:
            raise RecipeError(
                f"{source}: loss.{key}.{target} is set and weighting (scheme {recipe.weighting.scheme!r}, apply_to "
                f"{recipe.weighting.apply_to!r}) also fills {target!r}: class weights would be applied twice. "
                f"Fix: remove loss.{key}.{target} or set weighting.scheme: uniform"
            )
        if "parent_of" in accepted and task is not None and not task.hierarchy:
            raise RecipeError(
                f"{source}: loss.{key} ({spec.name}) needs a label hierarchy. "
                "Fix: set task.hierarchy: {child: parent, ...} or remove this loss part"
            )
        extra = _placeholders(accepted, params, task)
        if extra is None:
            continue
        try:
            registry.get(name, kind=kind, **params, **extra)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf), e.g. ignore_index: .inf
            raise RecipeError(
                f"{source}: loss.{key} ({spec.name}) {params!r}: {exc}. "
                "Fix: correct the parameter (see docs/recipes.md, section loss)"
            ) from exc


# ------------------------------------------------------------------------------------ loading
def recipe_from_dict(data: Mapping[str, Any] | None, *, source: str = "recipe", check_registry: bool = True) -> Recipe:
    """Validate a recipe mapping; raise one :class:`RecipeError` listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RecipeError(
            f"{source}: the recipe must be a mapping of sections (task:, data:, model:, ...), "
            f"got {type(data).__name__}"
        )
    try:
        recipe = Recipe.model_validate(dict(data))
    except ValidationError as exc:
        _raise_validation(exc, source)
    if check_registry:
        check_losses(recipe, source=source)
    return recipe


def read_recipe_file(path: str | os.PathLike) -> dict[str, Any]:
    """Safely load a recipe file (``yaml.SafeLoader`` + YAML 1.2 floats such as ``1e-5``); missing files and YAML syntax errors become RecipeError."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found. Fix: check the path (or use a packaged preset: tailtune train --preset NAME)")
    try:
        data = yaml_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"{path}:{where}: not valid YAML ({exc.problem}). Fix: correct the syntax there") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}). Fix: save the recipe as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({exc}). Fix: correct the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RecipeError(f"{path}: the recipe must be a mapping of sections (task:, data:, ...), not a {type(data).__name__}")
    return dict(data)


def load_recipe(path: str | os.PathLike, overrides: Iterable[Override] = ()) -> Recipe:
    """Read, override and validate a recipe file.

    ``overrides`` are ``"dotted.path=value"`` strings (YAML-typed values), ``"~dotted.path"`` deletions
    or ``(path, value)`` tuples, applied in order before validation (see
    :mod:`tailtune.training.overrides`). Relative ``data.path``/``output`` are kept as written and
    resolved against the working directory by the trainer.

    Raises:
        RecipeError: unreadable file, bad YAML, or any invalid field (all listed, each with its
            dotted path, the value and the fix).
    """
    data = read_recipe_file(path)
    data = apply_overrides(data, overrides)
    return recipe_from_dict(data, source=str(path))


def resolved_recipe_dict(recipe: Recipe) -> dict[str, Any]:
    """The fully resolved recipe (every default filled in, plus ``tailtune_version``), JSON/YAML-safe.

    A run writes ``yaml.safe_dump(resolved_recipe_dict(recipe), sort_keys=False)`` to ``recipe.yaml``;
    loading it back gives an equal :class:`Recipe`.
    """
    import tailtune

    out = recipe.model_dump(mode="json")
    for part in out["loss"].values():
        if part.get("type") is None:
            part.pop("type", None)
    out["tailtune_version"] = tailtune.__version__
    return out


def dump_recipe_yaml(recipe: Recipe) -> str:
    """``resolved_recipe_dict`` as YAML text (sections in the documented order)."""
    return yaml.safe_dump(resolved_recipe_dict(recipe), sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------------------- task checks
def validate_against_task(recipe: Recipe, task: Any, *, source: str = "recipe") -> None:
    """Check the recipe against the data's :class:`~tailtune.data.TaskSpec` (before any model loads).

    Checks: ``task.kind``/``labels``/``polarities``/``hierarchy`` agree with the data; class
    ``weighting.overrides`` name real classes (labels; for aspects the polarities or ``absent``);
    ``apply_to: pos_weight`` only for binary/multilabel; every loss part exists for the task kind and
    accepts its parameters.

    Raises:
        RecipeError: naming the field, the bad value and the valid names.
    """
    kind = task.kind
    labels = list(task.labels)
    rt = recipe.task
    if rt.kind is not None and rt.kind != kind:
        raise RecipeError(
            f"{source}: task.kind = {rt.kind!r} but the data is a {kind!r} task. "
            f"Fix: set task.kind: {kind} or check data.path/data.labels"
        )
    if rt.labels is not None and list(rt.labels) != labels:
        raise RecipeError(
            f"{source}: task.labels = {rt.labels!r} differ from the data's labels {labels!r}. "
            "Fix: list the data's labels in their order, or remove task.labels"
        )
    if rt.polarities is not None and list(rt.polarities) != list(getattr(task, "polarities", [])):
        raise RecipeError(
            f"{source}: task.polarities = {rt.polarities!r} differ from the data's "
            f"{list(getattr(task, 'polarities', []))!r}. Fix: match them or remove task.polarities"
        )
    if rt.hierarchy:
        if kind != "multilabel":
            raise RecipeError(f"{source}: task.hierarchy is for multilabel tasks, not {kind!r}. Fix: remove it")
        for child, parent in rt.hierarchy.items():
            for name in (child, parent):
                if name not in labels:
                    raise RecipeError(
                        f"{source}: task.hierarchy names {name!r}, which is not a label"
                        f"{did_you_mean(name, labels)}. Fix: use label names from the data ({_preview(labels)})"
                    )
    if kind == "aspects":
        classes = list(getattr(task, "aspect_classes", [*task.polarities, "absent"]))
        what = "aspect class (polarity or 'absent')"
    else:
        classes, what = labels, "label"
    for name in recipe.weighting.overrides:
        if name not in classes:
            raise RecipeError(
                f"{source}: weighting.overrides.{name}: {name!r} is not a {what}{did_you_mean(name, classes)}. "
                f"Fix: use one of {_preview(classes)}"
            )
    if recipe.weighting.apply_to == "pos_weight" and kind not in ("binary", "multilabel"):
        raise RecipeError(
            f"{source}: weighting.apply_to = 'pos_weight' is for binary/multilabel tasks, not {kind!r}. "
            "Fix: use 'weight', 'alpha' or 'auto'"
        )
    check_losses(recipe, kind=kind, task=task, source=source)


def _preview(names: list[str], n: int = 12) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


# ------------------------------------------------------------------------------------ presets
#: The one knob ``NAME:VALUE`` sets for each preset (``focal:1`` -> ``loss.focal.gamma=1``).
PRESET_KNOBS: dict[str, str] = {
    "focal": "loss.focal.gamma",
    "weighted-ce": "weighting.cap",
    "class-balanced": "weighting.beta",
    "label-smoothing": "loss.label_smoothing.label_smoothing",
    "supcon": "loss.supcon.weight",
    "logit-adjust": "loss.logit_adjusted.tau",
    "asl": "loss.asl.gamma_neg",
}


def _preset_dir():
    from importlib import resources

    return resources.files("tailtune") / "recipes"


def available_presets() -> list[str]:
    """Names of the packaged preset recipes (``ce``, ``focal``, ``weighted-ce``, ..., ``demo``)."""
    return sorted(p.name[: -len(".yaml")] for p in _preset_dir().iterdir() if p.name.endswith(".yaml"))


def preset_dict(name: str) -> dict[str, Any]:
    """The raw mapping of a preset; ``NAME:VALUE`` also sets the preset's knob (see PRESET_KNOBS)."""
    base, _, knob_value = str(name).partition(":")
    names = available_presets()
    if base not in names:
        raise RecipeError(
            f"preset {name!r}: no such preset{did_you_mean(base, names)}. "
            f"Fix: use one of {', '.join(names)}, or pass a recipe file path"
        )
    text = (_preset_dir() / f"{base}.yaml").read_text(encoding="utf-8")
    data = dict(yaml_load(text) or {})
    if knob_value:
        if base not in PRESET_KNOBS:
            raise RecipeError(
                f"preset {name!r}: preset {base!r} has no ':VALUE' knob. "
                f"Fix: use {base!r}, or one of {', '.join(f'{k}:VALUE' for k in sorted(PRESET_KNOBS))}"
            )
        try:
            value = yaml_load(knob_value)
        except yaml.YAMLError as exc:
            raise RecipeError(f"preset {name!r}: {knob_value!r} is not a value ({exc}). Fix: write NAME:NUMBER, e.g. focal:1") from None
        data = apply_overrides(data, [(PRESET_KNOBS[base], value)])
        data["name"] = str(name)
    return data


def load_preset(name: str, overrides: Iterable[Override] = ()) -> Recipe:
    """Load a packaged preset (``"focal"``, ``"focal:1"``, ``"weighted-ce"``, ``"demo"``, ...).

    ``overrides`` are applied on top (e.g. ``["data.path=../shared/data/sms_spam",
    "task.kind=binary"]``). The preset's loss names are checked against the registry like a file's.

    Example:
        >>> load_preset("focal:1").loss["focal"].params["gamma"]  # doctest: +SKIP
        1
    """
    data = apply_overrides(preset_dict(name), overrides)
    return recipe_from_dict(data, source=f"preset {name!r}")
