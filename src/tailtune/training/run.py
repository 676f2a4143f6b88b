"""``train(recipe)``: a dataset and a recipe in, a trained and evaluated run directory out.

Order of work (every user error is raised before the model is loaded):

1. resolve the data (:func:`tailtune.data.load_dataset`) and the :class:`~tailtune.data.TaskSpec`;
2. validate the recipe against the task (loss names for the kind, weighting overrides naming
   known labels, the early-stopping metric, fp16 without a GPU);
3. class weights from the training counts (:mod:`tailtune.weighting`, the ONE owner: the recipe's
   ``weighting.apply_to`` decides whether they become focal ``alpha``, CE ``weight`` or ``pos_weight``);
4. the :class:`~tailtune.losses.CompositeLoss` of the recipe's named parts;
5. the model (:func:`tailtune.models.build_classifier`) and its tokenizer;
6. tokenisation (``datasets.map``; dynamic padding to a multiple of 8 in the collator);
7. :class:`~tailtune.training.trainer.TailtuneTrainer` (per-epoch history, early stopping that
   restores the best checkpoint, safetensors checkpoints pruned to best + last);
8. the run directory: ``model/``, ``eval.json``, ``predictions/<split>.npz`` (rank 0 only, atomic).

Resume: ``train(None, resume=run_dir)`` reads ``run_dir/recipe.yaml``, removes what an interrupted
run left (temporary files, incomplete checkpoints: :mod:`tailtune.training.faults`), keeps the
history rows up to the last complete checkpoint and continues from it (from the start when no
checkpoint is complete yet); on CPU with a fixed seed the final metrics equal those of an
uninterrupted run. A failed write (disk full) is a :class:`~tailtune.errors.StorageError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.errors import RecipeError, RunDirError, StorageError, did_you_mean
from tailtune.training.faults import describe_write_failure, remove_interrupted
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_jsonl

__all__ = ["RunResult", "train", "find_checkpoint", "TRAIN_EVAL_MAX"]

logger = logging.getLogger(__name__)
TRAIN_EVAL_MAX = 2000  # train examples evaluated each epoch (a fixed, seeded subsample)
_SCORE_METRICS = ("macro_f1", "micro_f1", "weighted_f1", "accuracy", "balanced_accuracy", "mcc", "loss")


@dataclass
class RunResult:
    """What :func:`train` returns: the run directory, the history rows and ``eval.json``'s content."""

    run_dir: Path
    history: list[dict] = field(default_factory=list)
    eval: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# recipe access: the pydantic model is dumped to plain dicts so this module reads field names only
def _as_recipe(recipe):
    """A :class:`~tailtune.training.recipe.Recipe` from a Recipe or a plain mapping (validated)."""
    from collections.abc import Mapping

    from tailtune.training.recipe import Recipe, recipe_from_dict

    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        return recipe_from_dict(recipe)
    raise TypeError(f"recipe must be a tailtune Recipe or a mapping, got {type(recipe).__name__}")


def _recipe_dict(recipe) -> dict:
    from tailtune.training.recipe import resolved_recipe_dict

    return resolved_recipe_dict(recipe)


def _section(cfg: dict, name: str) -> dict:
    value = cfg.get(name)
    return dict(value) if isinstance(value, dict) else {}


def _seed(cfg: dict) -> int:
    seed = _section(cfg, "train").get("seed")
    return 13 if seed is None else int(seed)


# ---------------------------------------------------------------------------------------------
def find_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest COMPLETE Trainer checkpoint of a run (:func:`~tailtune.training.faults.checkpoint_is_complete`:
    ``trainer_state.json``, written last, parses and names the step; weights and optimiser present)."""
    from tailtune.training.faults import checkpoint_is_complete

    ckpt_root = Path(run_dir) / rundir.CHECKPOINTS_DIR
    if not ckpt_root.is_dir():
        return None
    found = [(int(p.name.rsplit("-", 1)[-1]), p) for p in ckpt_root.glob("checkpoint-*") if checkpoint_is_complete(p)]
    return max(found)[1] if found else None


def _load_data(cfg: dict):
    from tailtune.data import load_dataset

    data_cfg = _section(cfg, "data")
    task_cfg = _section(cfg, "task")
    if not data_cfg.get("path"):
        raise RecipeError("data.path: missing; set it to a data folder or file (e.g. --set data.path=data/)")
    spec = {k: v for k, v in task_cfg.items() if v is not None}
    task: Any = None
    if set(spec) - {"kind"}:  # labels fix the label order; kind + hierarchy/polarities are partial specs
        task = spec
    elif spec.get("kind"):
        task = spec["kind"]
    kwargs: dict[str, Any] = {"task": task, "seed": _seed(cfg)}
    if data_cfg.get("text"):
        kwargs["text_column"] = data_cfg["text"]
    if data_cfg.get("labels"):
        kwargs["label_column"] = data_cfg["labels"]
    if data_cfg.get("val_fraction") is not None:
        kwargs["val_fraction"] = data_cfg["val_fraction"]
    if data_cfg.get("empty_text"):
        kwargs["empty_text"] = data_cfg["empty_text"]
    if data_cfg.get("label_sep"):
        kwargs["label_sep"] = data_cfg["label_sep"]
    if data_cfg.get("unused_labels"):
        kwargs["unused_labels"] = data_cfg["unused_labels"]
    loaded = load_dataset(data_cfg["path"], **kwargs)
    if task_cfg.get("kind") and loaded.task.kind != task_cfg["kind"]:
        raise RecipeError(
            f"task.kind: the recipe says {task_cfg['kind']!r} but the data at {data_cfg['path']} is "
            f"{loaded.task.kind!r}; fix task.kind or the label column"
        )
    if task_cfg.get("hierarchy") and loaded.task.hierarchy is None and loaded.task.kind == "multilabel":
        loaded.task.hierarchy = dict(task_cfg["hierarchy"])
    for split in ("train", "validation"):
        if split not in loaded.splits or len(loaded.splits[split]) == 0:
            raise RecipeError(f"data.path: {data_cfg['path']} gives no {split!r} examples")
    return loaded


# ---------------------------------------------------------------------------------------------
def _label_counts(task, labels) -> np.ndarray:
    """Training counts per class: binary [neg, pos]; multiclass C; multilabel positives per label;
    aspects (A, P+1) polarity counts per aspect."""
    y = np.asarray(labels)
    if task.kind == "binary":
        return np.bincount(y.astype(int), minlength=2)
    if task.kind == "multiclass":
        return np.bincount(y.astype(int), minlength=len(task.labels))
    if task.kind == "multilabel":
        return y.reshape(len(y), -1).sum(axis=0)
    n_cls = len(task.aspect_classes)
    return np.stack([np.bincount(y[:, a].astype(int), minlength=n_cls) for a in range(y.shape[1])])


def _validate(recipe, cfg: dict, task) -> None:
    """Recipe checks that need the task (``validate_against_task``: kinds, labels, overrides, loss
    names and parameters) plus the machine (fp16 needs a GPU); RecipeError naming field and fix."""
    import torch

    from tailtune.training.recipe import validate_against_task

    validate_against_task(recipe, task)
    metric = _section(cfg, "early_stopping").get("metric") or "macro_f1"
    if metric not in _SCORE_METRICS:
        raise RecipeError(
            f"early_stopping.metric: {metric!r} is not tracked{did_you_mean(metric, _SCORE_METRICS)}; "
            f"choose one of {', '.join(_SCORE_METRICS)}"
        )
    precision = _section(cfg, "train").get("precision") or "fp32"
    if precision == "fp16" and not torch.cuda.is_available():
        raise RecipeError("train.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on this machine")


def _class_weight_kwargs(cfg: dict, task, counts: np.ndarray, n_train: int) -> tuple[str | None, Any]:
    """(constructor argument, tensor) for the recipe's class weighting, or (None, None).

    ``apply_to``: ``alpha`` (focal alpha), ``weight`` (CE weight), ``pos_weight`` (sigmoid losses),
    ``none``; unset means ``pos_weight`` for binary/multilabel and ``alpha`` for multiclass/aspects
    (a softmax loss without ``alpha`` receives the same tensor as ``weight``).

    - multiclass: ``class_weights(counts)`` over the C classes;
    - aspects: ``class_weights`` over the P+1 polarities (``absent`` last), counts pooled over aspects;
    - ``scheme: uniform`` (the default) means no class weights at all;
    - binary/multilabel ``pos_weight``: ``neg_c / pos_c`` per label (``sqrt_inverse``: its square
      root; ``cap`` bounds it; ``overrides`` set a label's value);
    - binary/multilabel ``alpha`` (the positive share in [0, 1], torchvision's convention):
      ``pos_weight / (1 + pos_weight)``, so a 1:9 label gets alpha 0.9.
    """
    import torch

    w = _section(cfg, "weighting")
    scheme = w.get("scheme")
    apply_to = w.get("apply_to")
    if not w or scheme in (None, "none", "uniform") or apply_to == "none":
        return None, None
    kind = task.kind
    if apply_to in (None, "auto"):
        apply_to = "pos_weight" if kind in ("binary", "multilabel") else "alpha"
    from tailtune import weighting

    overrides = dict(w.get("overrides") or {})
    if kind in ("binary", "multilabel"):
        if apply_to == "weight":
            raise RecipeError(
                f"weighting.apply_to: weight is for multiclass/aspects tasks, this one is {kind}; "
                "use pos_weight or alpha"
            )
        if kind == "binary":
            pos, neg, names = [float(counts[1])], [float(counts[0])], [task.labels[1]]
        else:
            pos = [float(c) for c in counts]
            neg = [float(n_train) - c for c in pos]
            names = list(task.labels)
        try:
            values = weighting.pos_weight(pos, neg, cap=w.get("cap"), names=names, scheme=scheme,
                                          beta=float(0.999 if w.get("beta") is None else w["beta"]))
        except ValueError as exc:
            raise RecipeError(f"weighting: {exc}") from exc
        values = torch.as_tensor(values, dtype=torch.float32).clone()
        for name, value in overrides.items():
            idx = names.index(name) if name in names else 0
            values[idx] = float(value)
        if apply_to == "alpha":
            values = values / (1.0 + values)
        return apply_to, values
    if apply_to == "pos_weight":
        raise RecipeError(
            f"weighting.apply_to: pos_weight is for binary/multilabel tasks, this one is {kind}; use alpha or weight"
        )
    flat = counts.sum(axis=0) if kind == "aspects" else counts
    names = list(task.aspect_classes) if kind == "aspects" else list(task.labels)
    opts: dict[str, Any] = {"scheme": scheme}
    for key in ("beta", "cap", "normalize"):
        if w.get(key) is not None:
            opts[key] = w[key]
    try:
        values = weighting.class_weights(
            [float(c) for c in flat], overrides=overrides or None, names=names, **opts
        )
    except ValueError as exc:
        raise RecipeError(f"weighting: {exc}") from exc
    return apply_to, torch.as_tensor(values, dtype=torch.float32)


def _build_loss(cfg: dict, task, class_weight: tuple[str | None, Any], counts: np.ndarray, n_train: int):
    """The recipe's :class:`~tailtune.losses.CompositeLoss`.

    Data-dependent constructor arguments a part did not set are filled in from the training data:
    ``counts`` (logit-adjusted, LDAM, distribution-balanced; aspects: polarity counts pooled over
    aspects), ``num_samples``, ``parent_of``/``names`` (hierarchy penalty, from the task's
    hierarchy) and ``absent_index`` (aspects). Class weights go to the one argument
    ``weighting.apply_to`` names (``auto``: to every part that takes it, ``alpha`` falling back to
    ``weight`` for softmax losses; an explicit choice that a part does not take is an error).
    """
    import inspect

    from tailtune.losses import CompositeLoss
    from tailtune.losses import get as get_loss
    from tailtune.losses.registry import spec as loss_spec

    arg, tensor = class_weight
    explicit = (_section(cfg, "weighting").get("apply_to") or "auto") not in ("auto", None)
    kind = task.kind
    flat_counts = counts.sum(axis=0) if kind == "aspects" else (counts[1:] if kind == "binary" else counts)
    parts = {}
    for part, spec in _section(cfg, "loss").items():
        spec = {k: v for k, v in (spec or {}).items() if v is not None}
        weight = float(spec.pop("weight", 1.0))
        ltype = spec.pop("type", None) or part
        params = dict(spec)
        try:
            accepted = set(inspect.signature(loss_spec(ltype, kind=kind).factory).parameters)
        except (TypeError, ValueError, KeyError) as exc:
            raise RecipeError(f"loss.{part}: {exc}") from exc
        if "counts" in accepted and "counts" not in params and "priors" not in params:
            params["counts"] = [float(c) for c in flat_counts]
        if "num_samples" in accepted and "num_samples" not in params:
            params["num_samples"] = int(n_train)
        if "parent_of" in accepted and "parent_of" not in params:
            if not task.hierarchy:
                raise RecipeError(
                    f"loss.{part}: the hierarchy penalty needs task.hierarchy {{child: parent}}; add it or remove the part"
                )
            params["parent_of"] = dict(task.hierarchy)
            if "names" in accepted:
                params.setdefault("names", list(task.labels))
        if "absent_index" in accepted and kind == "aspects":
            params.setdefault("absent_index", len(task.aspect_classes) - 1)
        if arg is not None:
            target_arg = arg if arg in accepted else ("weight" if arg == "alpha" and "weight" in accepted else None)
            if target_arg is None and explicit and not _is_auxiliary_type(ltype):
                raise RecipeError(
                    f"weighting.apply_to: {arg!r} but loss part {part!r} ({ltype}) takes no {arg!r}; "
                    "set weighting.apply_to to an argument it takes, or to none"
                )
            if target_arg is not None and target_arg not in params:
                params[target_arg] = tensor
        try:
            module = get_loss(ltype, kind=kind, **params)
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"loss.{part} ({ltype}): {exc}") from exc
        parts[part] = (weight, module)
    balance = cfg.get("loss_balance") or "fixed"
    try:
        return CompositeLoss(parts, auto_balance=balance == "uncertainty")
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"loss: {exc}") from exc


def _is_auxiliary_type(name: str) -> bool:
    """Parts that score no classes themselves (contrastive on embeddings, the hierarchy penalty):
    an explicit ``weighting.apply_to`` leaves them alone instead of refusing them."""
    return name in ("supcon", "supervised_contrastive", "hierarchy")


def _sample_weight_fn(cfg: dict, task):
    sw = _section(cfg, "sample_weighting")
    if not (sw.get("length") or sw.get("confidence")):
        return None
    from tailtune import weighting

    min_weight = sw.get("min_weight")
    use_length, use_conf = bool(sw.get("length")), bool(sw.get("confidence"))
    kind = task.kind

    def fn(*, logits, attention_mask):
        import torch

        weights = []
        if use_length and attention_mask is not None:
            lengths = attention_mask.sum(dim=1)
            kw = {} if min_weight is None else {"min_weight": min_weight}
            weights.append(weighting.length_weights(lengths, **kw))
        if use_conf:
            if kind == "aspects":  # per-cell confidence, averaged over the example's aspects
                n = logits.shape[0]
                cell = weighting.confidence_weights(logits.reshape(n * len(task.labels), -1), kind=kind)
                weights.append(cell.reshape(n, -1).mean(dim=1))
            else:
                z = logits.reshape(-1) if kind == "binary" else logits
                weights.append(weighting.confidence_weights(z, kind=kind))
        if not weights:
            return None
        out = weighting.combine_sample_weights(*weights)
        return torch.as_tensor(out, device=logits.device, dtype=logits.dtype)

    return fn


def _sampler_weights(task, labels) -> np.ndarray:
    """Per-example sampling weight so each class is drawn about equally often.

    multiclass/binary: 1 / count(class); multilabel: max over the example's labels of 1 / count
    (examples with no label use the count of label-free examples); aspects: max over the
    example's non-absent cells of 1 / count(aspect, polarity) (all-absent rows likewise).
    """
    y = np.asarray(labels)
    if task.kind in ("binary", "multiclass"):
        counts = np.bincount(y.astype(int))
        return 1.0 / counts[y.astype(int)]
    if task.kind == "multilabel":
        y = y.reshape(len(y), -1)
        counts = y.sum(axis=0)
        inv = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
        w = (y * inv).max(axis=1)
        empty = y.sum(axis=1) == 0
        if empty.any():
            w[empty] = 1.0 / empty.sum()
        return w
    absent = len(task.aspect_classes) - 1
    w = np.zeros(len(y))
    for a in range(y.shape[1]):
        col = y[:, a].astype(int)
        counts = np.bincount(col, minlength=absent + 1)
        cell = np.where(col != absent, 1.0 / np.maximum(counts[col], 1), 0.0)
        w = np.maximum(w, cell)
    empty = w == 0
    if empty.any():
        w[empty] = 1.0 / empty.sum()
    return w


def _metric_fn(task):
    from tailtune.metrics import classification_report, decode

    def fn(y_true: np.ndarray, logits: np.ndarray) -> dict:
        logits = np.asarray(logits, dtype=np.float32)
        y_true = np.asarray(y_true)
        if task.kind == "binary":
            y_true = y_true.reshape(-1).astype(int)
        elif task.kind in ("multiclass",):
            y_true = y_true.astype(int)
        elif task.kind in ("multilabel", "aspects"):
            y_true = y_true.astype(int)
        y_pred = decode(logits, task)
        return classification_report(y_true, y_pred, task, y_score=logits)

    return fn


# ---------------------------------------------------------------------------------------------
def _write_recipe(run_dir: Path, recipe) -> None:
    from tailtune.training.recipe import dump_recipe_yaml

    atomic_write_text(run_dir / rundir.RECIPE, dump_recipe_yaml(recipe))


def _load_run_recipe(run_dir: Path):
    from tailtune.training.recipe import load_recipe

    path = run_dir / rundir.RECIPE
    if not path.exists():
        raise RunDirError(
            f"{run_dir}: no {rundir.RECIPE}; is this a tailtune run directory? (A run stopped before it wrote "
            f"{rundir.RECIPE} has nothing to resume: start it again with tailtune train RECIPE --output {run_dir})"
        )
    return load_recipe(path)


def _save_npz(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def _tokenizer_digest(tokenizer, max_length) -> str:
    """What the tokenised splits depend on, hashed in milliseconds. ``datasets`` would otherwise
    fingerprint ``map``'s function by pickling the tokenizer it closes over (about 0.5 s per split)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    from tailtune.models.truncation import RULE

    return _digest("tailtune-tokenise-v1", RULE, type(tokenizer).__name__, spec, str(max_length),
                   str(getattr(tokenizer, "model_input_names", "")))


def _oom_message(cfg: dict) -> str:
    t = _section(cfg, "train")
    bs, ga = int(t.get("batch_size") or 16), int(t.get("grad_accum") or 1)
    if bs > 1:
        new_bs = max(bs // 2, 1)
        new_ga = ga * bs // new_bs
        fix = (
            f"halve the batch and double the accumulation: --set train.batch_size={new_bs} "
            f"--set train.grad_accum={new_ga} (same effective batch {bs * ga})"
        )
    else:
        fix = "lower data.max_length, use train.precision=bf16, or freeze layers (model.freeze_layers)"
    return f"out of memory with train.batch_size={bs}, train.grad_accum={ga}; {fix}"


# ---------------------------------------------------------------------------------------------
def train(recipe=None, *, resume: str | os.PathLike | None = None, callbacks: Sequence = ()) -> RunResult:
    """Train and evaluate a classifier as the recipe says; write the run directory.

    Args:
        recipe: a :class:`tailtune.training.recipe.Recipe` (``None`` with ``resume``: the run's own
            ``recipe.yaml``).
        resume: a run directory whose last complete checkpoint to continue from.
        callbacks: extra ``transformers.TrainerCallback`` objects (e.g. progress bars).

    Returns:
        :class:`RunResult` ``(run_dir, history, eval)``.

    Raises:
        RecipeError: an invalid value (before any model is loaded) or out of memory (names the knob).
        RunDirError: ``output`` already holds a run (use ``resume``), or ``resume`` is not a run dir.
        StorageError: a write into the run directory failed (disk full...): the message names the
            file and the cause; the last complete checkpoint is kept, ``resume`` continues from it.
        DataError: from the data layer.

    Example:
        >>> from tailtune.training.recipe import load_recipe  # doctest: +SKIP
        >>> result = train(load_recipe("examples/multiclass.yaml"))  # doctest: +SKIP
        >>> result.eval["test"]["macro_f1"]  # doctest: +SKIP
    """
    checkpoint = None
    if resume is not None:
        run_dir = Path(resume)
        if not run_dir.is_dir():
            raise RunDirError(f"--resume {run_dir}: no such run directory")
        if recipe is None:
            recipe = _load_run_recipe(run_dir)
        checkpoint = find_checkpoint(run_dir)
        if checkpoint is not None:  # refuse pickled code before the Trainer torch.loads the state files
            from tailtune.training.state_files import check_state_files

            check_state_files(checkpoint, run_dir=run_dir)
        if checkpoint is None:  # stopped before its first checkpoint: start again, same recipe and seed
            logger.warning(
                "--resume %s: no complete checkpoint under %s/ yet; training again from the start", run_dir,
                rundir.CHECKPOINTS_DIR,
            )
    elif recipe is None:
        raise TypeError("train() needs a recipe or resume=RUN_DIR")
    recipe = _as_recipe(recipe)
    cfg = _recipe_dict(recipe)
    if resume is None:
        if not cfg.get("output"):
            raise RecipeError("output: missing; set the run directory (--output DIR)")
        run_dir = Path(cfg["output"])
        if (run_dir / rundir.HISTORY).exists() or (run_dir / rundir.CHECKPOINTS_DIR).exists():
            raise RunDirError(
                f"output {run_dir}: already holds a run; continue it with --resume {run_dir} or choose "
                "another --output"
            )

    import torch
    from transformers import set_seed

    seed = _seed(cfg)
    set_seed(seed)

    # 1-4: data, validation, weights, loss: all before the model
    loaded = _load_data(cfg)
    task = loaded.task
    _validate(recipe, cfg, task)
    train_labels = loaded.splits["train"]["labels"]
    counts = _label_counts(task, train_labels)
    loss = _build_loss(
        cfg, task, _class_weight_kwargs(cfg, task, counts, len(train_labels)), counts, len(train_labels)
    )
    sampler = cfg.get("sampler") or "none"
    if sampler not in ("none", "class_balanced"):
        raise RecipeError(f"sampler: {sampler!r} is not a sampler; choose none or class_balanced")
    sampler_weights = _sampler_weights(task, train_labels) if sampler == "class_balanced" else None

    # 5: model
    from tailtune.models import build_classifier
    from tailtune.models.chunking import PAD_MULTIPLE
    from tailtune.models.classifier import load_tokenizer

    set_seed(seed)
    classifier = build_classifier(recipe.model, task)
    tokenizer = load_tokenizer(recipe.model)
    t = _section(cfg, "train")
    if int(t.get("length_chunks") or 1) > 1:
        if getattr(tokenizer, "padding_side", "right") != "right":
            raise RecipeError(
                f"train.length_chunks needs a tokenizer that pads on the right; {recipe.model.name}'s pads on the "
                f"{tokenizer.padding_side}. Fix: set train.length_chunks: 1"
            )
        classifier.length_chunks = int(t["length_chunks"])
    if t.get("compile"):
        compile_forward(classifier)

    from tailtune.training.trainer import LabelCollator, TailtuneTrainer, TrainModule

    module = TrainModule(
        classifier,
        loss,
        kind=task.kind,
        num_aspects=len(task.labels) if task.kind == "aspects" else 0,
        sample_weight_fn=_sample_weight_fn(cfg, task),
    )

    # 6: tokenise
    max_length = _section(cfg, "data").get("max_length") or 256
    with_length = bool(t.get("group_by_length"))  # the length-grouped sampler reads a "length" column

    from tailtune.models.truncation import tokenize_truncated

    def tok(batch):
        enc = tokenize_truncated(tokenizer, batch["text"], max_length=int(max_length))
        if with_length:
            enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    splits = {}
    tok_digest = _tokenizer_digest(tokenizer, max_length)
    for name, ds in loaded.splits.items():
        keep = {"labels"}
        drop = [c for c in ds.column_names if c not in keep]
        key = (ds._fingerprint, tok_digest, *(("length",) if with_length else ()))
        splits[name] = ds.map(tok, batched=True, remove_columns=drop, desc=f"tokenising {name}",
                              new_fingerprint=_digest(*key))
    n_train = len(splits["train"])
    if n_train > TRAIN_EVAL_MAX:
        idx = np.sort(np.random.default_rng(seed).choice(n_train, size=TRAIN_EVAL_MAX, replace=False))
        train_eval = splits["train"].select(idx.tolist())
    else:
        train_eval = splits["train"]

    # 7: trainer
    from transformers import TrainingArguments

    from tailtune.training.callbacks import EarlyStopping, metric_greater_is_better

    o = _section(cfg, "optim")
    es = _section(cfg, "early_stopping")
    metric = es.get("metric") or "macro_f1"
    precision = t.get("precision") or "fp32"
    use_cpu = not torch.cuda.is_available()
    batch_size = int(t.get("batch_size") or 16)
    any_embeddings = bool(getattr(loss, "uses_embeddings", False))
    args = TrainingArguments(
        output_dir=str(run_dir / rundir.CHECKPOINTS_DIR),
        num_train_epochs=float(t.get("epochs") or 3),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=int(t.get("eval_batch_size") or batch_size * 2),
        gradient_accumulation_steps=int(t.get("grad_accum") or 1),
        learning_rate=float(o.get("lr") or 5e-5),
        weight_decay=float(o.get("weight_decay") or 0.0),
        warmup_steps=float(o.get("warmup") or 0.0),
        lr_scheduler_type=o.get("schedule") or "linear",
        optim=_optim_name(o.get("name")),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=use_cpu,
        seed=seed,
        data_seed=seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        save_total_limit=2,  # with load_best_model_at_end: the best and the last checkpoint
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=metric_greater_is_better(metric),
        restore_callback_states_from_checkpoint=True,
        remove_unused_columns=False,
        label_names=["labels"],
        **dataloader_kwargs(t),
        max_grad_norm=float(o["max_grad_norm"]) if o.get("max_grad_norm") is not None else 0.0,
        disable_tqdm=True,
        report_to=cfg.get("report_to") or "none",
        train_sampling_strategy="group_by_length" if t.get("group_by_length") else "random",
        length_column_name="length",
        # the Trainer's NaN/inf filter reads the loss on the host every step (a GPU sync); the
        # history keeps its own on-device sums, so the filter only slowed training down
        logging_nan_inf_filter=False,
        # a projection head whose embeddings no loss part reads leaves parameters without gradients
        ddp_find_unused_parameters=bool(recipe.model.projection_dim) and not any_embeddings,
        save_only_model=False,
        log_level="warning",
    )
    history: list[dict] = []
    if checkpoint is not None and (run_dir / rundir.HISTORY).exists():
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        history = [r for r in read_jsonl(run_dir / rundir.HISTORY) if r.get("step", 0) <= state["global_step"]]
    patience = es.get("patience")
    trainer = TailtuneTrainer(
        model=module,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=tokenizer,
        data_collator=LabelCollator(tokenizer, kind=task.kind, pad_to_multiple_of=PAD_MULTIPLE),
        callbacks=[
            EarlyStopping(metric=metric, patience=int(patience) if patience else None, min_delta=float(es.get("min_delta") or 0.0)),
            *callbacks,
        ],
        task=task,
        train_eval_dataset=train_eval,
        sampler_weights=sampler_weights,
        history_path=run_dir / rundir.HISTORY,
        history=history,
        metric_fn=_metric_fn(task),
        eval_sort_by_length=bool(t.get("eval_sort_by_length")),
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the history and the caller's callbacks report progress
    try:
        if trainer.is_world_process_zero():
            run_dir.mkdir(parents=True, exist_ok=True)
            if resume is not None:  # what an interrupted run left: temporary files, partial checkpoints
                remove_interrupted(run_dir, checkpoints_dir=rundir.CHECKPOINTS_DIR)
            if resume is None or not (run_dir / rundir.RECIPE).exists():
                _write_recipe(run_dir, recipe)
            if checkpoint is None or not (run_dir / rundir.TASK).exists():
                atomic_write_json(run_dir / rundir.TASK, task.to_dict())
        try:
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
        except torch.OutOfMemoryError as exc:
            raise RecipeError(_oom_message(cfg)) from exc
        evaluation = _finish(trainer, splits, task, tokenizer, run_dir)
    except Exception as exc:
        failure = describe_write_failure(exc)
        if failure is None:
            raise
        raise StorageError(_storage_message(run_dir, *failure)) from exc
    return RunResult(run_dir=run_dir, history=list(trainer.history), eval=evaluation)


def _finish(trainer, splits: dict, task, tokenizer, run_dir: Path) -> dict[str, dict]:
    """Step 8: with the best weights (restored by ``load_best_model_at_end``) predict validation and
    test, then (rank 0) write ``predictions/``, ``eval.json``, ``model/`` and the final history."""
    metric_fn = _metric_fn(task)
    evaluation: dict[str, dict] = {}
    outputs = {}
    for split in ("validation", "test"):
        if split not in splits:
            continue
        pred = trainer.predict(splits[split], metric_key_prefix=split)
        logits = np.asarray(pred.predictions, dtype=np.float32)
        targets = np.asarray(pred.label_ids)
        outputs[split] = (logits, targets)
        evaluation[split] = metric_fn(targets, logits)
    if trainer.is_world_process_zero():
        for split, (logits, targets) in outputs.items():
            _save_npz(run_dir / rundir.PREDICTIONS_DIR / f"{split}.npz", logits=logits, targets=targets)
        atomic_write_json(run_dir / rundir.EVAL, evaluation)
        from tailtune.models import save_classifier

        save_classifier(trainer.accelerator.unwrap_model(trainer.model).classifier, tokenizer, run_dir / rundir.MODEL_DIR)
        trainer.write_history()
    if trainer.accelerator.num_processes > 1:
        trainer.accelerator.wait_for_everyone()
    return evaluation


def _storage_message(run_dir: Path, path: Path | None, reason: str) -> str:
    """One line: what could not be written and why, what is left, the fix and the resume command."""
    what = "a file"
    if path is not None:
        try:
            what = str(path.relative_to(run_dir))
        except ValueError:
            what = str(path)
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is not None:
        left = f"its last complete checkpoint is {rundir.CHECKPOINTS_DIR}/{checkpoint.name}"
    else:
        left = "no checkpoint was complete yet, so --resume trains again from the start"
    return (
        f"could not write {what} in {run_dir}: {reason}. The run directory holds no torn file and {left}; "
        f"free space on that disk (or move {run_dir} to a larger one), then continue with: "
        f"tailtune train --resume {run_dir}"
    )


def _optim_name(name: str | None) -> str:
    aliases = {None: "adamw_torch", "adamw": "adamw_torch", "adam": "adamw_torch", "adamw_fused": "adamw_torch_fused",
               "sgd": "sgd", "adafactor": "adafactor"}
    return aliases.get(name, name)


def dataloader_kwargs(train_cfg: dict) -> dict[str, Any]:
    """``TrainingArguments`` data-loading fields from the recipe's ``train`` section.

    ``dataloader_workers`` > 0 lets each worker prefetch 2 batches; ``pin_memory`` (default true)
    copies batches to the GPU from page-locked memory (ignored on CPU). Workers are never
    persistent: with persistent workers the Trainer caches ONE evaluation loader under the key
    "eval" and hands it back for every other data set, so the per-epoch train subsample would be
    scored on the validation rows (re-forking 2 workers per loader costs milliseconds).
    """
    workers = int(train_cfg.get("dataloader_workers") or 0)
    out: dict[str, Any] = {
        "dataloader_num_workers": workers,
        "dataloader_pin_memory": bool(train_cfg.get("pin_memory", True)),
        "dataloader_persistent_workers": False,
    }
    if workers > 0:
        out["dataloader_prefetch_factor"] = 2
    return out


#: torch.compile backend for ``train.compile`` (tests switch it to "eager": same tracing, no codegen)
COMPILE_BACKEND = "inductor"


def compile_forward(classifier) -> None:
    """``train.compile``: compile the classifier's forward in place with ``torch.compile``.

    ``dynamic=True`` traces sequence length and batch size as symbols, so the variable-length
    batches of dynamic padding reuse one graph instead of recompiling per shape. ``nn.Module.compile``
    keeps the parameter names (``state_dict`` unchanged), so checkpoints, ``model/`` and resume are
    the same as without it. The first steps pay the compilation (tens of seconds on a GPU).
    """
    classifier.compile(dynamic=True, backend=COMPILE_BACKEND)
