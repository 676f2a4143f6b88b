"""Reading label columns in every supported layout and encoding them for a :class:`TaskSpec`.

Layouts (detected from the Arrow type of the column, never from a guess per row):

- scalar label names (strings) or indices (ints; integral floats; booleans);
- multi-label: a list of names or indices, a delimited string (``label_sep``), or one 0/1 column per
  label (several label columns);
- aspects: a dict ``{aspect: polarity}`` (missing or ``"absent"`` = absent) or a list of
  ``"aspect#polarity"`` strings (aspects not mentioned are absent).

Everything here is vectorised over Arrow/numpy arrays: no Python loop runs per row, except for the
rare JSON columns whose rows mix types (they are decoded to tell the user exactly where).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailtune.data.readers import SplitSource
from tailtune.data.task import ABSENT, TaskSpec, order_polarities
from tailtune.errors import DataError, did_you_mean

INT_RE = r"^\s*[+-]?\d+\s*$"


@dataclass
class RawLabels:
    """Labels of one split before encoding.

    ``form`` is ``int`` / ``str`` (scalar), ``list_int`` / ``list_str`` (flattened ``values`` with
    ``parents`` = row of each value), ``dict`` (``fields`` aspect names, ``columns`` one string array
    each) or ``indicator`` (``matrix`` (N, C) of 0/1, ``fields`` the column names).
    """

    form: str
    n: int
    values: object = None
    parents: np.ndarray | None = None
    fields: list[str] = field(default_factory=list)
    columns: list = field(default_factory=list)
    matrix: np.ndarray | None = None


def _first(mask) -> int | None:
    idx = np.flatnonzero(np.asarray(mask))
    return int(idx[0]) if idx.size else None


def source_table(src: SplitSource) -> pa.Table:
    ds = src.dataset
    if getattr(ds, "_indices", None) is not None:  # a saved dataset with an indices mapping
        return ds.data.table.take(ds._indices.column(0))
    return ds.data.table


def _is_json_ext(t: pa.DataType) -> bool:
    """The ``arrow.json`` extension type ``datasets`` uses for JSON fields whose rows differ in type."""
    storage = getattr(t, "storage_type", None)
    return isinstance(t, pa.BaseExtensionType) and storage is not None and (
        pa.types.is_string(storage) or pa.types.is_large_string(storage)
    )


def _py_kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "dict"
    return type(v).__name__


def _json_values(col) -> list:
    """The decoded Python values of an ``arrow.json`` extension column (array or chunked)."""
    if isinstance(col, pa.ExtensionArray):
        storage = col.storage
    elif isinstance(col, pa.ChunkedArray):
        storage = pa.chunked_array([c.storage for c in col.chunks], type=col.type.storage_type)
    else:
        storage = col
    return [None if s is None else json.loads(s) for s in storage.to_pylist()]


def first_non_string(col) -> tuple[int, object] | None:
    """``(row, value)`` of the first non-null, non-string value of an ``arrow.json`` column, or ``None``."""
    for i, v in enumerate(_json_values(col)):
        if v is not None and not isinstance(v, str):
            return i, v
    return None


def _bool_to_int(v):
    return int(v) if isinstance(v, bool) else v


def _decode_json_column(col, src: SplitSource, name: str) -> pa.Array:
    """A JSON column whose rows have different types: decode, then insist on one type."""
    values = _json_values(col)
    first_of: dict[str, int] = {}
    for i, v in enumerate(values):
        k = _py_kind(v)
        if k == "bool":
            k = "int"
        if k == "list":
            inner = {(_py_kind(x) if _py_kind(x) != "bool" else "int") for x in v}
            if len(inner) > 1:
                raise DataError(
                    f"mixed label types inside one list at {src.where(i)} (column {name!r}): {v!r}; "
                    f"use only names or only indices"
                )
        first_of.setdefault(k, i)
    if "null" in first_of:
        i = first_of["null"]
        raise DataError(f"missing label at {src.where(i)} (column {name!r}); give every row a label")
    if len(first_of) > 1:
        (k1, i1), (k2, i2) = sorted(first_of.items(), key=lambda kv: kv[1])[:2]
        raise DataError(
            f"mixed label types in column {name!r} of {src.origin}: {k1} at {src.where(i1)} but {k2} at "
            f"{src.where(i2)}; write every label the same way (all names or all indices)"
        )
    kind = next(iter(first_of))
    if kind == "dict":
        aspects: list[str] = []
        for i, v in enumerate(values):
            for key, pol in v.items():
                if pol is not None and not isinstance(pol, str):
                    raise DataError(
                        f"aspect {key!r} at {src.where(i)} (column {name!r}) has polarity {pol!r}, not a name; "
                        f"aspect dicts map each aspect to a polarity name such as \"positive\" or \"absent\""
                    )
                if key not in aspects:
                    aspects.append(key)
        return pa.array(values, type=pa.struct([(a, pa.string()) for a in aspects]))
    if kind == "list":
        inner_kinds = {_py_kind(x) for v in values for x in v} - {"bool"}
        if len(inner_kinds) > 1:
            raise DataError(
                f"mixed label types in the lists of column {name!r} of {src.origin}: {sorted(inner_kinds)}; "
                f"use only names or only indices"
            )
        return pa.array([[_bool_to_int(x) for x in v] for v in values])
    return pa.array([_bool_to_int(v) for v in values])  # true/false with 0/1: indices


def _check_no_nulls(col, src: SplitSource, name: str) -> None:
    if col.null_count:
        i = _first(col.is_null().to_numpy(zero_copy_only=False))
        raise DataError(f"missing label at {src.where(i)} (column {name!r}); give every row a label")


def _to_int(col, src: SplitSource, name: str) -> np.ndarray:
    """bool/int/float Arrow column -> int64 numpy, rejecting nulls, NaN and non-integral values."""
    t = col.type
    if pa.types.is_floating(t):
        arr = col.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = np.isnan(arr)
        if col.null_count or bad.any():
            i = _first(bad | col.is_null().to_numpy(zero_copy_only=False))
            raise DataError(f"missing label (NaN) at {src.where(i)} (column {name!r}); give every row a label")
        frac = arr != np.round(arr)
        if frac.any():
            i = _first(frac)
            raise DataError(
                f"label {float(arr[i])!r} at {src.where(i)} (column {name!r}) is not a class index; labels must be "
                f"names or integer indices (tailtune classifies, it does not regress)"
            )
        return arr.astype(np.int64)
    _check_no_nulls(col, src, name)
    return col.to_numpy(zero_copy_only=False).astype(np.int64)


def _indicator_column(col, src: SplitSource, name: str) -> np.ndarray:
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        _check_no_nulls(col, src, name)
        stripped = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        ones = pc.is_in(stripped, value_set=pa.array(["1", "1.0", "true"])).to_numpy(zero_copy_only=False)
        zeros = pc.is_in(stripped, value_set=pa.array(["0", "0.0", "false"])).to_numpy(zero_copy_only=False)
        bad = ~(ones | zeros)
        if bad.any():
            i = _first(bad)
            raise DataError(
                f"indicator column {name!r} holds {col[i].as_py()!r} at {src.where(i)}; one-column-per-label "
                f"data must be 0/1"
            )
        return ones.astype(np.uint8)
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        v = _to_int(col, src, name)
        bad = (v != 0) & (v != 1)
        if bad.any():
            i = _first(bad)
            raise DataError(
                f"indicator column {name!r} holds {int(v[i])} at {src.where(i)}; one-column-per-label data must be 0/1"
            )
        return v.astype(np.uint8)
    raise DataError(f"indicator column {name!r} of {src.origin} has type {t}; it must hold 0/1 values")


def parse_labels(src: SplitSource, columns: list[str], *, label_sep: str | None = None) -> RawLabels:
    """Read the label column(s) of one split into a :class:`RawLabels` (no vocabulary yet)."""
    table = source_table(src)
    n = table.num_rows
    if len(columns) > 1:
        matrix = np.stack([_indicator_column(table.column(c), src, c) for c in columns], axis=1)
        return RawLabels("indicator", n, fields=list(columns), matrix=matrix)
    name = columns[0]
    col = table.column(name)
    t = col.type
    if _is_json_ext(t):
        col = _decode_json_column(col, src, name)
        t = col.type
    if pa.types.is_null(t):
        raise DataError(f"label column {name!r} of {src.origin} is empty in every row; give every row a label")
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        return RawLabels("int", n, values=_to_int(col, src, name))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if label_sep:  # an empty cell is a row without labels
            parts = pc.split_pattern(pc.fill_null(col, ""), pattern=label_sep)
            return _from_list(parts, src, name, n)
        _check_no_nulls(col, src, name)
        return RawLabels("str", n, values=pc.utf8_trim_whitespace(col))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        _check_no_nulls(col, src, name)
        return _from_list(col, src, name, n)
    if pa.types.is_struct(t):
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        fields = [t.field(i).name for i in range(t.num_fields)]
        cols = []
        for i, f in enumerate(fields):
            child = col.field(i)
            if col.null_count:  # a whole dict missing: every aspect absent
                child = pc.if_else(col.is_null(), pa.scalar(None, child.type), child)
            if _is_json_ext(child.type):  # polarities of different JSON types: name the first non-name
                bad = first_non_string(child)
                if bad is not None:
                    raise DataError(
                        f"aspect {f!r} at {src.where(bad[0])} (column {name!r}) has polarity {bad[1]!r}, not a name; "
                        f"aspect dicts map each aspect to a polarity name such as \"positive\" or \"absent\""
                    )
            if not (pa.types.is_string(child.type) or pa.types.is_large_string(child.type) or pa.types.is_null(child.type)):
                raise DataError(
                    f"aspect {f!r} in column {name!r} of {src.origin} holds {child.type} values; aspect dicts "
                    f"map each aspect to a polarity name"
                )
            cols.append(child.cast(pa.string()))
        return RawLabels("dict", n, fields=fields, columns=cols)
    raise DataError(
        f"label column {name!r} of {src.origin} has unsupported type {t}; use names, indices, lists, "
        f"an aspect dict or 'aspect#polarity' lists"
    )


def _from_list(col, src: SplitSource, name: str, n: int) -> RawLabels:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    parents = pc.list_parent_indices(col).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(col)
    vt = flat.type
    if _is_json_ext(vt):  # list items of different JSON types
        items = [None if v is None else json.loads(v) for v in flat.storage.to_pylist()]
        first_of: dict[str, int] = {}
        for j, v in enumerate(items):
            first_of.setdefault("int" if _py_kind(v) == "bool" else _py_kind(v), j)
        if len(first_of) > 1:
            (k1, j1), (k2, j2) = sorted(first_of.items(), key=lambda kv: kv[1])[:2]
            raise DataError(
                f"mixed label types in the lists of column {name!r}: {k1} at {src.where(int(parents[j1]))} but {k2} "
                f"at {src.where(int(parents[j2]))}; use only names or only indices"
            )
        flat = pa.array([_bool_to_int(v) for v in items])
        vt = flat.type
    if pa.types.is_string(vt) or pa.types.is_large_string(vt):
        if flat.null_count:
            i = int(parents[_first(flat.is_null().to_numpy(zero_copy_only=False))])
            raise DataError(f"missing label inside the list at {src.where(i)} (column {name!r})")
        flat = pc.utf8_trim_whitespace(flat)
        keep = pc.greater(pc.utf8_length(flat), 0)  # "a,,b" or a trailing separator: drop the empty piece
        if not pc.all(keep).as_py():
            flat = flat.filter(keep)
            parents = parents[keep.to_numpy(zero_copy_only=False)]
        return RawLabels("list_str", n, values=flat, parents=parents)
    if pa.types.is_null(vt) and len(flat) == 0:
        return RawLabels("list_int", n, values=np.zeros(0, np.int64), parents=parents)
    if pa.types.is_boolean(vt) or pa.types.is_integer(vt) or pa.types.is_floating(vt):
        if pa.types.is_floating(vt):
            arr = flat.to_numpy(zero_copy_only=False).astype(np.float64)
            bad = np.isnan(arr) | (arr != np.round(np.nan_to_num(arr)))
            if bad.any():
                j = _first(bad)
                raise DataError(
                    f"label {float(arr[j])!r} inside the list at {src.where(int(parents[j]))} (column {name!r}) is "
                    f"not a class index; list labels must be names or integer indices"
                )
            return RawLabels("list_int", n, values=arr.astype(np.int64), parents=parents)
        if flat.null_count:
            j = _first(flat.is_null().to_numpy(zero_copy_only=False))
            raise DataError(f"missing label inside the list at {src.where(int(parents[j]))} (column {name!r})")
        return RawLabels("list_int", n, values=flat.to_numpy(zero_copy_only=False).astype(np.int64), parents=parents)
    raise DataError(f"label lists in column {name!r} of {src.origin} hold {vt}; use label names or indices")


# ---------------------------------------------------------------------------------------------------
# vocabulary and encoding


def _int_like(values) -> np.ndarray:
    return pc.match_substring_regex(values, INT_RE).to_numpy(zero_copy_only=False)


def _resolve_strings(raw: RawLabels, src: SplitSource, name: str, declared: list[str] | None, train_form: str | None):
    """Turn a ``str``/``list_str`` RawLabels whose values are all integers into ``int``/``list_int``.

    Raises the "mixed label types" error when some values are integers and others are not (and the
    declared names do not explain them).
    """
    if raw.form not in ("str", "list_str"):
        return raw
    values = raw.values
    if len(values) == 0:
        return raw
    if declared is not None and pc.all(pc.is_in(values, value_set=pa.array(declared))).as_py():
        return raw
    if train_form in ("str", "list_str") and declared is None:
        return raw  # names, checked against the training vocabulary when encoding
    ints = _int_like(values)
    if ints.all():
        converted = pc.cast(pc.utf8_trim_whitespace(values), pa.int64()).to_numpy(zero_copy_only=False)
        form = "int" if raw.form == "str" else "list_int"
        return RawLabels(form, raw.n, values=converted, parents=raw.parents)
    if ints.any():
        i_int, i_name = _first(ints), _first(~ints)
        rows = raw.parents if raw.parents is not None else np.arange(raw.n)
        raise DataError(
            f"mixed label types in column {name!r} of {src.origin}: index {values[i_int].as_py()!r} at "
            f"{src.where(int(rows[i_int]))} but name {values[i_name].as_py()!r} at {src.where(int(rows[i_name]))}; "
            f"write every label the same way (all names, or all indices with a labels.txt)"
        )
    return raw


def _is_pairs(raw: RawLabels) -> bool:
    if raw.form != "list_str" or len(raw.values) == 0:
        return False
    return bool(pc.all(pc.match_substring_regex(raw.values, r"^[^#]+#[^#]+$")).as_py())


def _unknown_error(value, where: str, split: str, names: list[str], what: str, declared_from: str | None) -> DataError:
    shown = names if len(names) <= 20 else names[:20] + ["..."]
    if split == "train" and declared_from:
        return DataError(
            f"{what} {value!r} at {where} is not in {declared_from}{did_you_mean(str(value), names)}; "
            f"known: {shown}; add it there or fix the row"
        )
    return DataError(
        f"{what} {value!r} at {where} does not occur in the training data{did_you_mean(str(value), names)}; "
        f"training {what}s: {shown}; fix the row, or add training examples of it"
    )


def _encode_names(values, names: list[str], parents, src, split, what, declared_from) -> np.ndarray:
    idx = pc.index_in(values, value_set=pa.array(names, pa.string()))
    missing = idx.is_null().to_numpy(zero_copy_only=False)
    if missing.any():
        j = _first(missing)
        row = int(parents[j]) if parents is not None else j
        raise _unknown_error(values[j].as_py(), src.where(row), split, names, what, declared_from)
    return idx.to_numpy(zero_copy_only=False).astype(np.int64)


def _encode_ints(values: np.ndarray, num: int, parents, src, split, what, declared_from) -> np.ndarray:
    bad = (values < 0) | (values >= num)
    if bad.any():
        j = _first(bad)
        row = int(parents[j]) if parents is not None else j
        if values[j] < 0:
            raise DataError(
                f"{what} index {int(values[j])} at {src.where(row)} is negative; class indices start at 0, fix the row"
            )
        if split == "train" and declared_from:
            raise DataError(
                f"{what} index {int(values[j])} at {src.where(row)} is out of range: {declared_from} names "
                f"{num} labels (indices 0..{num - 1}); add the missing names there"
            )
        raise DataError(
            f"{what} index {int(values[j])} at {src.where(row)} does not occur in the training data "
            f"(training indices 0..{num - 1}); fix the row, or add training examples of it"
        )
    return values.astype(np.int64)


def _scalar_names_for_ints(train_values: np.ndarray) -> list[str]:
    return [str(i) for i in range(int(train_values.max()) + 1)] if train_values.size else []


def encode_all(
    sources: list[SplitSource],
    columns: list[str],
    *,
    task: TaskSpec | None,
    kind: str | None,
    declared: list[str] | None,
    declared_from: str | None,
    label_sep: str | None,
    declared_aspects: list[str] | None = None,
) -> tuple[TaskSpec, dict[str, np.ndarray], dict[str, RawLabels]]:
    """Infer (or check) the task from train, encode every split; return spec, encoded arrays, raw labels.

    ``task`` is a complete spec to encode against; otherwise ``kind`` (may be ``None`` = infer) and the
    ``declared`` label names (labels.txt) guide the inference.
    """
    name = columns[0] if len(columns) == 1 else ",".join(columns)
    kind_given = kind is not None or task is not None
    if task is not None:
        kind = task.kind
        if kind != "aspects":
            declared, declared_from = list(task.labels), declared_from or "the task's labels"
    train_src = sources[0]
    raws: dict[str, RawLabels] = {}
    train_raw = _resolve_strings(parse_labels(train_src, columns, label_sep=label_sep), train_src, name, declared, None)
    raws["train"] = train_raw
    for src in sources[1:]:
        raw = parse_labels(src, columns, label_sep=label_sep)
        raw = _resolve_strings(raw, src, name, declared, train_raw.form)
        same = (raw.form == train_raw.form) or (
            {raw.form, train_raw.form} <= {"list_int", "list_str"} and len(raw.values) == 0
        )
        if not same:
            raise DataError(
                f"mixed label types across splits: {train_src.origin} has {_describe(train_raw.form)} labels but "
                f"{src.origin} has {_describe(raw.form)} labels in column {name!r}; write them the same way"
            )
        raws[src.split] = raw

    form = train_raw.form
    if kind is None:
        if form in ("int", "str"):
            kind = "multiclass"  # binary decided below once the classes are known
        elif form == "dict" or _is_pairs(train_raw):
            kind = "aspects"
        else:
            kind = "multilabel"
    if kind == "aspects":
        spec, enc = _encode_aspects(sources, raws, name, task, declared_aspects)
    else:
        if form == "dict":
            raise DataError(f"column {name!r} holds aspect dicts; use task kind 'aspects', not {kind!r}")
        if kind in ("binary", "multiclass") and form not in ("int", "str"):
            raise DataError(
                f"column {name!r} of {train_src.origin} holds {_describe(form)} labels, which need kind "
                f"'multilabel' (or 'aspects'), not {kind!r}"
            )
        spec, enc = _encode_classes(sources, raws, name, kind, task, declared, declared_from, infer_binary=not kind_given)
    return spec, enc, raws


def _describe(form: str) -> str:
    return {
        "int": "index", "str": "name", "list_int": "index-list", "list_str": "name-list",
        "dict": "aspect-dict", "indicator": "0/1 indicator",
    }[form]


def _encode_classes(sources, raws, name, kind, task, declared, declared_from, *, infer_binary):
    train = raws["train"]
    form = train.form
    if form == "indicator":
        names = list(declared) if declared is not None else list(train.fields)
        if len(names) != len(train.fields):
            raise DataError(
                f"{len(train.fields)} indicator columns but {len(names)} declared labels; they must match one to one"
            )
    elif declared is not None:
        names = list(declared)
    elif form in ("int", "list_int"):
        names = _scalar_names_for_ints(train.values)
    else:
        names = sorted(pc.unique(train.values).to_pylist())
    if not names:
        raise DataError(f"{sources[0].origin} has no labels in column {name!r}; every row has an empty label list")
    encoded: dict[str, np.ndarray] = {}
    for src in sources:
        raw = raws[src.split]
        what = "label"
        if raw.form == "indicator":
            enc = raw.matrix
        elif raw.form in ("int", "list_int"):
            enc = _encode_ints(raw.values, len(names), raw.parents, src, src.split, what, declared_from)
        else:
            enc = _encode_names(raw.values, names, raw.parents, src, src.split, what, declared_from)
        if raw.form in ("list_int", "list_str") or kind == "multilabel":
            if raw.form in ("int", "str"):
                parents = np.arange(raw.n)
            elif raw.form == "indicator":
                parents = None
            else:
                parents = raw.parents
            if parents is not None:
                matrix = np.zeros((raw.n, len(names)), dtype=np.float32)
                matrix[parents, enc] = 1.0
                enc = matrix
            else:
                enc = enc.astype(np.float32)
        encoded[src.split] = enc
    # every class needs training examples
    train_enc = encoded["train"]
    counts = train_enc.sum(axis=0) if train_enc.ndim == 2 else np.bincount(train_enc, minlength=len(names))
    zero = [names[i] for i in np.flatnonzero(counts == 0)]
    if zero:
        src0 = sources[0].origin
        origin = declared_from or f"the label indices of {src0} (0..{len(names) - 1})"
        raise DataError(
            f"label(s) {zero[:10]} have zero training examples in {src0} (declared by {origin}); add training "
            f"examples, or remove them from the label list"
        )
    if kind == "binary" or (infer_binary and kind == "multiclass" and len(names) == 2):
        if len(names) != 2:
            raise DataError(
                f"kind 'binary' needs 2 classes, {sources[0].origin} has {len(names)}: {names[:10]}; use kind "
                f"'multiclass' (recipe: task.kind)"
            )
        kind = "binary"
    if kind == "multiclass" and len(names) < 2:
        raise DataError(
            f"the training data {sources[0].origin} has a single class {names}; a classifier needs at least 2: "
            f"add examples of another class"
        )
    hierarchy = task.hierarchy if task is not None else None
    spec = TaskSpec(kind=kind, labels=names, hierarchy=hierarchy)
    return spec, encoded


def _encode_aspects(sources, raws, name, task, declared=None):
    train = raws["train"]
    form = train.form
    if form not in ("dict", "list_str"):
        raise DataError(
            f"column {name!r} of {sources[0].origin} holds {_describe(form)} labels; aspects need a dict "
            f"{{aspect: polarity}} or a list of 'aspect#polarity' strings"
        )
    declared_aspects = list(task.labels) if task is not None else (list(declared) if declared else None)
    declared_pols = list(task.polarities) if task is not None else None
    split_pairs: dict[str, tuple] = {}
    if form == "list_str":
        for src in sources:
            raw = raws[src.split]
            if len(raw.values) == 0:
                split_pairs[src.split] = (pa.array([], pa.string()), pa.array([], pa.string()), raw.parents)
                continue
            parts = pc.split_pattern(raw.values, pattern="#")
            ok = pc.and_(
                pc.equal(pc.list_value_length(parts), 2),
                pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(pc.list_element(
                    pc.if_else(pc.equal(pc.list_value_length(parts), 2), parts, pa.scalar(["", ""], parts.type)), 1))), 0),
            ).to_numpy(zero_copy_only=False)
            if not ok.all():
                j = _first(~ok)
                raise DataError(
                    f"aspect label {raw.values[j].as_py()!r} at {src.where(int(raw.parents[j]))} is not "
                    f"'aspect#polarity'; write each aspect label as aspect#polarity"
                )
            asp = pc.utf8_trim_whitespace(pc.list_element(parts, 0))
            pol = pc.utf8_trim_whitespace(pc.list_element(parts, 1))
            split_pairs[src.split] = (asp, pol, raw.parents)
        train_asp, train_pol, _ = split_pairs["train"]
        aspects = declared_aspects or sorted(pc.unique(train_asp).to_pylist())
        train_pols = pc.unique(train_pol).to_pylist()
    else:
        aspects = declared_aspects or list(train.fields)
        train_pols = sorted({v for c in train.columns for v in pc.unique(c).to_pylist() if v is not None})
    polarities = declared_pols or order_polarities(train_pols)
    if not polarities:
        raise DataError(f"{sources[0].origin}: every aspect is absent in every training row; nothing to learn")
    spec = TaskSpec(kind="aspects", labels=aspects, polarities=polarities)
    classes = spec.aspect_classes
    absent = len(polarities)
    pol_from = "the task's polarities" if declared_pols else "the training data"
    encoded: dict[str, np.ndarray] = {}
    for src in sources:
        raw = raws[src.split]
        matrix = np.full((raw.n, len(aspects)), absent, dtype=np.int64)
        if form == "list_str":
            asp, pol, parents = split_pairs[src.split]
            if len(asp):
                a_idx = pc.index_in(asp, value_set=pa.array(aspects))
                miss = a_idx.is_null().to_numpy(zero_copy_only=False)
                if miss.any():
                    j = _first(miss)
                    raise _unknown_error(
                        asp[j].as_py(), src.where(int(parents[j])), src.split, aspects, "aspect",
                        "the task's aspects" if declared_aspects else None,
                    )
                p_idx = pc.index_in(pol, value_set=pa.array(classes))
                miss = p_idx.is_null().to_numpy(zero_copy_only=False)
                if miss.any():
                    j = _first(miss)
                    raise DataError(
                        f"aspect polarity {pol[j].as_py()!r} (aspect {asp[j].as_py()!r}) at "
                        f"{src.where(int(parents[j]))} is outside the declared set {polarities} (from {pol_from})"
                        f"{did_you_mean(pol[j].as_py(), classes)}; fix the row or declare the polarity"
                    )
                a = a_idx.to_numpy(zero_copy_only=False).astype(np.int64)
                p = p_idx.to_numpy(zero_copy_only=False).astype(np.int64)
                key = parents * len(aspects) + a
                order = np.argsort(key, kind="stable")
                ks, ps = key[order], p[order]
                clash = (ks[1:] == ks[:-1]) & (ps[1:] != ps[:-1])
                if clash.any():
                    j = order[_first(clash) + 1]
                    raise DataError(
                        f"aspect {asp[j].as_py()!r} has two different polarities at {src.where(int(parents[j]))}; "
                        f"keep one"
                    )
                matrix[parents, a] = p
        else:
            for f, col in zip(raw.fields, raw.columns):
                col = pc.if_else(pc.is_null(col), pa.scalar(ABSENT), pc.utf8_trim_whitespace(col))
                if f not in aspects:
                    present = pc.not_equal(col, ABSENT).to_numpy(zero_copy_only=False)
                    if present.any():
                        raise _unknown_error(
                            f, src.where(_first(present)), src.split, aspects, "aspect",
                            "the task's aspects" if declared_aspects else None,
                        )
                    continue
                idx = pc.index_in(col, value_set=pa.array(classes))
                miss = idx.is_null().to_numpy(zero_copy_only=False)
                if miss.any():
                    j = _first(miss)
                    raise DataError(
                        f"aspect polarity {col[j].as_py()!r} for aspect {f!r} at {src.where(j)} is outside the "
                        f"declared set {classes} (from {pol_from}){did_you_mean(col[j].as_py(), classes)}; fix "
                        f"the row or declare the polarity"
                    )
                matrix[:, aspects.index(f)] = idx.to_numpy(zero_copy_only=False)
        encoded[src.split] = matrix
    train_enc = encoded["train"]
    never = [aspects[i] for i in np.flatnonzero((train_enc != absent).sum(axis=0) == 0)]
    if never:
        raise DataError(
            f"aspect(s) {never} have zero training examples (always absent) in {sources[0].origin}; add "
            f"training examples or remove them from the task's aspects"
        )
    used = np.bincount(train_enc.ravel(), minlength=absent + 1)[:absent]
    unused = [polarities[i] for i in np.flatnonzero(used == 0)]
    if unused:
        raise DataError(
            f"polarit{'ies' if len(unused) > 1 else 'y'} {unused} have zero training examples in "
            f"{sources[0].origin}; add examples or remove them from the task's polarities"
        )
    return spec, encoded
