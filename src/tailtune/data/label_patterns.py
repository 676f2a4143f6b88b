"""Label columns that parse but mean something else: the patterns a careless export leaves.

- multi-label lists joined into one string (``"approval,neutral"``) without ``label_sep``: read as
  they are, they become one class per combination;
- ``aspect#polarity`` lists in which a few entries are not pairs (one ``"OTHERS"``): the kind would
  be inferred from that minority;
- label names that differ only in letter case (``Spam``/``spam``).

Each check looks at the distinct values (or one vectorised pass) and raises a
:class:`tailtune.errors.DataError` naming the file, the row and the two ways to fix it: the rows, or
a declaration (recipe field and CLI flag).
"""

from __future__ import annotations

import shlex

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailtune.data.labels import RawLabels, _first, _np
from tailtune.data.readers import SplitSource
from tailtune.errors import DataError

#: separators a multi-label export joins labels with
SEPARATORS = (",", "|", ";", "+", "/")
PAIR_RE = r"^[^#]+#[^#]+$"


def _parts(name: str, sep: str) -> list[str]:
    return [p.strip() for p in name.split(sep)]


def find_joined(names: list[str]) -> tuple[str, list[str]] | None:
    """``(separator, joined names)`` when ``names`` look like label lists joined by a separator.

    A separator qualifies when at least half of the names holding it split into parts that are all
    names of their own (``"approval,neutral"`` beside ``"approval"`` and ``"neutral"``), or when every
    name holds it, there are at least 4 and fewer distinct parts than combinations.
    """
    best: tuple[int, str, list[str]] | None = None
    for sep in SEPARATORS:
        joined = [n for n in names if sep in n]
        if not joined:
            continue
        singles = {n for n in names if sep not in n}
        covered = [n for n in joined if all(p and p in singles for p in _parts(n, sep))]
        pieces = {p for n in joined for p in _parts(n, sep)}
        combinatorial = (
            len(joined) == len(names) >= 4 and "" not in pieces and len(pieces) < len(joined)
        )
        if (covered and 2 * len(covered) >= len(joined)) or combinatorial:
            score = max(len(covered), len(joined) if combinatorial else 0)
            if best is None or score > best[0]:
                best = (score, sep, covered or joined)
    return (best[1], best[2]) if best else None


def sep_declaration(sep: str) -> str:
    """How to declare ``sep`` in each entry point."""
    return (
        f"recipe data.label_sep: {sep!r}, CLI --label-sep {shlex.quote(sep)} "
        f"(Python: load_dataset(..., label_sep={sep!r}))"
    )


def check_joined(raw: RawLabels, src: SplitSource, name: str) -> None:
    """Refuse scalar string labels that are label lists joined by a separator (see :func:`find_joined`)."""
    if raw.form != "str" or len(raw.values) == 0:
        return
    names = pc.unique(raw.values).to_pylist()
    found = find_joined(names)
    if found is None:
        return
    sep, joined = found
    example = joined[0]
    row = _first(_np(pc.equal(raw.values, example)))
    rows = int(pc.sum(pc.is_in(raw.values, value_set=pa.array(joined, pa.string()))).as_py() or 0)
    raise DataError(
        f"the labels in column {name!r} of {src.origin} look like multi-label lists joined by {sep!r}: "
        f"{example!r} at {src.where(row)} (its parts {_parts(example, sep)} are labels of other rows; "
        f"{len(joined)} of {len(names)} distinct labels, in {rows} rows, are joined like this), so each "
        f"combination would be a class of its own; declare the separator: {sep_declaration(sep)}; if they are "
        f"single class names, declare the kind: recipe task.kind: multiclass, CLI --task multiclass"
    )


def joined_hint(value: str, names: list[str]) -> str:
    """A hint for an unknown label that is known labels joined by a separator, else ``""``."""
    known = set(names)
    for sep in SEPARATORS:
        parts = _parts(value, sep)
        if len(parts) > 1 and all(p in known for p in parts):
            return (
                f" (it is the labels {parts} joined by {sep!r}: if a row may have several labels, declare the "
                f"separator: {sep_declaration(sep)})"
            )
    return ""


def check_pairs_minority(raw: RawLabels, src: SplitSource, name: str) -> None:
    """Refuse name lists where most entries are ``aspect#polarity`` but some are not.

    The kind would otherwise be inferred from the minority (``multilabel`` because of one ``OTHERS``).
    """
    if raw.form != "list_str" or len(raw.values) == 0:
        return
    pair = _np(pc.match_substring_regex(raw.values, PAIR_RE))
    n_pair = int(pair.sum())
    if n_pair == len(pair) or 2 * n_pair <= len(pair):
        return
    bad = np.flatnonzero(~pair)
    shown = ", ".join(f"{raw.values[int(j)].as_py()!r} at {src.where(raw.row(int(j)))}" for j in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    raise DataError(
        f"column {name!r} of {src.origin} holds 'aspect#polarity' lists ({n_pair} of {len(pair)} entries), but "
        f"{len(bad)} entries are not aspect#polarity: {shown}{more}; the task kind is not inferred from a minority of "
        f"rows: fix those rows (write them as aspect#polarity, or remove the entry), or declare the kind: recipe "
        f"task.kind: aspects (those entries are then errors) or multilabel (every string a label), CLI --task aspects "
        f"or --task multilabel"
    )


def case_variants(names: list[str]) -> list[list[str]]:
    """Groups of two or more names equal up to letter case."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n.casefold(), []).append(n)
    return [g for g in groups.values() if len(g) > 1]


def case_variant_note(names: list[str], origin: str) -> str | None:
    groups = case_variants(names)
    if not groups:
        return None
    shown = "; ".join(" / ".join(repr(n) for n in g) for g in groups[:3])
    return (
        f"warning: {len(groups)} group(s) of labels of {origin} differ only in letter case and are separate classes: "
        f"{shown}{' ...' if len(groups) > 3 else ''}; if each group is one class, write its labels the same way"
    )
