"""Encoding aspect labels (``{aspect: polarity}`` dicts or ``"aspect#polarity"`` lists) for an
``aspects`` :class:`TaskSpec`: an (N, A) matrix of polarity indices, ``P`` (the last) = absent."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailtune.data.labels import RawLabels, _first, _np, describe
from tailtune.data.readers import SplitSource, nfc
from tailtune.data.task import ABSENT, TaskSpec, order_polarities
from tailtune.errors import DataError, did_you_mean


def unknown_error(value, where: str, split: str, names: list[str], what: str, declared_from: str | None,
                  hint: str = "") -> DataError:
    """A label (aspect, ...) that is not among the known ones: in train (declared set) or in another split."""
    shown = names if len(names) <= 20 else names[:20] + ["..."]
    if split == "train" and declared_from:
        return DataError(
            f"{what} {value!r} at {where} is not in {declared_from}{did_you_mean(str(value), names)}{hint}; "
            f"known: {shown}; add it there or fix the row"
        )
    return DataError(
        f"{what} {value!r} at {where} does not occur in the training data{did_you_mean(str(value), names)}{hint}; "
        f"training {what}s: {shown}; fix the row, or add training examples of it"
    )


def _split_pairs(raw: RawLabels, src: SplitSource) -> tuple:
    """``(aspects, polarities, parents)`` string arrays of one split's ``aspect#polarity`` lists."""
    if len(raw.values) == 0:
        return pa.array([], pa.string()), pa.array([], pa.string()), raw.parents
    parts = pc.split_pattern(raw.values, pattern="#")
    two = pc.equal(pc.list_value_length(parts), 2)
    second = pc.list_element(pc.if_else(two, parts, pa.scalar(["", ""], parts.type)), 1)
    ok = _np(pc.and_(two, pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(second)), 0)))
    if not ok.all():
        j = _first(~ok)
        raise DataError(
            f"aspect label {raw.values[j].as_py()!r} at {src.where(raw.row(j))} is not 'aspect#polarity'; write "
            f"each aspect label as aspect#polarity"
        )
    asp = pc.utf8_trim_whitespace(pc.list_element(parts, 0))
    pol = pc.utf8_trim_whitespace(pc.list_element(parts, 1))
    return asp, pol, raw.parents


def _vocabulary(sources, raws, split_pairs, task, declared) -> tuple[list[str], list[str]]:
    """The aspects and polarities: declared (task / declared aspects) or from the training data."""
    train = raws["train"]
    declared_aspects = list(task.labels) if task is not None else (list(declared) if declared else None)
    declared_pols = list(task.polarities) if task is not None else None
    if train.form == "list_str":
        train_asp, train_pol, _ = split_pairs["train"]
        aspects = declared_aspects or sorted(pc.unique(train_asp).to_pylist())
        train_pols = pc.unique(train_pol).to_pylist()
    else:
        aspects = declared_aspects or list(train.fields)
        train_pols = sorted({v for c in train.columns for v in pc.unique(c).to_pylist() if v is not None})
    polarities = declared_pols or order_polarities(train_pols)
    if not polarities:
        raise DataError(f"{sources[0].origin}: every aspect is absent in every training row; nothing to learn")
    return aspects, polarities


def _encode_pairs(pairs, n: int, src: SplitSource, aspects, classes, polarities, pol_from, aspects_from):
    asp, pol, parents = pairs
    matrix = np.full((n, len(aspects)), len(polarities), dtype=np.int64)
    if not len(asp):
        return matrix
    a_idx = pc.index_in(asp, value_set=pa.array([nfc(a) for a in aspects], pa.string()))
    miss = _np(a_idx.is_null())
    if miss.any():
        j = _first(miss)
        raise unknown_error(asp[j].as_py(), src.where(int(parents[j])), src.split, aspects, "aspect", aspects_from)
    p_idx = pc.index_in(pol, value_set=pa.array([nfc(c) for c in classes], pa.string()))
    miss = _np(p_idx.is_null())
    if miss.any():
        j = _first(miss)
        raise DataError(
            f"aspect polarity {pol[j].as_py()!r} (aspect {asp[j].as_py()!r}) at {src.where(int(parents[j]))} is "
            f"outside the declared set {polarities} (from {pol_from}){did_you_mean(pol[j].as_py(), classes)}; fix "
            f"the row or declare the polarity"
        )
    a = _np(a_idx).astype(np.int64)
    p = _np(p_idx).astype(np.int64)
    key = parents * len(aspects) + a
    order = np.argsort(key, kind="stable")
    ks, ps = key[order], p[order]
    clash = (ks[1:] == ks[:-1]) & (ps[1:] != ps[:-1])
    if clash.any():
        j = order[_first(clash) + 1]
        raise DataError(
            f"aspect {asp[j].as_py()!r} has two different polarities at {src.where(int(parents[j]))}; keep one"
        )
    matrix[parents, a] = p
    return matrix


def _encode_dicts(raw: RawLabels, src: SplitSource, aspects, classes, pol_from, aspects_from):
    matrix = np.full((raw.n, len(aspects)), len(classes) - 1, dtype=np.int64)
    value_set = pa.array([nfc(c) for c in classes], pa.string())
    index = {nfc(a): i for i, a in enumerate(aspects)}
    for f, col in zip(raw.fields, raw.columns, strict=True):
        col = pc.if_else(pc.is_null(col), pa.scalar(ABSENT), col)
        if f not in index:
            present = _np(pc.not_equal(col, ABSENT))
            if present.any():
                raise unknown_error(f, src.where(_first(present)), src.split, aspects, "aspect", aspects_from)
            continue
        idx = pc.index_in(col, value_set=value_set)
        miss = _np(idx.is_null())
        if miss.any():
            j = _first(miss)
            raise DataError(
                f"aspect polarity {col[j].as_py()!r} for aspect {f!r} at {src.where(j)} is outside the "
                f"declared set {classes} (from {pol_from}){did_you_mean(col[j].as_py(), classes)}; fix "
                f"the row or declare the polarity"
            )
        matrix[:, index[f]] = _np(idx)
    return matrix


def _check_trained(train_enc: np.ndarray, aspects, polarities, origin: str) -> None:
    absent = len(polarities)
    never = [aspects[i] for i in np.flatnonzero((train_enc != absent).sum(axis=0) == 0)]
    if never:
        raise DataError(
            f"aspect(s) {never} have zero training examples (always absent) in {origin}; add "
            f"training examples or remove them from the task's aspects"
        )
    used = np.bincount(train_enc.ravel(), minlength=absent + 1)[:absent]
    unused = [polarities[i] for i in np.flatnonzero(used == 0)]
    if unused:
        raise DataError(
            f"polarit{'ies' if len(unused) > 1 else 'y'} {unused} have zero training examples in "
            f"{origin}; add examples or remove them from the task's polarities"
        )


def encode_aspects(sources, raws, name, task, declared=None) -> tuple[TaskSpec, dict[str, np.ndarray]]:
    """The aspects :class:`TaskSpec` (declared or inferred from train) and each split's (N, A) targets."""
    form = raws["train"].form
    if form not in ("dict", "list_str"):
        raise DataError(
            f"column {name!r} of {sources[0].origin} holds {describe(form)} labels; aspects need a dict "
            f"{{aspect: polarity}} or a list of 'aspect#polarity' strings"
        )
    split_pairs = {s.split: _split_pairs(raws[s.split], s) for s in sources} if form == "list_str" else {}
    aspects, polarities = _vocabulary(sources, raws, split_pairs, task, declared)
    spec = TaskSpec(kind="aspects", labels=aspects, polarities=polarities)
    pol_from = "the task's polarities" if task is not None else "the training data"
    aspects_from = "the task's aspects" if (task is not None or declared) else None
    encoded: dict[str, np.ndarray] = {}
    for src in sources:
        raw = raws[src.split]
        if form == "list_str":
            encoded[src.split] = _encode_pairs(split_pairs[src.split], raw.n, src, aspects, spec.aspect_classes,
                                               polarities, pol_from, aspects_from)
        else:
            encoded[src.split] = _encode_dicts(raw, src, aspects, spec.aspect_classes, pol_from, aspects_from)
    _check_trained(encoded["train"], aspects, polarities, sources[0].origin)
    return spec, encoded
