"""The one result type of every diagnostic: :class:`Finding`.

A rule or a lint check says *what* it looked at (``figures``), *what* it concluded (``verdict``) and
*what to change* (``action``). Severities, from least to most serious: ``ok`` (a check that passed,
e.g. "both loss parts falling"), ``info`` (a fact worth showing: best epoch, why training stopped),
``warning`` (probably hurting results) and ``error`` (a recipe that is wrong; ``tailtune lint`` exits 1).

A finding whose action changes a setting declares it as :class:`Knob` objects (the setting and the
direction it moves, and the classes it moves it for): :func:`tailtune.diagnostics.reconcile.reconcile`
merges findings that pull one knob in opposite directions into one recommendation.

Example:
    >>> f = Finding("val_loss_rising", "warning", {"rel_slope": 0.04}, "validation loss rises", "stop earlier")
    >>> f.is_problem, f.to_dict()["rule"]
    (True, 'val_loss_rising')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES: tuple[str, ...] = ("ok", "info", "warning", "error")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
#: directions a knob can be moved
DIRECTIONS: tuple[str, ...] = ("up", "down")


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (``ok`` = 0 ... ``error`` = 3)."""
    if severity not in _RANK:
        raise ValueError(f"severity={severity!r} is not one of {list(SEVERITIES)}")
    return _RANK[severity]


@dataclass(frozen=True)
class Knob:
    """A setting a finding's action moves, and which way.

    Args:
        name: the setting, as the recipe or the run names it: ``class_weights``, ``focal.gamma``,
            ``optim.lr``, ``train.epochs``, ``regularisation``, ``loss.<part>.weight``,
            ``thresholds`` (the decision rule of ``postprocess.json``).
        direction: ``"up"`` or ``"down"``.
        targets: the classes (or loss parts) it is moved for; empty = all of them.

    Example:
        >>> Knob("class_weights", "up", ("wheat", "corn")).opposes(Knob("class_weights", "down"))
        True
    """

    name: str
    direction: str
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction={self.direction!r} is not one of {list(DIRECTIONS)}")
        object.__setattr__(self, "targets", tuple(str(t) for t in self.targets))

    def opposes(self, other: Knob) -> bool:
        """Same setting moved the other way (whatever the classes: one scheme sets every class's weight)."""
        return self.name == other.name and self.direction != other.direction


@dataclass(frozen=True)
class Finding:
    """One diagnostic result.

    Args:
        rule: the rule or lint check's name (stable, snake_case; documented in docs/diagnostics.md).
        severity: one of :data:`SEVERITIES`.
        figures: the numbers the verdict rests on (JSON-serialisable), e.g. ``{"ratio": 12.5}``.
        verdict: what happened, citing the figures.
        action: what to change (empty for ``ok``/``info`` findings that need nothing).
        knobs: the settings ``action`` moves (see :class:`Knob`); empty when it moves none.
    """

    rule: str
    severity: str
    figures: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""
    action: str = ""
    knobs: tuple[Knob, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.rule, str) or not self.rule:
            raise TypeError(f"rule must be a non-empty str, got {self.rule!r}")
        severity_rank(self.severity)
        if not isinstance(self.figures, dict):
            raise TypeError(f"figures must be a dict, got {type(self.figures).__name__}")
        knobs = tuple(self.knobs)
        if not all(isinstance(k, Knob) for k in knobs):
            raise TypeError(f"knobs must be Knob objects, got {self.knobs!r}")
        object.__setattr__(self, "knobs", knobs)

    @property
    def is_problem(self) -> bool:
        """``True`` for ``warning`` and ``error``."""
        return _RANK[self.severity] >= _RANK["warning"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        tail = f" -> {self.action}" if self.action else ""
        return f"[{self.severity}] {self.rule}: {self.verdict}{tail}"


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most serious first; stable otherwise."""
    return sorted(findings, key=lambda f: -_RANK[f.severity])
