"""Hyper-parameter sweeps with Optuna: TPE sampling, pruning from the per-epoch validation metric.

``sweep(recipe, space=SPACE.yaml, trials=N)`` runs ``N`` trials of one study. Each trial samples the
space, applies the values to the recipe as dotted overrides (the same paths as ``--set``), trains,
and returns the best VALIDATION score of ``metric`` (the test split is never looked at). Storage:
a SQLite file ``<out_dir>/sweep.db`` by default; an RDB URL (``postgresql://user@host:5432/db``)
lets workers on several machines share one study — start the same command on each, with the same
``--storage`` and ``--study`` (workers that start at the same moment against an empty database
retry the schema set-up race, see :func:`_create_study`).

Objectives:

``train`` (default)
    a full fine-tune through :func:`tailtune.training.train` into ``<out_dir>/trial-<number>/``.
    :class:`OptunaPruningCallback` reports ``eval_<metric>`` after every epoch to the trial and stops
    training when the pruner (median by default) says so; the trial is then marked pruned.
``screen``
    a screening head on cached frozen-encoder embeddings (:mod:`tailtune.experiments.screen`),
    seconds per trial; ``head.*`` paths in the space (``head.lr``, ``head.hidden``, ...) tune the head,
    all other paths the recipe (loss parameters, weighting). Pruned from the per-epoch validation
    macro-F1 the same way.

Space file (YAML mapping, one entry per dotted path)::

    optim.lr:          {type: float, low: 1.0e-5, high: 1.0e-4, log: true}
    loss.focal.gamma:  {type: float, low: 0.0, high: 3.0, step: 0.5}
    train.batch_size:  {type: categorical, choices: [16, 32, 64]}
    model.freeze_layers: {type: int, low: 0, high: 4}
    weighting.scheme:  [uniform, inverse, effective_number]     # a bare list = categorical

``float``/``int`` take ``low``, ``high`` and optionally ``log: true`` or ``step`` (not both);
``categorical`` takes ``choices`` (numbers, strings, booleans or null).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from transformers import TrainerCallback

from tailtune.data import load_dataset
from tailtune.errors import OptionError, RecipeError, check_int, did_you_mean
from tailtune.experiments.ablate import recipe_label
from tailtune.experiments.embeddings import get_embeddings
from tailtune.experiments.screen import (
    DEFAULT_MODEL,
    HeadConfig,
    RecipeSpec,
    parse_recipe_specs,
    prepare_recipe,
    target_tensor,
    train_head,
)
from tailtune.recipe import apply_overrides, recipe_from_dict
from tailtune.training.pipeline import train

__all__ = ["OptunaPruningCallback", "Param", "SweepResult", "load_space", "parse_space", "sweep"]

PARAM_TYPES = ("float", "int", "categorical")
OBJECTIVES = ("train", "screen")
HEAD_FIELDS = ("hidden", "dropout", "lr", "weight_decay", "batch_size", "max_epochs", "patience")


@dataclass(frozen=True)
class Param:
    """One dimension of the search space."""

    path: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None

    def suggest(self, trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.path, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.path, float(self.low), float(self.high), step=self.step, log=self.log)


def parse_space(space: Mapping[str, Any], *, source: str = "space") -> list[Param]:
    """Validate a space mapping (see the module docstring); RecipeError naming file, path and fix."""
    if not isinstance(space, Mapping) or not space:
        raise RecipeError(f"{source}: the space must be a non-empty mapping of dotted paths to ranges, e.g. "
                          "'optim.lr: {type: float, low: 1.0e-5, high: 1.0e-4, log: true}'")
    out = []
    for path, spec in space.items():
        where = f"{source}: {path}"
        if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
            raise RecipeError(f"{source}: {path!r} is not a dotted path like optim.lr")
        if isinstance(spec, list):
            spec = {"type": "categorical", "choices": spec}
        if not isinstance(spec, Mapping):
            raise RecipeError(f"{where}: expected a mapping {{type, low, high}} or a list of choices, got {spec!r}")
        kind = spec.get("type")
        if kind not in PARAM_TYPES:
            raise RecipeError(f"{where}.type = {kind!r}: not a parameter type{did_you_mean(str(kind), PARAM_TYPES)}. "
                              f"Fix: use one of {', '.join(PARAM_TYPES)}")
        allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log", "step"}
        extra = sorted(set(spec) - allowed)
        if extra:
            raise RecipeError(f"{where}: unknown key {extra[0]!r}{did_you_mean(extra[0], allowed)}; "
                              f"a {kind} range takes {', '.join(sorted(allowed))}")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise RecipeError(f"{where}.choices: must be a non-empty list, got {choices!r}")
            out.append(Param(path, kind, choices=tuple(choices)))
            continue
        low, high = spec.get("low"), spec.get("high")
        for name, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise RecipeError(f"{where}.{name} = {value!r}: must be a finite number")
        if kind == "int" and (int(low) != low or int(high) != high):
            raise RecipeError(f"{where}: an int range needs whole-number low/high, got {low!r}..{high!r}")
        if not low < high:
            raise RecipeError(f"{where}: low={low!r} must be below high={high!r}")
        log = spec.get("log", False)
        step = spec.get("step")
        if not isinstance(log, bool):
            raise RecipeError(f"{where}.log = {log!r}: use true or false")
        if log and low <= 0:
            raise RecipeError(f"{where}: log: true needs low > 0, got {low!r}")
        if log and step is not None:
            raise RecipeError(f"{where}: give log or step, not both")
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0):
            raise RecipeError(f"{where}.step = {step!r}: must be a number > 0")
        out.append(Param(path, kind, float(low), float(high), log, None if step is None else float(step)))
    return out


def load_space(path: str | os.PathLike) -> list[Param]:
    """Read and validate a SPACE.yaml file."""
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"{p}: space file not found. Fix: check the path")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{p}: not valid YAML ({exc})") from None
    return parse_space(data, source=str(p))


class OptunaPruningCallback(TrainerCallback):
    """Report the validation ``metric`` after every epoch to an Optuna trial; stop when it is pruned.

    Only ``control`` changes (the run directory is the trainer's); ``pruned`` tells the objective to
    raise ``optuna.TrialPruned`` after training returns.
    """

    def __init__(self, trial, metric: str = "macro_f1"):
        self.trial = trial
        self.metric = metric
        self.pruned = False

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        key = f"eval_{self.metric}"
        if not metrics or key not in metrics:
            return control
        step = int(round(state.epoch or 0))
        self.trial.report(float(metrics[key]), step=step)
        if self.trial.should_prune():
            self.pruned = True
            control.should_training_stop = True
        return control


@dataclass
class SweepResult:
    study_name: str
    storage: str
    best_value: float | None
    best_params: dict
    trials: list[dict]

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _storage_url(storage: str | None, out_dir: Path) -> str:
    if storage:
        return storage
    out_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(out_dir / 'sweep.db').resolve()}"


def _split_params(values: Mapping[str, Any]) -> tuple[dict, list[tuple[str, Any]]]:
    head, recipe = {}, []
    for path, value in values.items():
        if path.startswith("head."):
            name = path[len("head."):]
            if name not in HEAD_FIELDS:
                raise RecipeError(f"space: {path}: unknown head field{did_you_mean(name, HEAD_FIELDS)}; "
                                  f"head fields: {', '.join(HEAD_FIELDS)}")
            head[name] = value
        else:
            recipe.append((path, value))
    return head, recipe


def _check_loss_metric(metric: str, paths: list[str]) -> None:
    """Trials whose losses differ cannot be ranked by their loss values (focal < CE by construction)."""
    from tailtune.diagnostics.loss_scale import is_loss_metric, scale_changing

    changing = scale_changing(paths)
    if is_loss_metric(metric) and changing:
        raise RecipeError(
            f"--metric {metric}: the space varies {', '.join(changing)}, which changes what the loss computes, so the "
            "trials' loss values are not comparable (a larger focal gamma lowers the loss of every example without "
            "a better model). Fix: rank trials by a metric, e.g. --metric macro_f1"
        )


def sweep(
    recipe: str,
    *,
    space: str | os.PathLike | Mapping[str, Any],
    trials: int,
    out_dir: str | os.PathLike,
    storage: str | None = None,
    study_name: str | None = None,
    metric: str = "macro_f1",
    objective: str = "train",
    data: str | None = None,
    overrides: Iterable[str] = (),
    seed: int | None = None,
    model: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    callbacks=(),
    log=None,
) -> SweepResult:
    """Run ``trials`` Optuna trials (TPE sampler, median pruner) of one study; see the module docstring.

    Args:
        recipe: a preset spec (``focal``, ``focal:1``) or a recipe file.
        space: SPACE.yaml path or a mapping.
        trials: trials THIS process runs (several processes may share the study).
        out_dir: trial run dirs and the default SQLite storage.
        storage: an Optuna storage URL (SQLite file by default, PostgreSQL to share across machines).
        study_name: default ``sweep-<recipe label>``; the study is created or joined.
        metric: validation metric maximised (``loss`` is minimised).
        objective: ``train`` (full fine-tunes) or ``screen`` (heads on cached embeddings; needs ``data``).
        data: data path (``screen``; for ``train`` it becomes ``data.path``).
        overrides: ``--set`` strings applied to the recipe before the sampled values.
        seed: TPE sampler seed (leave None when several workers share a study).
    """
    check_int("trials", trials)
    if objective not in OBJECTIVES:
        raise OptionError(f"objective={objective!r} must be one of {list(OBJECTIVES)}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise OptionError(f"seed={seed!r}: the TPE sampler's seed must be an integer in [0, 2**32), e.g. 13")
    params = load_space(space) if not isinstance(space, Mapping) else parse_space(space)
    _check_loss_metric(metric, [p.path for p in params])
    spec = parse_recipe_specs([recipe])[0]
    out = Path(out_dir)
    url = _storage_url(storage, out)
    name = study_name or f"sweep-{recipe_label(spec.spec)}"
    overrides = list(overrides)
    if data is not None and objective == "train":
        overrides.append(f"data.path={data}")
    direction = "minimize" if metric == "loss" else "maximize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _create_study(
        url,
        study_name=name,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    screen_ctx: dict[str, Any] = {}
    if objective == "screen":
        if data is None:
            raise RecipeError("sweep --objective screen needs --data DATA (the dataset whose embeddings to use)")
        screen_ctx = _screen_context(data, model=model, cache_dir=cache_dir)
    trial_fn = _Trial(params, spec, overrides, out, metric=metric, direction=direction, objective=objective,
                      screen_ctx=screen_ctx, callbacks=list(callbacks), say=log or (lambda _m: None))
    study.optimize(trial_fn, n_trials=trials, catch=())
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best_value = study.best_value if done else None
    best_params = study.best_params if done else {}
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             "user_attrs": t.user_attrs} for t in study.trials]
    return SweepResult(name, url, best_value, best_params, rows)


@dataclass
class _Trial:
    """One trial of a study: sample the space, apply it to the recipe, score it (the Optuna objective)."""

    params: list[Param]
    spec: RecipeSpec
    overrides: list
    out: Path
    metric: str
    direction: str
    objective: str
    screen_ctx: dict
    callbacks: list
    say: Any

    def __call__(self, trial) -> float:
        values = {p.path: p.suggest(trial) for p in self.params}
        head_values, recipe_values = _split_params(values)
        raw = apply_overrides(self.spec.raw, [*self.overrides, *recipe_values])
        start = time.perf_counter()
        if self.objective == "screen":
            score = _screen_trial(trial, raw, self.spec, head_values, self.screen_ctx, seed=trial.number)
        else:
            score = self._train_trial(trial, raw)
        self.say(f"trial {trial.number}: {self.metric}={score:.4f} in {time.perf_counter() - start:.1f} s  {values}")
        return float(score)

    def _train_trial(self, trial, raw: dict) -> float:
        """A full fine-tune into ``trial-<number>/`` (the training pipeline); its best validation score."""
        run_dir = self.out / f"trial-{trial.number}"
        raw = apply_overrides(raw, [("output", str(run_dir))])
        parsed = recipe_from_dict(raw, source=f"{self.spec.source} (trial {trial.number})")
        pruning = OptunaPruningCallback(trial, self.metric)
        result = train(parsed, callbacks=[pruning, *self.callbacks])
        trial.set_user_attr("run_dir", str(run_dir))
        if pruning.pruned:
            self.say(f"trial {trial.number}: pruned after {len(result.history)} epochs")
            raise optuna.TrialPruned()
        scores = [row.get("validation", {}).get(self.metric) for row in result.history]
        scores = [s for s in scores if isinstance(s, (int, float))]
        if not scores:
            raise RecipeError(f"trial {trial.number}: no validation {self.metric!r} in the history")
        return min(scores) if self.direction == "minimize" else max(scores)


def _create_study(url: str, *, attempts: int = 8, **kwargs):
    """Create or join a study. Workers that start together against an EMPTY database race to create
    Optuna's tables (one gets a duplicate-key error from the schema set-up); the loser waits a moment
    and joins, which then finds the tables and the study in place."""
    for attempt in range(attempts):
        try:
            return optuna.create_study(storage=url, load_if_exists=True, **kwargs)
        except Exception as exc:  # sqlalchemy IntegrityError/ProgrammingError from the concurrent set-up
            module = type(exc).__module__
            if attempt == attempts - 1 or not (module.startswith("sqlalchemy") or "Duplicated" in type(exc).__name__):
                raise
            time.sleep(0.2 + random.random() * 0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _screen_context(data: str, *, model: str | None, cache_dir) -> dict:
    loaded = load_dataset(data)
    splits = {k: loaded.splits[k] for k in ("train", "validation") if k in loaded.splits}
    if "validation" not in splits:
        raise RecipeError(f"{data}: a sweep needs a validation split (it never scores test)")
    emb = get_embeddings({k: list(v["text"]) for k, v in splits.items()}, model=model or DEFAULT_MODEL,
                         cache_dir=cache_dir, show_progress=False)
    labels = {k: v["labels"] for k, v in splits.items()}
    return {"task": loaded.task, "features": emb.arrays, "labels": labels,
            "targets": {k: target_tensor(loaded.task, labels[k]) for k in splits}}


def _screen_trial(trial, raw: dict, spec, head_values: dict, ctx: dict, *, seed: int) -> float:
    try:
        head = HeadConfig(**head_values)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"space: head values {head_values}: {exc}") from None
    prepared = prepare_recipe(RecipeSpec(spec.spec, raw, spec.source), ctx["task"], ctx["labels"]["train"])
    pruned = {"flag": False}

    def on_epoch(epoch: int, score: float) -> bool:
        trial.report(score, step=epoch)
        if trial.should_prune():
            pruned["flag"] = True
            return True
        return False

    res = train_head(prepared, ctx["task"], ctx["features"], ctx["targets"], seed=seed, head=head, on_epoch=on_epoch)
    if pruned["flag"]:
        raise optuna.TrialPruned()
    return float(res["best_validation_macro_f1"])
