"""Per-cell class weights of an aspect task: cell names and override keys (no torch).

An aspect task has A aspects and, per aspect, P polarities plus ``absent`` (P + 1 classes). With
``weighting.per_aspect: true`` every (aspect, class) *cell* is a class of its own: the scheme weighs
each cell by its own training count (``STORAGE#negative`` with 21 examples next to
``GENERAL#positive`` with 3,627), see :func:`tailtune.weighting.aspect_class_weights`.

A cell is named ``aspect#class`` (:func:`cell_key`, the layout the data loader already reads).
Override keys (``weighting.overrides``) name a set of cells; the most specific key wins:

============================== ===================================== =========
key                            cells                                 precedence
============================== ===================================== =========
``food#negative``              that one cell                         1 (wins)
``food``                       every class of the aspect (+ absent)  2
``negative`` / ``absent``      that class in every aspect            3
============================== ===================================== =========

An aspect name may itself contain ``#`` (``FOOD#QUALITY``): a key is read as an aspect or a class
first, then split at its LAST ``#`` (``FOOD#QUALITY#negative``). A bare key that is both an aspect
and a class is refused as ambiguous (write ``aspect#class``).

Example:
    >>> cell_overrides({"negative": 2.0, "menu": 1.5, "menu#negative": 4.0}, ["food", "menu"],
    ...                ["positive", "negative", "absent"])
    {(0, 1): 2.0, (1, 1): 4.0, (1, 0): 1.5, (1, 2): 1.5}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tailtune.errors import did_you_mean

__all__ = ["CELL_SEP", "cell_key", "cell_keys", "cell_overrides", "override_key_forms", "parse_cell_key"]

#: separator of an aspect and a class in a cell name (``food#negative``)
CELL_SEP = "#"


def cell_key(aspect: str, cls: str) -> str:
    """The name of the cell (``aspect#class``)."""
    return f"{aspect}{CELL_SEP}{cls}"


def cell_keys(aspects: Sequence[str], classes: Sequence[str]) -> list[str]:
    """Every cell name, aspect-major (the order of the ``(A, P + 1)`` weight table, flattened)."""
    return [cell_key(a, c) for a in aspects for c in classes]


def override_key_forms(aspects: Sequence[str], classes: Sequence[str]) -> str:
    """The valid override keys, for messages (a few of each form)."""
    a0 = aspects[0] if aspects else "aspect"
    c0 = classes[0] if classes else "class"
    shown = ", ".join(list(aspects)[:8]) + (", ..." if len(aspects) > 8 else "")
    return (f"a cell '{cell_key(a0, c0)}', an aspect ({shown}) or a class for every aspect "
            f"({', '.join(classes)})")


def parse_cell_key(key: str, aspects: Sequence[str], classes: Sequence[str]) -> tuple[int | None, int | None]:
    """``(aspect index or None, class index or None)`` of an override key (see the module docstring).

    Raises:
        ValueError: the key names no aspect, class or cell (with the closest valid key), or a bare key
            is both an aspect and a class.
    """
    key = str(key)
    is_aspect, is_class = key in aspects, key in classes
    if is_aspect and is_class:
        raise ValueError(
            f"override key {key!r} is both an aspect and a class; write '{cell_key(key, classes[0])}' "
            f"(one cell) or name the class in every aspect another way"
        )
    if is_aspect:
        return list(aspects).index(key), None
    if is_class:
        return None, list(classes).index(key)
    aspect, sep, cls = key.rpartition(CELL_SEP)
    if sep and aspect in aspects and cls in classes:
        return list(aspects).index(aspect), list(classes).index(cls)
    valid = [*aspects, *classes, *cell_keys(aspects, classes)]
    raise ValueError(
        f"override key {key!r} names no aspect, class or cell{did_you_mean(key, valid)}; "
        f"use {override_key_forms(aspects, classes)}"
    )


def cell_overrides(overrides: Mapping[str, float] | None, aspects: Sequence[str],
                   classes: Sequence[str]) -> dict[tuple[int, int], float]:
    """``{(aspect index, class index): weight}`` of ``overrides`` (keys as in the module docstring;
    a cell key beats an aspect key, which beats a class key).

    Raises:
        ValueError: an unknown or ambiguous key, or a weight that is not a finite number >= 0.
    """
    ranked: dict[tuple[int, int], tuple[int, float]] = {}
    for key, value in (overrides or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
            raise ValueError(f"overrides[{key!r}]={value!r} must be a finite number >= 0")
        a, c = parse_cell_key(key, aspects, classes)
        rank = 1 if (a is not None and c is not None) else 2 if a is not None else 3
        rows = [a] if a is not None else range(len(aspects))
        cols = [c] if c is not None else range(len(classes))
        for i in rows:
            for j in cols:
                if (i, j) not in ranked or rank < ranked[(i, j)][0]:
                    ranked[(i, j)] = (rank, float(value))
    return {cell: value for cell, (_, value) in ranked.items()}
