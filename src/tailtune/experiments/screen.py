"""Fast recipe screening: one frozen-encoder pass, then a small head per recipe x seed.

``screen(data, recipes=[...], seeds=5)``:

1. loads the data (:func:`tailtune.data.load_dataset`; it needs train, validation and test splits);
2. embeds every text once with the frozen encoder (:mod:`tailtune.experiments.embeddings`, cached
   on disk: a second call with the same model, texts and max_length does no encoder work);
3. for every recipe and seed trains a small head (linear, or one hidden layer of ``hidden`` units
   with GELU and dropout; plus the recipe's projection head when it has ``model.projection_dim``)
   on the cached embeddings with the recipe's REAL loss: the same
   :class:`~tailtune.losses.CompositeLoss` that ``tailtune train`` builds (registry losses, class
   weights from :mod:`tailtune.weighting` applied as the recipe's ``weighting.apply_to`` says, the
   class-balanced sampler and confidence sample weights when the recipe asks for them, gamma
   schedules driven by the epoch progress), AdamW, early stopping on validation macro-F1 with the
   best epoch's weights restored;
4. scores the test split with the default decision rule and with thresholds/biases tuned on the
   validation split only (:mod:`tailtune.evaluation.tuning`): macro-F1 and every minority class's
   recall, mean and 95% t-interval over seeds;
5. compares each recipe with the baseline (``ce`` when screened, else the first recipe) on the same
   test items: paired bootstrap interval + paired permutation p-value over the stacked seeds, and a
   :func:`~tailtune.experiments.stats.verdict`;
6. ranks the recipes and writes ``screen.json``.

Recipe specs (the mini-language of ``--recipes``, comma separated):

``name``
    a packaged preset (``ce``, ``weighted-ce``, ``focal``, ``class-balanced``, ``label-smoothing``,
    ``supcon``, ``asl``, ``logit-adjust``; ``tailtune.recipe.available_presets()``);
``name:value``
    the preset with its one knob set (``focal:1`` -> ``loss.focal.gamma=1``; the knobs are
    ``tailtune.recipe.PRESET_KNOBS``);
``path/to/recipe.yaml``
    a recipe file (its ``loss``, ``weighting``, ``sampler``, ``sample_weighting`` and
    ``model.projection_dim``/``dropout`` are used; encoder, optimiser and epochs are the screen's).

A recipe whose loss does not exist for the task kind (``asl`` is sigmoid-only, so it cannot screen a
multi-class task) is listed as skipped with the reason, not silently dropped.

Relations:
    Screening ranks recipes cheaply; ``tailtune ablate`` confirms the top ones with full
    fine-tunes (the head sees frozen features, so gains that come from reshaping the encoder, as
    supervised contrastive learning aims for, are understated here).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from tailtune.data import load_dataset
from tailtune.data.kinds import task_kind
from tailtune.errors import DataError, OptionError, RecipeError, check_int
from tailtune.evaluation.tuning import tune_decision_rule
from tailtune.experiments import stats
from tailtune.experiments.embeddings import check_threads, get_embeddings
from tailtune.metrics import classification_report, decode
from tailtune.recipe import Recipe, preset_dict, read_recipe_file, recipe_from_dict, validate_against_task
from tailtune.recipe.build import build_loss, sample_weight_fn, sampler_weights
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.resolve import ResolvedRecipe, resolve
from tailtune.utils.io import atomic_write_json

__all__ = ["HeadConfig", "PreparedRecipe", "RecipeSpec", "ScreenResult", "parse_recipe_specs", "prepare_recipe",
           "screen", "target_tensor", "train_head", "DEFAULT_RECIPES", "minority_classes"]

DEFAULT_RECIPES = ("ce", "weighted-ce", "focal:1", "focal:2", "class-balanced", "label-smoothing", "supcon",
                   "asl", "logit-adjust")
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SCREEN_JSON = "screen.json"
RANK_BY = ("macro_f1", "tuned_macro_f1")
#: the split recipes are scored and compared on: ``test`` (the default, a report), or ``validation``
#: (for choosing a recipe, as ``tailtune fit`` does: its tuned rule is then cross-fitted on halves)
SCORE_SPLITS = ("test", "validation")


# ---------------------------------------------------------------------------------------- specs
@dataclass
class RecipeSpec:
    """One screened recipe: the spec as written, its raw mapping and where it came from."""

    spec: str
    raw: dict
    source: str


def parse_recipe_specs(specs: str | Sequence[str]) -> list[RecipeSpec]:
    """``"ce,focal:1,my.yaml"`` (or a list) -> :class:`RecipeSpec` list, in order, duplicates refused.

    Raises:
        RecipeError: an unknown preset (with "did you mean"), a knob on a preset without one, an
            unreadable recipe file, or an empty list.
    """
    if isinstance(specs, str):
        items = [s.strip() for s in specs.split(",")]
    else:
        items = [str(s).strip() for s in specs]
    items = [s for s in items if s]
    if not items:
        raise RecipeError("--recipes: no recipe given. Fix: e.g. --recipes ce,focal:1,weighted-ce")
    seen: set[str] = set()
    out = []
    for item in items:
        if item in seen:
            raise RecipeError(f"--recipes: {item!r} is listed twice. Fix: list each recipe once")
        seen.add(item)
        if item.endswith((".yaml", ".yml")) or os.path.sep in item or Path(item).is_file():
            out.append(RecipeSpec(item, read_recipe_file(item), item))
        else:
            out.append(RecipeSpec(item, preset_dict(item), f"preset {item!r}"))
    return out


# ----------------------------------------------------------------------------------------- head
@dataclass(frozen=True)
class HeadConfig:
    """How the screening heads are trained (the same for every recipe).

    ``hidden=0`` is a linear head. ``lr``/``weight_decay`` are AdamW's; ``batch_size`` examples per
    step; at most ``max_epochs`` epochs, stopping after ``patience`` epochs without a better
    validation macro-F1 (the best epoch's weights are kept).
    """

    hidden: int = 256
    dropout: float = 0.1
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 6

    def __post_init__(self):
        for name in ("hidden", "batch_size", "max_epochs", "patience"):
            value = getattr(self, name)
            check_int(name, value, low=0 if name == "hidden" else 1)
        if not 0 <= self.dropout < 1:
            raise OptionError(f"dropout={self.dropout!r} must be in [0, 1)")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise OptionError(f"lr={self.lr!r} must be > 0 and weight_decay={self.weight_decay!r} >= 0")


def _head_module(in_dim: int, out_dim: int, cfg: HeadConfig, *, dropout: float, projection_dim: int | None):
    class ScreenHead(nn.Module):
        """Features -> (optional GELU hidden layer) -> logits; embeddings for contrastive parts are the
        L2-normalised projection when ``projection_dim`` is set, else the (hidden) features."""

        def __init__(self):
            super().__init__()
            width = cfg.hidden or in_dim
            self.body = (nn.Sequential(nn.Linear(in_dim, cfg.hidden), nn.GELU(), nn.Dropout(dropout))
                         if cfg.hidden else nn.Dropout(dropout))
            self.out = nn.Linear(width, out_dim)
            self.proj = nn.Linear(width, projection_dim) if projection_dim else None

        def forward(self, x):
            h = self.body(x)
            emb = torch.nn.functional.normalize(self.proj(h), dim=-1) if self.proj is not None else h
            return self.out(h), emb

    return ScreenHead()


def target_tensor(task, labels) -> Any:
    """Encoded targets as the loss takes them: float multi-hot (multilabel), else long."""
    y = np.asarray(labels)
    if task_kind(task).multi_hot:
        return torch.as_tensor(y.reshape(len(y), -1), dtype=torch.float32)
    return torch.as_tensor(y, dtype=torch.long)


def _loss_call(loss, logits, target, emb, *, kind: str, progress: float, sample_weight=None):
    """The loss exactly as :class:`tailtune.training.trainer.TrainModule` calls it (binary logits
    (N,), float targets; aspects (N*A, P+1) vs (N*A,), sample weights repeated per aspect)."""
    info = task_kind(kind)
    if info.is_binary:
        logits, target = logits.reshape(-1), target.float().reshape(-1)
    elif info.per_aspect:
        n, a = target.shape
        logits, target = logits.reshape(n * a, -1), target.reshape(n * a)
        if sample_weight is not None:
            sample_weight = sample_weight.repeat_interleave(a)
    total, _parts = loss(logits.float(), target, embeddings=emb.float(), sample_weight=sample_weight,
                         progress=progress)
    return total


def _fast_macro_f1(task, y_true, logits) -> float:
    tp, fp, fn, _ = stats.item_counts(y_true, decode(logits, task), task)
    return float(stats.metric_from_counts(tp.sum(0), fp.sum(0), fn.sum(0), kind=task.kind,
                                          polarities=len(task.polarities)))


@dataclass
class PreparedRecipe:
    """A screened recipe, validated against the task and resolved (:func:`tailtune.recipe.resolve`)
    with the training counts: the same loss, class weights, sampler and sample weights as training."""

    spec: RecipeSpec
    recipe: Recipe
    resolved: ResolvedRecipe
    build_loss: Callable[[], Any]
    sampler_weights: np.ndarray | None
    sample_weight_fn: Callable | None
    projection_dim: int | None
    dropout: float


def _with_source(exc: RecipeError, source: str) -> RecipeError:
    text = str(exc)
    return RecipeError(text if text.startswith(f"{source}:") else f"{source}: {text}")


def prepare_recipe(spec: RecipeSpec, task, train_labels) -> PreparedRecipe:
    """Validate ``spec`` against the task (:func:`tailtune.recipe.validate_against_task`, as training
    does), resolve it with the training counts and build its loss once.

    Raises:
        RecipeError: naming the recipe (its file or preset) and the field, e.g. a loss that does not
            exist for the task kind or a class-weight override that names no class.
    """
    # the checks in training's order (as_recipe with the registry check, then the task), so a recipe
    # with several problems is refused with the same first message by both
    recipe = recipe_from_dict(spec.raw, source=spec.source)
    try:
        validate_against_task(recipe, task, source=spec.source)
        resolved = resolve(recipe, task, ClassCounts.from_targets(task, train_labels))
    except RecipeError as exc:
        raise _with_source(exc, spec.source) from None

    def build():
        try:
            return build_loss(resolved)
        except RecipeError as exc:
            raise _with_source(exc, spec.source) from None

    build()  # fail now, not in the middle of the seeds
    return PreparedRecipe(spec, recipe, resolved, build, sampler_weights(resolved, train_labels),
                          sample_weight_fn(resolved), recipe.model.projection_dim, float(recipe.model.dropout))


def train_head(
    prepared: PreparedRecipe,
    task,
    features: Mapping[str, np.ndarray],
    targets: Mapping[str, Any],
    *,
    seed: int,
    head: HeadConfig = HeadConfig(),
    on_epoch: Callable[[int, float], bool] | None = None,
) -> dict[str, Any]:
    """Train one head for one seed; return its logits per split, epochs run and the best epoch.

    ``on_epoch(epoch, validation_macro_f1)`` is called after every epoch; returning ``True`` stops
    training (a sweep's pruner uses it).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(features["train"])
    y = targets["train"]
    n = x.shape[0]
    module = _head_module(x.shape[1], task.num_outputs, head, dropout=head.dropout if prepared.dropout is None
                          else max(head.dropout, prepared.dropout), projection_dim=prepared.projection_dim)
    loss = prepared.build_loss()
    params = list(module.parameters()) + list(loss.parameters())
    opt = torch.optim.AdamW(params, lr=head.lr, weight_decay=head.weight_decay)
    sampler = None if prepared.sampler_weights is None else torch.as_tensor(prepared.sampler_weights, dtype=torch.float64)
    x_val = torch.as_tensor(features["validation"])
    y_val = np.asarray(targets["validation"])
    best, best_state, best_epoch, bad, epoch = -math.inf, None, 0, 0, 0
    for epoch in range(1, head.max_epochs + 1):
        module.train()
        progress = (epoch - 1) / head.max_epochs
        order = (torch.multinomial(sampler, n, replacement=True, generator=gen) if sampler is not None
                 else torch.randperm(n, generator=gen))
        for start in range(0, n, head.batch_size):
            idx = order[start : start + head.batch_size]
            logits, emb = module(x[idx])
            weight = None
            if prepared.sample_weight_fn is not None:
                weight = prepared.sample_weight_fn(logits=logits.detach(), attention_mask=None)
            total = _loss_call(loss, logits, y[idx], emb, kind=task.kind, progress=progress, sample_weight=weight)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
        module.eval()
        with torch.inference_mode():
            val_logits = module(x_val)[0].numpy()
        score = _fast_macro_f1(task, y_val.numpy() if hasattr(y_val, "numpy") else y_val, val_logits)
        if score > best + 1e-12:
            best, best_epoch, bad = score, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            bad += 1
        if on_epoch is not None and on_epoch(epoch, score):
            break
        if bad >= head.patience:
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    out = {}
    with torch.inference_mode():
        for name, feats in features.items():
            out[name] = module(torch.as_tensor(feats))[0].numpy().astype(np.float32)
    return {"logits": out, "epochs": epoch, "best_epoch": best_epoch, "best_validation_macro_f1": best}


# ------------------------------------------------------------------------------------- scoring
def minority_classes(task, train_labels) -> list[str]:
    """Classes whose training count is below the mean class count (binary: the rarer class;
    multilabel: labels with fewer positives than the mean; aspects: polarities, pooled over aspects,
    below the mean polarity count — ``absent`` is never a minority)."""
    info = task_kind(task)
    counts = ClassCounts.from_targets(task, train_labels)
    if info.is_binary:
        return [task.labels[int(np.argmin(counts.values))]]
    names = list(task.polarities) if info.per_aspect else list(task.labels)
    values = np.asarray(counts.of(names))
    mean = values.mean()
    return [name for name, c in zip(names, values) if c < mean]


#: bootstrap resamples of the tuned rule per recipe and seed (``tailtune tune`` uses 100): a screen tunes
#: dozens of rules, and 30 resamples gave the same held-out gains as 100 (docs/evaluation.md)
SCREEN_TUNE_BOOTSTRAP = 30


def _tune(task, logits, y) -> Any:
    """The validation-tuned decision rule (:func:`tailtune.evaluation.tuning.tune_decision_rule`,
    bagged thresholds/biases with the out-of-bag check, no temperature): a ``PostProcess``."""
    return tune_decision_rule(logits, y, task, split="validation", temperature="none",
                              bootstrap=SCREEN_TUNE_BOOTSTRAP).postprocess


def _score(task, y_true, logits, minority, rule=None, pred=None) -> tuple[dict, np.ndarray]:
    if pred is None:
        pred = decode(logits, task) if rule is None else rule.decide(logits, task)
    report = classification_report(y_true, pred, task)
    per_class = report.get("per_class") or {}
    out = {"macro_f1": float(report["macro_f1"])}
    for name in minority:
        out[f"recall/{name}"] = float(per_class.get(name, {}).get("recall", math.nan))
    return out, pred


# -------------------------------------------------------------------------------------- result
@dataclass
class ScreenResult:
    """What :func:`screen` returns (``to_dict()`` is ``screen.json``)."""

    data: str
    task: dict
    model: str
    seeds: list[int]
    baseline: str | None
    rank_by: str
    minority: list[str]
    recipes: list[dict]
    embedding: dict
    head: dict
    timing: dict
    out_dir: Path | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data, "task": self.task, "model": self.model, "seeds": self.seeds,
            "baseline": self.baseline, "rank_by": self.rank_by, "minority_classes": self.minority,
            "embedding": self.embedding, "head": self.head,
            "timing": self.timing, "recipes": self.recipes, **self.extra,
        }

    def ranked(self) -> list[dict]:
        return [r for r in self.recipes if r["status"] == "ok"]


def _summaries(per_seed: list[dict], key: str) -> dict:
    keys = sorted({k for row in per_seed for k in row.get(key, {})})
    return {k: stats.summarize([row[key].get(k, math.nan) for row in per_seed]).to_dict() for k in keys}


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def screen(
    data: str | os.PathLike,
    *,
    recipes: str | Sequence[str] = DEFAULT_RECIPES,
    seeds: int = 5,
    seed: int = 13,
    model: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    max_length: int = 128,
    batch_size: int = 64,
    precision: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    head: HeadConfig = HeadConfig(),
    baseline: str | None = None,
    rank_by: str = "macro_f1",
    n_resamples: int = 2000,
    threads: int | None = None,
    head_threads: int = 1,
    show_progress: bool = True,
    console=None,
    score_split: str = "test",
    task=None,
) -> ScreenResult:
    """Screen ``recipes`` x ``seeds`` on ``data`` with cached frozen-encoder embeddings.

    Args:
        data: a data folder/file for :func:`tailtune.data.load_dataset` with a test split.
        recipes: spec string ``"ce,focal:1"`` or list (see the module docstring).
        seeds: seeds per recipe (``seed, seed + 1, ...``).
        model: encoder folder or hub id (default all-MiniLM-L6-v2, the packaged copy).
        out: folder for ``screen.json`` (not written when ``None``).
        max_length, batch_size, precision, cache_dir: embedding options
            (:func:`tailtune.experiments.embeddings.get_embeddings`).
        head: :class:`HeadConfig`.
        baseline: spec compared against (default ``"ce"`` when screened, else the first recipe).
        rank_by: ``"macro_f1"`` (default decision rule) or ``"tuned_macro_f1"``.
        n_resamples: bootstrap/permutation resamples of the paired tests.
        threads: torch threads for embedding (default: torch's setting).
        head_threads: torch threads while training the heads (default 1).
        score_split: ``"test"`` (default) or ``"validation"``: the split every score, ranking and
            paired test uses. With ``"validation"`` the data needs no test split (none is embedded)
            and the tuned rule is cross-fitted on validation halves.
        task: passed to :func:`tailtune.data.load_dataset` (a TaskSpec, its dict, a kind or a
            ``task.json`` path; e.g. to carry a label hierarchy).

    Raises:
        RecipeError: bad ``--recipes``; DataError: no test/validation split.

    Example:
        >>> result = screen("../shared/data/tweeteval_emotion", recipes="ce,focal:1", seeds=3)  # doctest: +SKIP
        >>> [r["spec"] for r in result.ranked()]  # doctest: +SKIP
    """
    t0, c0 = time.perf_counter(), time.process_time()
    specs = _checked_options(recipes, seeds=seeds, rank_by=rank_by, score_split=score_split, threads=threads,
                             head_threads=head_threads)
    names = [s.spec for s in specs]
    if baseline is None:
        baseline = "ce" if "ce" in names else names[0]
    elif baseline not in names:
        raise RecipeError(f"--baseline {baseline!r} is not among the screened recipes {names}")
    task, splits = _screen_splits(data, task, score_split)
    model_name = str(model) if model is not None else DEFAULT_MODEL
    seed_list = [seed + i for i in range(seeds)]
    labels = {k: v["labels"] for k, v in splits.items()}
    prepared = _prepare_all(specs, task, labels["train"])
    _check_screenable(prepared, baseline, task)
    with _torch_threads(threads):
        emb = _embed(splits, model_name, max_length=max_length, batch_size=batch_size, precision=precision,
                     cache_dir=cache_dir, threads=threads, show_progress=show_progress, console=console)
        t_emb, c_emb = time.perf_counter(), time.process_time()
        # the heads are small matrices: one thread avoids OpenMP synchronisation that dominates such
        # ops (and collapses on a shared machine); ``head_threads`` overrides
        with _torch_threads(head_threads):
            runs = _run_heads(prepared, task, emb.arrays, labels, seed_list, head, score_split=score_split,
                              show_progress=show_progress, console=console)
    t_heads, c_heads = time.perf_counter(), time.process_time()
    y_score = np.asarray(labels[score_split])
    results = _rank([_entry(spec, prepared[spec.spec], runs, baseline, task, y_score, n_resamples) for spec in specs],
                    rank_by)
    result = ScreenResult(
        data=str(data), task=task.to_dict(), model=model_name, seeds=seed_list, baseline=baseline, rank_by=rank_by,
        minority=minority_classes(task, labels["train"]), recipes=_clean(results),
        embedding={"key": emb.key, "path": str(emb.path), "cache_hit": emb.hit, "seconds": round(emb.seconds, 3),
                   "max_length": max_length, "precision": emb.meta.get("precision"),
                   "dim": int(emb.arrays["train"].shape[1]),
                   "counts": {k: int(v.shape[0]) for k, v in emb.arrays.items()}},
        head={**head.__dict__, "n_resamples": n_resamples},
        timing={"embedding_s": round(t_emb - t0, 3), "heads_s": round(t_heads - t_emb, 3),
                "total_s": round(time.perf_counter() - t0, 3), "embedding_cpu_s": round(c_emb - c0, 3),
                "heads_cpu_s": round(c_heads - c_emb, 3), "total_cpu_s": round(time.process_time() - c0, 3)},
        out_dir=Path(out) if out is not None else None,
        extra={"score_split": score_split},
    )
    if out is not None:
        atomic_write_json(Path(out) / SCREEN_JSON, result.to_dict())
    return result


# ------------------------------------------------------------------------------ screen's steps
def _checked_options(recipes, *, seeds, rank_by, score_split, threads, head_threads) -> list[RecipeSpec]:
    """The parsed recipe specs, once every option is in range (OptionError, RecipeError before any data)."""
    check_int("seeds", seeds, example=5)
    if rank_by not in RANK_BY:
        raise OptionError(f"rank_by={rank_by!r} must be one of {list(RANK_BY)}")
    if score_split not in SCORE_SPLITS:
        raise OptionError(f"score_split={score_split!r} must be one of {list(SCORE_SPLITS)}")
    check_threads(threads)
    check_threads(head_threads)
    specs = parse_recipe_specs(recipes)
    for spec in specs:  # a bad value (focal:abc) is the user's typo: say so before the data and embeddings
        recipe_from_dict(spec.raw, source=spec.source, check_registry=False)
    return specs


def _screen_splits(data, task, score_split: str) -> tuple[Any, dict]:
    """The task and the splits screening needs: train, validation and (scoring on test) test;
    DataError naming a missing one."""
    loaded = load_dataset(data, task=task)
    needed = ("train", "validation", "test") if score_split == "test" else ("train", "validation")
    for split in needed:
        if split not in loaded.splits or len(loaded.splits[split]) == 0:
            raise DataError(
                f"{data}: screening needs {', '.join(needed)} splits; {split!r} is missing. "
                f"Fix: provide {split}.jsonl (or .csv/.parquet) in the data folder"
            )
    return loaded.task, {k: loaded.splits[k] for k in needed}


@contextmanager
def _torch_threads(threads: int | None):
    """torch's intra-op thread count set to ``threads`` (unchanged for ``None``) inside the block."""
    previous = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(previous)


def _embed(splits: dict, model_name: str, **options):
    texts = {k: list(v["text"]) for k, v in splits.items()}
    return get_embeddings(texts, model=model_name, **options)


def _prepare_all(specs: list[RecipeSpec], task, train_labels) -> dict[str, PreparedRecipe | str]:
    """Each spec prepared, or the reason it cannot be screened (it is then listed as skipped)."""
    prepared: dict[str, PreparedRecipe | str] = {}
    for spec in specs:
        try:
            prepared[spec.spec] = prepare_recipe(spec, task, train_labels)
        except (RecipeError, TypeError, ValueError) as exc:
            prepared[spec.spec] = str(exc)
    return prepared


def _check_screenable(prepared: dict[str, PreparedRecipe | str], baseline: str, task) -> None:
    """RecipeError (before any embedding) when the baseline, or every recipe, cannot be screened for
    this task: the reasons are those :func:`_prepare_all` recorded (each names its own fix)."""
    reasons = {name: why for name, why in prepared.items() if isinstance(why, str)}
    if len(reasons) == len(prepared):
        listed = "; ".join(f"{name}: {why}" for name, why in reasons.items())
        fix = "" if all("Fix:" in why for why in reasons.values()) else " Fix: pick recipes for this task kind"
        raise RecipeError(f"no recipe can be screened on this {task.kind} task ({listed}).{fix}")
    if baseline in reasons:
        why = reasons[baseline]
        fix = "" if "Fix:" in why else " Fix: choose another --baseline among the screened recipes"
        raise RecipeError(f"--baseline {baseline!r} cannot be screened on this {task.kind} task, so nothing can "
                          f"be compared with it: {why}{fix}")


def _one_seed(prep: PreparedRecipe, task, features, targets, y_true, minority, *, seed: int, head: HeadConfig,
              score_split: str = "test") -> dict:
    """One head: its scores on ``score_split`` with the default and the tuned rule."""
    t_run = time.perf_counter()
    res = train_head(prep, task, features, targets, seed=seed, head=head)
    row = {"seed": seed, "epochs": res["epochs"], "best_epoch": res["best_epoch"],
           "validation_macro_f1": res["best_validation_macro_f1"],
           **_score_seed(task, res, y_true, minority, score_split)}
    row["seconds"] = round(time.perf_counter() - t_run, 3)
    return row


def _score_seed(task, res: dict, y_true: dict, minority, score_split: str) -> dict:
    """Default and tuned scores of one head on ``score_split``. On ``test`` the rule is tuned on
    validation; on ``validation`` every item is decided by a rule tuned on the other half
    (:func:`tailtune.evaluation.crossfit.cross_fitted_decisions`), so no score saw its own items."""
    logits = res["logits"][score_split]
    default, pred = _score(task, y_true[score_split], logits, minority)
    row = {"default": default, "_pred": pred}
    if score_split == "test":
        rule = _tune(task, res["logits"]["validation"], y_true["validation"])
        row["tuned"], row["_tpred"] = _score(task, y_true["test"], logits, minority, rule)
        row["rule"] = {k: np.asarray(v).tolist() for k in ("thresholds", "biases")
                       if (v := getattr(rule, k, None)) is not None}
    else:
        from tailtune.evaluation.crossfit import cross_fitted_decisions

        tpred = cross_fitted_decisions(logits, y_true["validation"], task, temperature="none",
                                       bootstrap=SCREEN_TUNE_BOOTSTRAP)
        row["tuned"], row["_tpred"] = _score(task, y_true["validation"], logits, minority, pred=tpred)
        row["rule"] = {"cross_fitted": True}
    return row


def _run_heads(prepared: dict, task, features, labels: dict, seed_list: list[int], head: HeadConfig, *,
               show_progress: bool, console, score_split: str = "test") -> dict[str, list[dict]]:
    """Every prepared recipe x seed; a progress bar unless ``show_progress`` is off."""
    targets = {k: target_tensor(task, v) for k, v in labels.items()}
    y_true = {k: np.asarray(v) for k, v in labels.items() if k != "train"}
    minority = minority_classes(task, labels["train"])
    todo = {name: prep for name, prep in prepared.items() if not isinstance(prep, str)}
    bar = bar_task = None
    if show_progress:
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), console=console, transient=False)
        bar.start()
        bar_task = bar.add_task("heads", total=len(todo) * len(seed_list))
    runs: dict[str, list[dict]] = {}
    try:
        for name, prep in todo.items():
            rows = []
            for s in seed_list:
                if bar is not None:
                    bar.update(bar_task, description=f"heads: {name} seed {s}")
                rows.append(_one_seed(prep, task, features, targets, y_true, minority, seed=s, head=head,
                                      score_split=score_split))
                if bar is not None:
                    bar.advance(bar_task)
            runs[name] = rows
    finally:
        if bar is not None:
            bar.stop()
    return runs


def _versus(base_rows: list[dict], rows: list[dict], task, y_score, n_resamples: int) -> dict:
    """Paired bootstrap and permutation tests of ``rows`` against the baseline's, per decision rule."""
    out = {}
    for variant, key in (("default", "_pred"), ("tuned", "_tpred")):
        a = [r[key] for r in base_rows]
        b = [r[key] for r in rows]
        boot = stats.paired_bootstrap(y_score, a, b, task=task, n_resamples=n_resamples, seed=0)
        perm = stats.paired_permutation(y_score, a, b, task=task, n_resamples=n_resamples, seed=0)
        welch = stats.welch_interval([r[variant]["macro_f1"] for r in base_rows], [r[variant]["macro_f1"] for r in rows])
        out[variant] = {
            "metric": "macro_f1",
            "diff": boot.diff,
            "bootstrap_ci": [boot.ci_low, boot.ci_high],
            "bootstrap_p": boot.p_value,
            "permutation_p": perm.p_value,
            "seed_welch_ci": [welch[1], welch[2]],
            "verdict": stats.verdict(low=boot.ci_low, high=boot.ci_high, p_value=perm.p_value),
        }
    return out


def _entry(spec: RecipeSpec, prep: PreparedRecipe | str, runs: dict, baseline: str, task, y_score,
           n_resamples: int) -> dict:
    """``screen.json``'s entry of one recipe: what it resolved to, summaries over seeds, the paired tests."""
    if isinstance(prep, str):
        return {"spec": spec.spec, "status": "skipped", "reason": prep}
    rows = runs[spec.spec]
    entry: dict[str, Any] = {
        "spec": spec.spec,
        "status": "ok",
        "loss": {k: part.loss_type(k) for k, part in prep.recipe.loss.items()},
        "weighting": prep.recipe.weighting.scheme,
        "sampler": prep.recipe.sampler,
        "resolved": prep.resolved.to_dict(),
        "default": _summaries(rows, "default"),
        "tuned": _summaries(rows, "tuned"),
        "epochs": stats.summarize([r["epochs"] for r in rows]).to_dict(),
    }
    base_rows = runs.get(baseline)
    if base_rows is not None and spec.spec != baseline:
        entry["vs_baseline"] = _versus(base_rows, rows, task, y_score, n_resamples)
    entry["per_seed"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    return entry


def _rank(results: list[dict], rank_by: str) -> list[dict]:
    """Screened recipes best first by the mean macro-F1 on the scored split (default or tuned rule), skipped ones last."""
    variant = "tuned" if rank_by == "tuned_macro_f1" else "default"

    def sort_key(entry):
        if entry["status"] != "ok":
            return (1, 0.0)
        mean = entry[variant]["macro_f1"]["mean"]
        return (0, -(mean if mean is not None else -math.inf))

    results.sort(key=sort_key)
    rank = 0
    for entry in results:
        if entry["status"] == "ok":
            rank += 1
            entry["rank"] = rank
    return results
