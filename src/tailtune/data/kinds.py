"""The four task kinds as objects: what the head outputs, how targets look, how to decode, how class
weights apply.

A task kind used to be a string compared in many places (``kind in ("binary", "multilabel")``);
:class:`TaskKind` answers those questions once. There is one instance per kind
(:data:`BINARY`, :data:`MULTICLASS`, :data:`MULTILABEL`, :data:`ASPECTS`); :func:`task_kind` turns a
name, a :class:`~tailtune.data.TaskSpec` or a :class:`TaskKind` into the instance, and
``TaskSpec.kind_info`` is the instance of a task.

=============== ========= ======================= ======================== ========================
kind            outputs   encoded target          decoded by               class weights (``auto``)
=============== ========= ======================= ======================== ========================
``binary``      sigmoid   int 0/1 ``(N,)``        logit > 0                ``pos_weight`` of the
                                                                           positive class
``multiclass``  softmax   int in [0, C) ``(N,)``  argmax                   ``alpha`` per class
``multilabel``  sigmoid   multi-hot ``(N, C)``    logit > 0 per label      ``pos_weight`` per label
``aspects``     softmax   int in [0, P] ``(N, A)`` argmax per aspect       ``alpha`` per polarity
                per                                                        (``absent`` included),
                aspect                                                     pooled over aspects
=============== ========= ======================= ======================== ========================

Example:
    >>> task_kind("multilabel").sigmoid, task_kind("multilabel").auto_class_weight
    (True, 'pos_weight')
    >>> [k.name for k in TASK_KINDS.values() if k.softmax]
    ['multiclass', 'aspects']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tailtune.errors import DataError, did_you_mean

__all__ = ["ASPECTS", "BINARY", "KINDS", "MULTICLASS", "MULTILABEL", "TASK_KINDS", "TaskKind", "known_task_kind", "task_kind"]


@dataclass(frozen=True)
class TaskKind:
    """One task kind and every rule that depends on it.

    Attributes:
        name: ``binary``, ``multiclass``, ``multilabel`` or ``aspects``.
        outputs: ``"sigmoid"`` (one independent probability per logit) or ``"softmax"`` (a
            distribution over classes; per aspect for ``aspects``).
        target: how an encoded target looks: ``"index"`` (one int per text), ``"multi_hot"`` (C
            floats 0/1) or ``"index_per_aspect"`` (A ints, ``absent`` = P).
        decode: ``"threshold"`` (logit > 0, i.e. probability > 0.5), ``"argmax"`` or
            ``"argmax_per_aspect"``.
        auto_class_weight: the loss argument ``weighting.apply_to: auto`` fills: ``pos_weight``
            (sigmoid kinds) or ``alpha`` (softmax kinds; a loss without ``alpha`` takes ``weight``).
        class_weight_args: the loss arguments class weights may go to (``apply_to`` choices).
    """

    name: Literal["binary", "multiclass", "multilabel", "aspects"]
    outputs: Literal["sigmoid", "softmax"]
    target: Literal["index", "multi_hot", "index_per_aspect"]
    decode: Literal["threshold", "argmax", "argmax_per_aspect"]
    auto_class_weight: Literal["pos_weight", "alpha"]
    class_weight_args: tuple[str, ...]

    # --------------------------------------------------------------------- the questions asked
    @property
    def sigmoid(self) -> bool:
        """Independent sigmoid outputs (binary, multilabel): BCE-family losses, ``pos_weight``."""
        return self.outputs == "sigmoid"

    @property
    def softmax(self) -> bool:
        """Softmax outputs (multiclass; aspects per aspect): CE-family losses, ``alpha``/``weight``."""
        return self.outputs == "softmax"

    @property
    def per_aspect(self) -> bool:
        """Targets, logits and metrics are per aspect (``aspects``)."""
        return self.target == "index_per_aspect"

    @property
    def single_label(self) -> bool:
        """One class per text (binary, multiclass): targets are ``(N,)`` indices."""
        return self.target == "index"

    @property
    def multi_hot(self) -> bool:
        """Targets are multi-hot label sets (multilabel); the only kind with a label hierarchy."""
        return self.target == "multi_hot"

    @property
    def is_binary(self) -> bool:
        return self.name == "binary"

    @property
    def is_multiclass(self) -> bool:
        return self.name == "multiclass"

    @property
    def is_multilabel(self) -> bool:
        return self.name == "multilabel"

    @property
    def is_aspects(self) -> bool:
        return self.name == "aspects"

    @property
    def float_targets(self) -> bool:
        """The loss takes float targets (binary and multilabel: BCE on 0/1)."""
        return self.sigmoid

    @property
    def target_dtype(self) -> str:
        """The dtype the collator stacks targets in: ``"float32"`` (multilabel) or ``"int64"``."""
        return "float32" if self.target == "multi_hot" else "int64"

    def num_outputs(self, task: Any) -> int:
        """Logits of a model for ``task``: binary 1; multiclass/multilabel C; aspects A * (P + 1)."""
        if self.is_binary:
            return 1
        if self.per_aspect:
            return len(task.labels) * (len(task.polarities) + 1)
        return len(task.labels)

    def target_classes(self, task: Any) -> int:
        """Classes one encoded target entry ranges over (the width of one softmax or one-hot row):
        binary/multiclass/multilabel one per label (multilabel: the multi-hot width); aspects the
        polarities plus ``absent`` (per aspect).

        Example:
            >>> from tailtune.data import TaskSpec
            >>> t = TaskSpec("aspects", ["food", "staff"], polarities=["pos", "neg", "neu"])
            >>> t.kind_info.target_classes(t), BINARY.target_classes(TaskSpec("binary", ["no", "yes"]))
            (4, 2)
        """
        if self.per_aspect:
            return len(task.polarities) + 1
        return len(task.labels)

    def weight_classes(self, task: Any) -> list[str]:
        """The classes a class-weight vector is indexed by (what ``weighting.overrides`` name).

        binary: both labels ``[negative, positive]`` (the loss takes one ratio, see
        :mod:`tailtune.recipe.resolve`); multiclass/multilabel: the labels; aspects: the polarities and
        ``absent`` (pooled over aspects).
        """
        if self.per_aspect:
            return [*task.polarities, "absent"]
        return list(task.labels)

    def weighted_outputs(self, task: Any) -> list[str]:
        """The classes the loss's class-weight tensor has one entry for: binary the positive class;
        multiclass/multilabel the labels; aspects the polarities and ``absent``."""
        if self.is_binary:
            return [task.labels[1]]
        return self.weight_classes(task)

    def __str__(self) -> str:
        return self.name


BINARY = TaskKind("binary", "sigmoid", "index", "threshold", "pos_weight", ("pos_weight", "alpha"))
MULTICLASS = TaskKind("multiclass", "softmax", "index", "argmax", "alpha", ("alpha", "weight"))
MULTILABEL = TaskKind("multilabel", "sigmoid", "multi_hot", "threshold", "pos_weight", ("pos_weight", "alpha"))
ASPECTS = TaskKind("aspects", "softmax", "index_per_aspect", "argmax_per_aspect", "alpha", ("alpha", "weight"))

#: every kind by name, in the documented order
TASK_KINDS: dict[str, TaskKind] = {k.name: k for k in (BINARY, MULTICLASS, MULTILABEL, ASPECTS)}
#: the kind names (the one tuple of them)
KINDS: tuple[str, ...] = tuple(TASK_KINDS)


def task_kind(kind: str | TaskKind | Any) -> TaskKind:
    """The :class:`TaskKind` of a kind name, a :class:`TaskKind`, anything with a ``kind`` attribute
    (a :class:`~tailtune.data.TaskSpec`) or a mapping with a ``"kind"`` key (a TaskSpec's dict).

    Raises:
        DataError: an unknown kind name (with "did you mean").
    """
    if isinstance(kind, TaskKind):
        return kind
    if isinstance(kind, Mapping):
        name = kind.get("kind")
    else:
        name = kind if isinstance(kind, str) else getattr(kind, "kind", kind)
    if isinstance(name, TaskKind):
        return name
    try:
        return TASK_KINDS[name]
    except (KeyError, TypeError):
        raise DataError(
            f"task kind {name!r} is not one of {list(KINDS)}{did_you_mean(str(name), KINDS)}"
        ) from None


def known_task_kind(kind: str | TaskKind | Any) -> TaskKind | None:
    """Like :func:`task_kind`, but ``None`` for a missing or unknown kind instead of an error (for
    reading run folders and recipes that may lack one, e.g. diagnostics of a half-written run)."""
    try:
        return None if kind is None else task_kind(kind)
    except DataError:
        return None
