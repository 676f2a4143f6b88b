"""``load_dataset``: one loading path for every file layout and task kind (docs/architecture.md).

Reads with the ``datasets`` library (memory-mapped Arrow), validates everything before returning
(so a command that writes files can call it first and write nothing on bad input), infers or checks
the :class:`TaskSpec`, encodes the labels and carves a stratified validation split when the data
has none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailtune.data.encoding import UNUSED_LABELS, encode_all
from tailtune.data.kinds import task_kind
from tailtune.data.labels import _first, _is_json_ext, first_non_string, source_table
from tailtune.data.readers import SplitSource, discover, nfc, read_labels_file
from tailtune.data.splits import split_train
from tailtune.data.task import KINDS, TaskSpec
from tailtune.errors import DataError, OptionError, did_you_mean

TEXT_CANDIDATES = ("text", "sentence", "content", "review", "document")
LABEL_CANDIDATES = ("labels", "label", "aspects")


@dataclass
class LoadedData:
    """What :func:`load_dataset` returns.

    Attributes:
        task: the inferred or given :class:`TaskSpec`.
        splits: ``{"train", "validation"[, "test"]}`` -> ``datasets.Dataset`` with columns ``text``
            and encoded ``labels``.
        files: where each split came from (a path, ``<folder>#<split>``, or a note on a carved split).
        targets: the encoded labels of each split as numpy arrays (same rows as ``splits``).
        notes: what the loader decided on the user's behalf (inferred kind, carved split, ...).
    """

    task: TaskSpec
    splits: dict[str, datasets.Dataset]
    files: dict[str, str]
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _resolve_task(task) -> tuple[TaskSpec | None, str | None, dict]:
    """``task`` may be a TaskSpec, a dict, a kind name or a path to a task.json.

    Returns ``(spec, kind, partial)``: a complete spec (kind and labels; its labels fix the order), or
    only a kind (``None``: infer it) plus the parts of a partial dict (``hierarchy``; ``labels`` without a
    kind, or of an aspects task given without polarities).
    """
    if task is None:
        return None, None, {}
    if isinstance(task, TaskSpec):
        return task, task.kind, {}
    if isinstance(task, dict):
        kind = task.get("kind")
        info = None if kind is None else task_kind(kind)  # an unknown name: DataError naming the kinds
        complete = info is not None and bool(task.get("labels")) and (not info.per_aspect or bool(task.get("polarities")))
        if complete:
            return TaskSpec.from_dict(task), kind, {}
        partial = {k: task[k] for k in ("hierarchy", "labels") if task.get(k)}
        return None, kind, partial
    if isinstance(task, (str, os.PathLike)):
        text = os.fspath(task)
        if text in KINDS:
            return None, text, {}
        if text.endswith(".json") or Path(text).is_file():
            spec = TaskSpec.from_json(text)
            return spec, spec.kind, {}
        raise DataError(f"task {text!r} is not one of {list(KINDS)}{did_you_mean(text, KINDS)} nor a task.json file")
    raise TypeError(f"task must be a TaskSpec, dict, kind name or path, got {type(task).__name__}")


#: how a user names the columns: the CLI flag (analyze, evaluate) and the recipe field (train, lint, fit)
TEXT_COLUMN_HINT = "--text-column (recipe: data.text, e.g. --set data.text=NAME)"
LABEL_COLUMN_HINT = "--label-column (recipe: data.labels, e.g. --set data.labels=NAME)"


def _columns_of(src: SplitSource) -> list[str]:
    return list(src.dataset.column_names)


def _missing_column(src: SplitSource, col: str, role: str, flag: str) -> DataError:
    cols = _columns_of(src)
    return DataError(
        f"{role} column {col!r} not found in {src.origin}{did_you_mean(col, cols)}; its columns are {cols}; "
        f"pick one with {flag}"
    )


def _choose_column(sources, explicit, candidates, role, flag, notes: list[str]) -> str:
    """The explicit column, else the first candidate present, else one equal to a candidate up to case
    and surrounding spaces (``Text``, ``LABEL``: said in ``notes``)."""
    first = sources[0]
    if explicit:
        return explicit
    cols = _columns_of(first)
    for c in candidates:
        if c in cols:
            return c
    for c in candidates:
        loose = [col for col in cols if col.strip().casefold() == c]
        if len(loose) == 1:
            notes.append(f"using column {loose[0]!r} of {first.origin} as the {role} column (name it with {flag})")
            return loose[0]
    raise DataError(
        f"no {role} column in {first.origin}: looked for {list(candidates)}, found {cols}; name it with {flag}"
    )


def _check_text(src: SplitSource, col: str, *, drop_empty: bool) -> np.ndarray | None:
    """Reject null/NaN text always and empty text unless ``drop_empty``; return the rows to drop."""
    table = source_table(src, [col])
    arr = table.column(col)
    t = arr.type
    if _is_json_ext(t):  # rows of different JSON types: name the first that is not a string
        bad = first_non_string(arr)
        if bad is not None:
            raise DataError(
                f"text at {src.where(bad[0])} (column {col!r}) is {type(bad[1]).__name__} {str(bad[1])[:40]!r}, "
                f"not a string; write every text as a JSON string (in quotes) or remove the row"
            )
    if _is_json_ext(t) or not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        if pa.types.is_null(t):
            raise DataError(f"text column {col!r} is empty in every row of {src.origin}; fill it in")
        raise DataError(
            f"text column {col!r} of {src.origin} holds {t} values, not text; choose the text column with "
            f"--text-column (its columns: {_columns_of(src)})"
        )
    if arr.null_count and not drop_empty:
        i = _first(pc.is_null(arr).to_numpy(zero_copy_only=False))
        raise DataError(
            f"missing (null/NaN) text at {src.where(i)} (column {col!r}); remove the row, give it text, or "
            f"drop such rows with {_DROP_HINT}"
        )
    # empty, or only whitespace (utf8_is_space is true for non-empty all-space strings), or missing (an
    # empty CSV cell reads as null); no copy of the text
    empty = pc.fill_null(pc.or_(pc.equal(pc.binary_length(arr), 0), pc.utf8_is_space(arr)), True)
    empty = np.concatenate([c.to_numpy(zero_copy_only=False) for c in empty.chunks]) if isinstance(
        empty, pa.ChunkedArray) else empty.to_numpy(zero_copy_only=False)
    if not empty.any():
        return None
    if not drop_empty:
        i = _first(empty)
        raise DataError(
            f"empty text at {src.where(i)} (column {col!r}; {int(empty.sum())} empty row(s) in this file); "
            f"remove them or drop them with {_DROP_HINT}"
        )
    return empty


#: how to drop empty texts, from each entry point
_DROP_HINT = ("empty_text='drop' (recipe: data.empty_text: drop; tailtune analyze / tailtune fit: "
              "--drop-empty-text)")


def _drop_blank_rows(src: SplitSource, empty: np.ndarray, label_cols: list[str], notes: list[str]) -> np.ndarray:
    """Drop rows with neither text nor label (a spreadsheet's trailing ``,,`` rows) before the labels are
    read; return the empty-text mask of the rows left (their labels are read, then they are dropped)."""
    table = source_table(src, label_cols)
    no_label = np.ones(len(empty), dtype=bool)
    for c in label_cols:
        no_label &= pc.is_null(table.column(c)).to_numpy(zero_copy_only=False)
    blank = empty & no_label
    if not blank.any():
        return empty
    keep = np.flatnonzero(~blank)
    if len(keep) == 0:
        raise DataError(f"every row of {src.origin} has empty text")
    src.dataset = src.dataset.select(keep)
    src.rows = keep
    notes.append(f"dropped {int(blank.sum())} blank row(s) of {src.origin} (no text and no label)")
    return empty[keep]


def _check_train_classes_after_drop(y: np.ndarray, task: TaskSpec, origin: str) -> None:
    """After dropping empty-text rows every class (aspect) must still have a training example."""
    kind = task.kind_info
    if kind.single_label:
        present = np.bincount(y, minlength=len(task.labels)) > 0
    elif kind.multi_hot:
        present = y.sum(axis=0) > 0
    else:
        present = (y != len(task.polarities)).any(axis=0) if len(y) else np.zeros(len(task.labels), bool)
    lost = [task.labels[i] for i in np.flatnonzero(~present)]
    if lost:
        raise DataError(
            f"label(s) {lost[:10]} of {origin} have training examples only in rows with empty text, so none "
            f"are left after dropping them; give those rows text or remove the labels"
        )


def _labels_array(enc: np.ndarray) -> pa.Array:
    if enc.ndim == 1:
        return pa.array(enc.astype(np.int64))
    n, k = enc.shape
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(enc).ravel()), k)


def _check_options(seed, val_fraction, empty_text, label_sep, unused_labels) -> None:
    # DataError is a ValueError: library callers see the usual type, the CLI prints one message
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if seed < 0:  # numpy's generators take no negative seed
        raise OptionError(f"seed (--seed) must be an integer >= 0, got {seed!r}; e.g. 13")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0.0 < float(val_fraction) < 1.0:
        raise DataError(f"val_fraction (--val-fraction) must be a float in (0, 1), got {val_fraction!r}; e.g. 0.1")
    if empty_text not in ("error", "drop"):
        raise DataError(f"empty_text must be 'error' or 'drop', got {empty_text!r}")
    if unused_labels not in UNUSED_LABELS:
        raise DataError(f"unused_labels must be one of {list(UNUSED_LABELS)}, got {unused_labels!r}")
    if label_sep is not None and not label_sep:
        raise DataError("label_sep (--label-sep) must be a non-empty string such as '|', or None; omit it for one label per row")


def _label_columns(sources, label_column, spec, kind, label_sep, notes) -> tuple[list[str], str | None]:
    """The label column(s) and the kind they imply (several 0/1 columns: multilabel)."""
    if isinstance(label_column, (list, tuple)):
        label_cols = [str(c) for c in label_column]
    elif label_column:
        label_cols = [c.strip() for c in str(label_column).split(",") if c.strip()]
    else:
        label_cols = [_choose_column(sources, spec.label_column if spec else None, LABEL_CANDIDATES,
                                     "label", LABEL_COLUMN_HINT, notes)]
    if len(label_cols) > 1:
        if label_sep:
            raise DataError("--label-sep applies to one string label column, not to several 0/1 columns")
        if kind is None:
            kind = "multilabel"
        elif not task_kind(kind).multi_hot:
            raise DataError(f"several label columns ({label_cols}) are one 0/1 column per label: kind 'multilabel', not {kind!r}")
    return label_cols, kind


def _check_columns(sources, text_col, label_cols) -> None:
    for src in sources:
        for col, role, flag in [(text_col, "text", TEXT_COLUMN_HINT)] + [(c, "label", LABEL_COLUMN_HINT) for c in label_cols]:
            if col not in _columns_of(src):
                raise _missing_column(src, col, role, flag)
        if text_col in label_cols:
            raise DataError(f"column {text_col!r} cannot be both the text and a label column")


def _empty_text_rows(sources, text_col, label_cols, empty_text, notes) -> dict[str, np.ndarray | None]:
    drops = {}
    for src in sources:
        empty = _check_text(src, text_col, drop_empty=empty_text == "drop")
        if empty is not None:
            empty = _drop_blank_rows(src, empty, label_cols, notes)
        drops[src.split] = empty if empty is not None and empty.any() else None
    return drops


def _with_hierarchy(spec_out: TaskSpec, hierarchy, declared: list[str] | None = None) -> TaskSpec:
    if not hierarchy:
        return spec_out
    kept = set(spec_out.labels)
    left_out = [n for n in dict.fromkeys(map(str, (*hierarchy, *hierarchy.values())))
                if n not in kept and declared and nfc(n) in {nfc(d) for d in declared}]
    if left_out:  # declared (labels.txt) but left out by unused_labels: drop for having no training example
        entries = [f"{c}: {p}" for c, p in hierarchy.items() if str(c) in left_out or str(p) in left_out]
        raise DataError(
            f"task.hierarchy names {left_out[:10]}, left out of the task for having no training example "
            f"(unused_labels: drop); remove the entries naming them from task.hierarchy ({', '.join(entries[:6])}"
            f"{' ...' if len(entries) > 6 else ''}), or add training examples"
        )
    try:  # validated (names, cycles) by TaskSpec
        return TaskSpec(kind=spec_out.kind, labels=spec_out.labels, polarities=spec_out.polarities, hierarchy=hierarchy)
    except DataError as exc:
        raise DataError(f"task.hierarchy: {exc}") from None


def _build_splits(sources, text_col, encoded, drops, notes):
    """Each split as a ``datasets.Dataset`` (``text``, encoded ``labels``) without its dropped rows."""
    splits: dict[str, datasets.Dataset] = {}
    files: dict[str, str] = {}
    targets: dict[str, np.ndarray] = {}
    for src in sources:
        ds = src.dataset
        if ds.column_names != [text_col]:
            ds = ds.select_columns([text_col])
        if text_col != "text":
            ds = ds.rename_column(text_col, "text")
        target = encoded.targets[src.split]
        ds = ds.add_column("labels", _labels_array(target))
        drop = drops[src.split]
        if drop is not None:
            notes.append(f"dropped {int(drop.sum())} empty-text row(s) of {src.origin}")
        extra = encoded.drop_rows.get(src.split)
        if extra is not None:
            drop = extra if drop is None else drop | extra
        if drop is not None:
            keep = np.flatnonzero(~drop)
            ds, target = ds.select(keep), target[keep]
            if len(keep) == 0:
                raise DataError(f"every row of {src.origin} has empty text or a left-out label")
        splits[src.split] = ds
        files[src.split] = src.origin
        targets[src.split] = target
    return splits, files, targets


def _carve_validation(splits, files, targets, task: TaskSpec, *, val_fraction, seed, notes) -> None:
    train_idx, val_idx = split_train(targets["train"], task, val_fraction=val_fraction, seed=seed)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise DataError(
            f"{files['train']} has {len(targets['train'])} rows, too few to hold out a validation split "
            f"of {val_fraction:.0%}; add rows or provide a validation file"
        )
    full = splits["train"]
    splits["train"] = full.select(train_idx)
    splits["validation"] = full.select(val_idx)
    targets["validation"] = targets["train"][val_idx]
    targets["train"] = targets["train"][train_idx]
    method = "stratified" if task.kind_info.single_label else "iterative stratification"
    files["validation"] = f"{files['train']} (held out: {len(val_idx)} rows, {method}, seed {seed})"
    notes.append(f"no validation split: held out {len(val_idx)} training rows ({method}, seed {seed})")


def load_dataset(
    source,
    *,
    task=None,
    text_column: str | None = None,
    label_column: str | list[str] | None = None,
    seed: int = 13,
    val_fraction: float = 0.1,
    label_sep: str | None = None,
    labels_file: str | os.PathLike | None = None,
    cache_dir: str | None = None,
    empty_text: str = "error",
    unused_labels: str = "error",
) -> LoadedData:
    """Load, validate and encode a text-classification dataset.

    Args:
        source: a folder of ``train.*``/``validation.*``/``test.*`` files (csv, tsv, jsonl, json,
            parquet) with an optional ``labels.txt``; a single such file (split into train/validation
            by ``seed``); a ``datasets`` ``save_to_disk`` folder; or a hub dataset name (online only).
        task: ``None`` (infer), a kind name, a ``TaskSpec``, its dict, or a ``task.json`` path. A spec
            with labels fixes the label order; a kind only fixes the kind. With a ``labels.txt`` the
            task's labels select classes from it by name.
        text_column: source text column (default: the task's, else the first of text/sentence/...).
        label_column: source label column, or several 0/1 indicator columns (a list or
            comma-separated). Default: the task's, else the first of labels/label/aspects.
        seed, val_fraction: the carved validation split when the data has none.
        label_sep: split string labels on this separator into multi-label lists (e.g. ``"|"``).
        labels_file: label names, one per line (default ``<folder>/labels.txt`` when present).
        cache_dir: ``datasets`` cache folder (default: the library's).
        empty_text: ``"error"`` (default) rejects rows whose text is empty or whitespace; ``"drop"``
            drops them (counted in ``notes``). Null/NaN text is always an error.
        unused_labels: ``"error"`` (default) rejects declared labels without a training example (and,
            with a task, labels.txt labels it leaves out); ``"drop"`` leaves them out without
            renumbering the others (docs/data.md).

    Returns:
        :class:`LoadedData`.

    Raises:
        DataError: any problem with the data, naming the file, row and fix.

    Example:
        >>> data = load_dataset("../shared/data/sms_spam")  # doctest: +SKIP
        >>> data.task.kind, data.task.labels, data.splits["train"].column_names  # doctest: +SKIP
        ('binary', ['ham', 'spam'], ['text', 'labels'])
    """
    _check_options(seed, val_fraction, empty_text, label_sep, unused_labels)
    spec, kind, partial = _resolve_task(task)
    sources, labels_txt = discover(source, cache_dir=cache_dir)
    notes: list[str] = [n for src in sources for n in src.notes]
    if labels_file is not None:
        labels_txt = Path(labels_file)
        if not labels_txt.is_file():
            raise DataError(f"labels file {labels_txt} does not exist")
    text_col = _choose_column(sources, text_column or (spec.text_column if spec else None), TEXT_CANDIDATES,
                              "text", TEXT_COLUMN_HINT, notes)
    label_cols, kind = _label_columns(sources, label_column, spec, kind, label_sep, notes)
    _check_columns(sources, text_col, label_cols)
    drops = _empty_text_rows(sources, text_col, label_cols, empty_text, notes)
    declared = read_labels_file(labels_txt, notes) if labels_txt is not None else None
    encoded = encode_all(
        sources, label_cols, task=spec if spec is not None and spec.labels else None, kind=kind,
        declared=declared, declared_from=str(labels_txt) if labels_txt is not None else None,
        label_sep=label_sep, task_labels=partial.get("labels"), unused_labels=unused_labels,
    )
    notes.extend(encoded.notes)
    spec_out = _with_hierarchy(encoded.task, partial.get("hierarchy"), declared)
    spec_out.text_column = text_col
    spec_out.label_column = ",".join(label_cols)
    if spec is None:
        notes.append(f"task kind {spec_out.kind!r} {'given' if kind else 'inferred from the label column'}")
    splits, files, targets = _build_splits(sources, text_col, encoded, drops, notes)
    if drops.get("train") is not None:
        _check_train_classes_after_drop(targets["train"], spec_out, files["train"])
    if "validation" not in splits:
        _carve_validation(splits, files, targets, spec_out, val_fraction=val_fraction, seed=seed, notes=notes)
    order = [s for s in ("train", "validation", "test") if s in splits]
    return LoadedData(
        task=spec_out,
        splits={s: splits[s] for s in order},
        files={s: files[s] for s in order},
        targets={s: targets[s] for s in order},
        notes=notes,
    )
