"""The task specification shared by every layer: what the labels are and how they are encoded.

A :class:`TaskSpec` names the task kind (``binary``, ``multiclass``, ``multilabel``, ``aspects``), the
label (or aspect) names, the aspect polarities and an optional label hierarchy. Models size their head
from :attr:`TaskSpec.num_outputs`; losses, metrics and decoding read :attr:`TaskSpec.kind`.

Encoded targets (column ``labels`` of every split returned by :func:`tailtune.data.load_dataset`):

- ``binary``: int 0/1 (index into ``labels = [negative, positive]``);
- ``multiclass``: int in ``[0, C)``;
- ``multilabel``: list of C floats 0/1 (multi-hot);
- ``aspects``: list of A ints in ``[0, P]`` where ``P`` (the last index) means ``absent``.

Example:
    >>> spec = TaskSpec(kind="aspects", labels=["food", "service"], polarities=["positive", "negative"])
    >>> spec.num_outputs, spec.aspect_classes
    (6, ['positive', 'negative', 'absent'])
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tailtune.data.kinds import KINDS, TaskKind, task_kind
from tailtune.errors import DataError, did_you_mean
from tailtune.utils.io import atomic_write_json

ABSENT = "absent"
# polarities are listed in this order when inferred from data (others follow, sorted)
CANONICAL_POLARITIES = ("positive", "negative", "neutral", "conflict")

#: a label group's metric is named ``<metric>@<group>`` (``macro_f1@primary``): in the metric reports
#: (``eval.json``, ``history.jsonl``) and as ``early_stopping.metric``
GROUP_SEP = "@"
#: the group metrics that have a ``<metric>@<group>`` name (higher is better)
GROUP_METRICS = ("macro_f1", "micro_f1", "macro_precision", "macro_recall")


def group_metric(metric: str, group: str) -> str:
    """The name of a group's metric: ``group_metric("macro_f1", "primary") == "macro_f1@primary"``."""
    return f"{metric}{GROUP_SEP}{group}"


def split_group_metric(name: str) -> tuple[str, str | None]:
    """``("macro_f1", "primary")`` for ``"macro_f1@primary"``; ``(name, None)`` for a plain metric."""
    metric, sep, group = str(name).partition(GROUP_SEP)
    return (metric, group) if sep else (metric, None)


def check_groups(groups: Any, labels: list[str] | None, *, what: str = "label") -> dict[str, list[str]]:
    """``groups`` (``{name: [member, ...]}``) checked against ``labels`` (``None``: the names only, the
    labels are not known yet); returns a clean copy.

    Raises:
        DataError: not a mapping of non-empty lists, an empty or ``@``-holding group name, a member
            twice in a group, or a member that is not one of ``labels`` (naming the closest).
    """
    if not isinstance(groups, dict) or not groups:
        raise DataError(f"label groups must be a mapping {{group: [{what}, ...]}}, got {groups!r}")
    out: dict[str, list[str]] = {}
    for name, members in groups.items():
        name = str(name)
        if not name.strip() or GROUP_SEP in name:
            raise DataError(f"group name {name!r} must be non-empty and hold no {GROUP_SEP!r} (metrics are named "
                            f"metric{GROUP_SEP}group)")
        if isinstance(members, str) or not isinstance(members, (list, tuple)) or not members:
            raise DataError(f"group {name!r} must list at least one {what}, got {members!r}")
        members = [str(m) for m in members]
        dupes = sorted({m for m in members if members.count(m) > 1})
        if dupes:
            raise DataError(f"group {name!r} lists {dupes} twice; give each {what} once")
        for m in members if labels is not None else ():
            if m not in labels:
                raise DataError(f"group {name!r} names {m!r}, which is not a {what}{did_you_mean(m, labels)}; "
                                f"{what}s: {labels[:20]}")
        out[name] = members
    return out

#: the kind names as a type (``TaskSpec.kind``); :class:`~tailtune.data.kinds.TaskKind` is the kind as an object
KindName = Literal["binary", "multiclass", "multilabel", "aspects"]


def order_polarities(values) -> list[str]:
    """Order polarity names: the canonical ones first (positive, negative, neutral, conflict), then sorted."""
    values = set(values) - {ABSENT}
    known = [p for p in CANONICAL_POLARITIES if p in values]
    return known + sorted(values - set(known))


def hierarchy_cycle(hierarchy: dict[str, str]) -> list[str] | None:
    """Return one cycle of a child -> parent map as a list of names, or ``None`` when it is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in hierarchy:
        path: list[str] = []
        node = start
        while node in hierarchy and state.get(node) != 2:
            if state.get(node) == 1:
                return path[path.index(node) :] + [node]
            state[node] = 1
            path.append(node)
            node = hierarchy[node]
        for visited in path:
            state[visited] = 2
    return None


@dataclass
class TaskSpec:
    """What is being predicted, and in which order.

    Args:
        kind: one of ``binary``, ``multiclass``, ``multilabel``, ``aspects``.
        labels: binary ``[negative, positive]``; multiclass/multilabel the C class names in index
            order; aspects the A aspect names.
        polarities: aspects only, the P polarity names WITHOUT ``absent`` (absent is index P).
        hierarchy: multilabel only, ``{child: parent}``; both must be label names, no cycles.
        groups: named label groups ``{group: [label, ...]}`` (aspects: groups of aspects), not for
            binary tasks; every metric report then has each group's macro-F1 (``groups`` and
            ``macro_f1@<group>``). Groups may overlap.
        text_column: the source column holding the text (renamed ``text`` once loaded).
        label_column: the source column holding the labels (renamed ``labels`` once loaded);
            several 0/1 indicator columns are written comma-separated.

    Raises:
        DataError (a ``ValueError``): invalid kind, duplicate or empty names, a binary task without
            exactly two labels, polarities outside ``aspects``, an unknown or cyclic hierarchy.

    Relations:
        ``num_outputs`` is 1 (binary), C (multiclass, multilabel) or A * (P + 1) (aspects).
    """

    kind: KindName
    labels: list[str]
    polarities: list[str] = field(default_factory=list)
    hierarchy: dict[str, str] | None = None
    text_column: str = "text"
    label_column: str = "labels"
    groups: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"task kind {self.kind!r} is not one of {list(KINDS)}{did_you_mean(self.kind, KINDS)}")
        info = task_kind(self.kind)
        self.labels = [str(x) for x in self.labels]
        self.polarities = [str(x) for x in self.polarities]
        what = "aspects" if info.per_aspect else "labels"
        if not self.labels:
            raise DataError(f"task {what} must not be empty")
        if len(set(self.labels)) != len(self.labels):
            dupes = sorted({x for x in self.labels if self.labels.count(x) > 1})
            raise DataError(f"task {what} contain duplicates: {dupes}; give each name once")
        if any(not x.strip() for x in self.labels):
            raise DataError(f"task {what} contain an empty name; every label needs a name")
        if info.is_binary and len(self.labels) != 2:
            raise DataError(
                f"a binary task needs exactly 2 labels [negative, positive], got {len(self.labels)}: "
                f"{self.labels[:10]}; use kind 'multiclass' for more classes"
            )
        self._check_polarities(info)
        self._check_hierarchy(info)
        self._check_groups(info)

    def _check_groups(self, info: TaskKind) -> None:
        if not self.groups:
            self.groups = None
            return
        if info.is_binary:
            raise DataError("label groups are for multiclass, multilabel and aspects tasks, not binary (two labels)")
        self.groups = check_groups(self.groups, self.labels, what="aspect" if info.per_aspect else "label")

    def _check_polarities(self, info: TaskKind) -> None:
        if info.per_aspect:
            if not self.polarities:
                raise DataError("an aspects task needs polarities, e.g. ['positive', 'negative', 'neutral']")
            if ABSENT in self.polarities:
                raise DataError(f"polarities must not contain {ABSENT!r}: it is implicit (the last class)")
            if len(set(self.polarities)) != len(self.polarities):
                raise DataError(f"task polarities contain duplicates: {self.polarities}")
        elif self.polarities:
            raise DataError(f"polarities are for kind 'aspects' only, not {self.kind!r}")

    def _check_hierarchy(self, info: TaskKind) -> None:
        if not self.hierarchy:
            self.hierarchy = None
            return
        if not info.multi_hot:
            raise DataError(f"a label hierarchy is for kind 'multilabel' only, not {self.kind!r}")
        self.hierarchy = {str(k): str(v) for k, v in self.hierarchy.items()}
        for child, parent in self.hierarchy.items():
            for name in (child, parent):
                if name not in self.labels:
                    raise DataError(
                        f"hierarchy names {name!r}, which is not a label{did_you_mean(name, self.labels)}; "
                        f"labels: {self.labels[:20]}"
                    )
            if child == parent:
                raise DataError(f"hierarchy maps {child!r} to itself; remove that entry")
        cycle = hierarchy_cycle(self.hierarchy)
        if cycle:
            raise DataError(f"hierarchy has a cycle: {' -> '.join(cycle)}; a child's parent chain must end")

    # ------------------------------------------------------------------ derived
    @property
    def kind_info(self) -> TaskKind:
        """The kind as an object: outputs, targets, decoding, how class weights apply
        (:mod:`tailtune.data.kinds`)."""
        return task_kind(self.kind)

    @property
    def num_labels(self) -> int:
        """C for binary (2), multiclass and multilabel; A (aspects) for aspects."""
        return len(self.labels)

    @property
    def num_outputs(self) -> int:
        """Logits the model emits: binary 1; multiclass/multilabel C; aspects A * (P + 1)."""
        return self.kind_info.num_outputs(self)

    @property
    def aspect_classes(self) -> list[str]:
        """Aspects only: ``polarities + ["absent"]`` (absent is the last index, P)."""
        if not self.kind_info.per_aspect:
            return []
        return [*self.polarities, ABSENT]

    @property
    def aspects(self) -> list[str]:
        """Alias of ``labels`` for aspect tasks (empty otherwise)."""
        return list(self.labels) if self.kind_info.per_aspect else []

    def group_indices(self) -> dict[str, list[int]]:
        """``{group: [index into labels, ...]}`` (empty without groups)."""
        return {g: [self.labels.index(m) for m in members] for g, members in (self.groups or {}).items()}

    def with_groups(self, groups: dict[str, list[str]] | None) -> TaskSpec:
        """A copy of this task with ``groups`` (checked against the labels)."""
        return TaskSpec(kind=self.kind, labels=list(self.labels), polarities=list(self.polarities),
                        hierarchy=dict(self.hierarchy) if self.hierarchy else None, text_column=self.text_column,
                        label_column=self.label_column, groups=groups)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "labels": list(self.labels),
            "polarities": list(self.polarities),
            "hierarchy": dict(self.hierarchy) if self.hierarchy else None,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "groups": {g: list(m) for g, m in self.groups.items()} if self.groups else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        if not isinstance(d, dict):
            raise DataError(f"a task specification must be a mapping, got {type(d).__name__}")
        known = {"kind", "labels", "polarities", "hierarchy", "text_column", "label_column", "groups"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(
                f"unknown task field(s) {unknown}{did_you_mean(unknown[0], known)}; valid: {sorted(known)}"
            )
        for required in ("kind", "labels"):
            if required not in d:
                raise DataError(f"task specification lacks {required!r}")
        return cls(
            kind=d["kind"],
            labels=list(d["labels"]),
            polarities=list(d.get("polarities") or []),
            hierarchy=d.get("hierarchy") or None,
            text_column=d.get("text_column") or "text",
            label_column=d.get("label_column") or "labels",
            groups=d.get("groups") or None,
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TaskSpec:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"task file {path} does not exist")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(
                f"task file {path} is not valid JSON: {exc}; fix the file (TaskSpec.to_json writes it) or pass a "
                f"task kind ({', '.join(KINDS)})"
            ) from None
        try:
            return cls.from_dict(d)
        except DataError as exc:
            raise DataError(f"task file {path}: {exc}") from None
