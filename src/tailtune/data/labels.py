"""Reading label columns in every supported layout (before any vocabulary or encoding).

Layouts (detected from the Arrow type of the column, never from a guess per row):

- scalar label names (strings) or indices (ints; integral floats; booleans);
- multi-label: a list of names or indices, a delimited string (``label_sep``), a bracketed list
  written as text (``"['a', 'b']"``, ``"[3, 17]"``: how pandas writes list columns to CSV), or one
  0/1 column per label (several label columns);
- aspects: a dict ``{aspect: polarity}`` (missing or ``"absent"`` = absent) or a list of
  ``"aspect#polarity"`` strings (aspects not mentioned are absent).

Label names are stripped of surrounding white space and put in Unicode NFC, so 'café' typed with a
precomposed é and with e + a combining accent is one class (a note says so). Indices must be
whole, finite numbers; true/false count as 0/1 only beside 0/1 (beside other indices they are
refused).

Everything here is vectorised over Arrow/numpy arrays: no Python loop runs per row, except for the
rare JSON columns whose rows mix types (they are decoded to tell the user exactly where) and the
distinct values of a column of bracketed lists.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailtune.data.readers import SplitSource, nfc
from tailtune.errors import DataError

INT_RE = r"^\s*[+-]?\d+\s*$"
#: a label string that reads as a list (pandas writes list columns to CSV this way)
LIST_RE = r"^\s*\[.*\]\s*$"
#: integer indices beyond this are not class indices (a float64 holds every integer up to 2**53)
MAX_INDEX = 2**53


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

    def row(self, j: int) -> int:
        """Row of value ``j`` (``values`` are one per row for the scalar forms)."""
        return int(self.parents[j]) if self.parents is not None else int(j)


def _first(mask) -> int | None:
    idx = np.flatnonzero(np.asarray(mask))
    return int(idx[0]) if idx.size else None


def _np(arr) -> np.ndarray:
    """Arrow boolean/number (chunked) array -> numpy."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.to_numpy(zero_copy_only=False)


def source_table(src: SplitSource, columns: list[str] | None = None) -> pa.Table:
    """The rows of ``src`` as an Arrow table (only ``columns`` when given, so a dropped-rows mapping
    copies just those)."""
    ds = src.dataset
    table = ds.data.table
    if columns is not None:
        table = table.select(columns)
    if getattr(ds, "_indices", None) is not None:  # selected rows (saved datasets, dropped empty texts)
        table = table.take(ds._indices.column(0))
    return table


def _is_json_ext(t: pa.DataType) -> bool:
    """The ``arrow.json`` extension type ``datasets`` uses for JSON fields whose rows differ in type."""
    storage = getattr(t, "storage_type", None)
    return isinstance(t, pa.BaseExtensionType) and storage is not None and (
        pa.types.is_string(storage) or pa.types.is_large_string(storage)
    )


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


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


def _big_int(v) -> bool:
    """An integer index that a boolean cannot stand for (not 0 or 1)."""
    return isinstance(v, int) and not isinstance(v, bool) and v not in (0, 1)


def _bool_among_ints(first_of: dict[str, int], big: int | None, where, name: str, inside: str = "") -> None:
    """true/false beside 0/1 indices mean 0/1; beside other class indices they are a mistake: refuse them.

    ``first_of`` maps each JSON kind to its first position, ``big`` is the first position of an index
    other than 0/1 (``None``: none).
    """
    if "bool" in first_of and big is not None:
        raise DataError(
            f"label true/false{inside} at {where(first_of['bool'])} (column {name!r}) is a boolean among class "
            f"indices beyond 0/1 (e.g. at {where(big)}); write it as the index it means"
        )


def _decode_json_column(col, src: SplitSource, name: str) -> pa.Array:
    """A JSON column whose rows have different types: decode, then insist on one type."""
    values = _json_values(col)
    first_of: dict[str, int] = {}
    inner_of: dict[str, int] = {}
    big = inner_big = None
    for i, v in enumerate(values):
        k = _py_kind(v)
        if big is None and _big_int(v):
            big = i
        if k == "list":
            inner = {_py_kind(x) for x in v}
            for x in inner:
                inner_of.setdefault(x, i)
            if inner_big is None and any(_big_int(x) for x in v):
                inner_big = i
            if len(inner - {"bool"}) > 1 or (inner - {"bool", "int"} and "bool" in inner):
                raise DataError(
                    f"mixed label types inside one list at {src.where(i)} (column {name!r}): {v!r}; "
                    f"use only names or only indices"
                )
        first_of.setdefault(k, i)
    _bool_among_ints(first_of, big, src.where, name)
    _bool_among_ints(inner_of, inner_big, src.where, name, " inside the list")
    first_of = {("int" if k == "bool" else k): i for k, i in sorted(first_of.items(), key=lambda kv: -kv[1])}
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
        return _aspect_dicts(values, src, name)
    if kind == "list":
        inner_kinds = {_py_kind(x) for v in values for x in v} - {"bool"}
        if len(inner_kinds) > 1:
            raise DataError(
                f"mixed label types in the lists of column {name!r} of {src.origin}: {sorted(inner_kinds)}; "
                f"use only names or only indices"
            )
        return pa.array([[int(x) if isinstance(x, bool) else x for x in v] for v in values])
    return pa.array([int(v) if isinstance(v, bool) else v for v in values])  # true/false alone: 0/1 indices


def _aspect_dicts(values: list, src: SplitSource, name: str) -> pa.Array:
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


def _check_no_nulls(col, src: SplitSource, name: str) -> None:
    if col.null_count:
        i = _first(_np(col.is_null()))
        raise DataError(f"missing label at {src.where(i)} (column {name!r}); give every row a label")


def _whole_numbers(arr: np.ndarray, where, name: str, inside: str = "") -> np.ndarray:
    """float64 labels -> int64, refusing NaN, infinities, fractions and numbers too large to be an index
    (``where(j)`` names the row of value ``j``)."""
    bad = ~np.isfinite(arr)
    if bad.any():
        j = _first(bad)
        if np.isnan(arr[j]):
            raise DataError(f"missing label (NaN){inside} at {where(j)} (column {name!r}); give every row a label")
        raise DataError(
            f"label {float(arr[j])!r}{inside} at {where(j)} (column {name!r}) is not a class index; labels must be "
            f"names or whole-number indices 0..C-1; fix the row"
        )
    frac = arr != np.round(arr)
    if frac.any():
        j = _first(frac)
        raise DataError(
            f"label {float(arr[j])!r}{inside} at {where(j)} (column {name!r}) is not a class index; labels must be "
            f"names or integer indices (tailtune classifies, it does not regress)"
        )
    huge = np.abs(arr) >= MAX_INDEX
    if huge.any():
        j = _first(huge)
        raise DataError(
            f"label {float(arr[j])!r}{inside} at {where(j)} (column {name!r}) is not a class index (far beyond any "
            f"number of classes); labels are names or indices 0..C-1; fix the row"
        )
    return arr.astype(np.int64)


def _to_int(col, src: SplitSource, name: str, where=None, inside: str = "") -> np.ndarray:
    """bool/int/float Arrow column -> int64 numpy, rejecting nulls, NaN, infinities, fractions and
    integers too large to be an index (``where(j)`` names the row of value ``j``; default: row j)."""
    where = where or src.where
    t = col.type
    if col.null_count:
        i = _first(_np(col.is_null()))
        raise DataError(f"missing label{inside} at {where(i)} (column {name!r}); give every row a label")
    if pa.types.is_floating(t):
        return _whole_numbers(_np(col).astype(np.float64), where, name, inside)
    if pa.types.is_unsigned_integer(t) and len(col) and pc.max(col).as_py() >= MAX_INDEX:
        i = _first(_np(pc.greater_equal(col, MAX_INDEX)))
        raise DataError(
            f"label {col[i].as_py()}{inside} at {where(i)} (column {name!r}) is not a class index (far beyond any "
            f"number of classes); labels are names or indices 0..C-1; fix the row"
        )
    return _np(col).astype(np.int64)


def _indicator_column(col, src: SplitSource, name: str) -> np.ndarray:
    t = col.type
    if _is_string(t):
        _check_no_nulls(col, src, name)
        stripped = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        ones = _np(pc.is_in(stripped, value_set=pa.array(["1", "1.0", "true"])))
        zeros = _np(pc.is_in(stripped, value_set=pa.array(["0", "0.0", "false"])))
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


def normalise_names(values, src: SplitSource, name: str, notes: list[str] | None, parents=None):
    """Strip and NFC-normalise an Arrow string array of label names; say in ``notes`` when NFC changed
    a value (and how many distinct spellings it merged)."""
    values = pc.utf8_trim_whitespace(values)
    if len(values) == 0:
        return values
    normed = pc.utf8_normalize(values, form="NFC")
    changed = _np(pc.fill_null(pc.not_equal(values, normed), False))
    if changed.any() and notes is not None:
        j = _first(changed)
        row = int(parents[j]) if parents is not None else j
        merged = len(pc.unique(values)) - len(pc.unique(normed))
        merged_text = (
            f"; {merged} label(s) written in two Unicode forms are now one class" if merged else ""
        )
        notes.append(
            f"warning: normalised {int(changed.sum())} label value(s) in column {name!r} of {src.origin} to Unicode "
            f"NFC (first at {src.where(row)}: {ascii(values[j].as_py())} -> {ascii(normed[j].as_py())}){merged_text}"
        )
    return normed


def _parse_list_text(text: str):
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, (list, tuple)) and all(
            isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool)) for x in value
        ):
            kinds = {type(x) for x in value}
            return list(value) if len(kinds) <= 1 else None
    return None


def _list_strings(col, src: SplitSource, name: str, notes: list[str] | None) -> pa.Array | None:
    """A string column whose every value is a bracketed list (``"['a', 'b']"``, ``"[3, 17]"``) as a list
    array, or ``None`` when it is not one (then the values are names)."""
    looks = _np(pc.fill_null(pc.match_substring_regex(col, LIST_RE), False))
    if not looks.all():
        if 2 * looks.sum() > len(looks) and _parse_list_text(col[_first(looks)].as_py()) is not None:
            i, j = _first(~looks), _first(looks)
            raise DataError(
                f"the labels in column {name!r} of {src.origin} are bracketed lists such as {col[j].as_py()!r} in "
                f"{int(looks.sum())} of {len(looks)} rows, but {col[i].as_py()!r} at {src.where(i)} is not; write "
                f"every row's labels as a list (e.g. {[col[i].as_py()]!r}), so that they are read as lists"
            )
        return None
    distinct = pc.unique(col).to_pylist()
    parsed = {}
    for text in distinct:
        value = _parse_list_text(text)
        if value is None:
            return None  # e.g. names such as "[neg]": read as names
        parsed[text] = value
    kinds = {type(x) for v in parsed.values() for x in v}
    if len(kinds) > 1:
        return None
    idx = _np(pc.index_in(col, value_set=pa.array(distinct, pa.string())))
    lists = [parsed[distinct[i]] for i in range(len(distinct))]
    table = pa.array(lists, type=pa.list_(pa.int64() if kinds == {int} else pa.string()))
    if notes is not None:
        notes.append(
            f"read the labels in column {name!r} of {src.origin} as lists (every value is a bracketed list such as "
            f"{distinct[0]!r})"
        )
    return table.take(pa.array(idx))


def parse_labels(
    src: SplitSource, columns: list[str], *, label_sep: str | None = None, notes: list[str] | None = None
) -> RawLabels:
    """Read the label column(s) of one split into a :class:`RawLabels` (no vocabulary yet)."""
    table = source_table(src, columns)
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
    if _is_string(t):
        return _parse_strings(col, src, name, n, label_sep, notes)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        _check_no_nulls(col, src, name)
        return _from_list(col, src, name, n, notes)
    if pa.types.is_struct(t):
        return _from_struct(col, src, name, n, notes)
    raise DataError(
        f"label column {name!r} of {src.origin} has unsupported type {t}; use names, indices, lists, "
        f"an aspect dict or 'aspect#polarity' lists"
    )


def _parse_strings(col, src: SplitSource, name: str, n: int, label_sep: str | None, notes) -> RawLabels:
    if label_sep:  # an empty cell is a row without labels
        parts = pc.split_pattern(pc.fill_null(col, ""), pattern=label_sep)
        return _from_list(parts, src, name, n, notes)
    _check_no_nulls(col, src, name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    lists = _list_strings(col, src, name, notes)
    if lists is not None:
        return _from_list(lists, src, name, n, notes)
    return RawLabels("str", n, values=normalise_names(col, src, name, notes))


def _from_struct(col, src: SplitSource, name: str, n: int, notes) -> RawLabels:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    fields = [nfc(t.field(i).name.strip()) for i in range(t.num_fields)]
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
        if not (_is_string(child.type) or pa.types.is_null(child.type)):
            raise DataError(
                f"aspect {f!r} in column {name!r} of {src.origin} holds {child.type} values; aspect dicts "
                f"map each aspect to a polarity name"
            )
        cols.append(normalise_names(child.cast(pa.string()), src, name, notes))
    return _merge_spellings(RawLabels("dict", n, fields=fields, columns=cols), src, name)


def _merge_spellings(raw: RawLabels, src: SplitSource, name: str) -> RawLabels:
    """Aspect keys that are one name once stripped and in NFC (``"Phở"`` typed two ways in different
    rows) become one aspect; a row giving it two different polarities is an error."""
    merged: dict[str, object] = {}
    for f, col in zip(raw.fields, raw.columns, strict=True):
        if f not in merged:
            merged[f] = col
            continue
        old = merged[f]
        clash = _np(pc.fill_null(pc.and_(pc.and_(pc.is_valid(old), pc.is_valid(col)), pc.not_equal(old, col)), False))
        if clash.any():
            i = _first(clash)
            raise DataError(
                f"aspect {f!r} has two different polarities at {src.where(i)} (column {name!r}; the key is written "
                f"two ways); keep one"
            )
        merged[f] = pc.coalesce(old, col)
    return RawLabels("dict", raw.n, fields=list(merged), columns=list(merged.values()))


def _list_items_of_mixed_json(flat, parents, src: SplitSource, name: str) -> pa.Array:
    """List items of different JSON types: decode, refuse a mix, return one typed array."""
    items = [None if v is None else json.loads(v) for v in flat.storage.to_pylist()]
    first_of: dict[str, int] = {}
    for j, v in enumerate(items):
        first_of.setdefault(_py_kind(v), j)
    big = next((j for j, v in enumerate(items) if _big_int(v)), None)
    _bool_among_ints(first_of, big, lambda j: src.where(int(parents[j])), name, " inside the list")
    first_of = {("int" if k == "bool" else k): j for k, j in sorted(first_of.items(), key=lambda kv: -kv[1])}
    if len(first_of) > 1:
        (k1, j1), (k2, j2) = sorted(first_of.items(), key=lambda kv: kv[1])[:2]
        raise DataError(
            f"mixed label types in the lists of column {name!r}: {k1} at {src.where(int(parents[j1]))} but {k2} "
            f"at {src.where(int(parents[j2]))}; use only names or only indices"
        )
    return pa.array([int(v) if isinstance(v, bool) else v for v in items])


def _from_list(col, src: SplitSource, name: str, n: int, notes=None) -> RawLabels:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    parents = _np(pc.list_parent_indices(col)).astype(np.int64)
    flat = pc.list_flatten(col)
    vt = flat.type
    if _is_json_ext(vt):  # list items of different JSON types
        flat = _list_items_of_mixed_json(flat, parents, src, name)
        vt = flat.type
    if _is_string(vt):
        if flat.null_count:
            i = int(parents[_first(_np(flat.is_null()))])
            raise DataError(f"missing label inside the list at {src.where(i)} (column {name!r})")
        flat = normalise_names(flat, src, name, notes, parents)
        keep = pc.greater(pc.utf8_length(flat), 0)  # "a,,b" or a trailing separator: drop the empty piece
        if not pc.all(keep).as_py():
            flat = flat.filter(keep)
            parents = parents[_np(keep)]
        return RawLabels("list_str", n, values=flat, parents=parents)
    if pa.types.is_null(vt) and len(flat) == 0:
        return RawLabels("list_int", n, values=np.zeros(0, np.int64), parents=parents)
    if pa.types.is_boolean(vt) or pa.types.is_integer(vt) or pa.types.is_floating(vt):
        if flat.null_count:
            j = _first(_np(flat.is_null()))
            raise DataError(f"missing label inside the list at {src.where(int(parents[j]))} (column {name!r})")
        values = _to_int(flat, src, name, lambda j: src.where(int(parents[j])), " inside the list")
        return RawLabels("list_int", n, values=values, parents=parents)
    raise DataError(f"label lists in column {name!r} of {src.origin} hold {vt}; use label names or indices")


# ---------------------------------------------------------------------------------------------------
# names that are really indices


def _int_like(values) -> np.ndarray:
    return _np(pc.match_substring_regex(values, INT_RE))


def resolve_strings(raw: RawLabels, src: SplitSource, name: str, declared: list[str] | None, train_form: str | None):
    """Turn a ``str``/``list_str`` RawLabels whose values are all integers into ``int``/``list_int``.

    Raises the "mixed label types" error when some values are integers and others are not (and the
    declared names do not explain them), and refuses integers too large to be a class index.
    """
    if raw.form not in ("str", "list_str"):
        return raw
    values = raw.values
    if len(values) == 0:
        return raw
    if declared is not None and pc.all(pc.is_in(values, value_set=pa.array(declared, pa.string()))).as_py():
        return raw
    if train_form in ("str", "list_str") and declared is None:
        return raw  # names, checked against the training vocabulary when encoding
    ints = _int_like(values)
    if ints.all():
        digits = _np(pc.utf8_length(pc.utf8_ltrim(pc.utf8_trim_whitespace(values), characters="+-0")))
        if (digits > 15).any():
            j = _first(digits > 15)
            raise DataError(
                f"label {values[j].as_py()!r} at {src.where(raw.row(j))} (column {name!r}) is not a class index (far "
                f"beyond any number of classes); labels are names or indices 0..C-1; fix the row"
            )
        converted = _np(pc.cast(pc.utf8_trim_whitespace(values), pa.int64()))
        form = "int" if raw.form == "str" else "list_int"
        return RawLabels(form, raw.n, values=converted, parents=raw.parents)
    if ints.any():
        i_int, i_name = _first(ints), _first(~ints)
        raise DataError(
            f"mixed label types in column {name!r} of {src.origin}: index {values[i_int].as_py()!r} at "
            f"{src.where(raw.row(i_int))} but name {values[i_name].as_py()!r} at {src.where(raw.row(i_name))}; "
            f"write every label the same way (all names, or all indices with a labels.txt)"
        )
    return raw


def describe(form: str) -> str:
    return {
        "int": "index", "str": "name", "list_int": "index-list", "list_str": "name-list",
        "dict": "aspect-dict", "indicator": "0/1 indicator",
    }[form]
