"""The one result type of every diagnostic: :class:`Finding`.

A rule or a lint check says *what* it looked at (``figures``), *what* it concluded (``verdict``) and
*what to change* (``action``). Severities, from least to most serious: ``ok`` (a check that passed,
e.g. "both loss parts falling"), ``info`` (a fact worth showing: best epoch, why training stopped),
``warning`` (probably hurting results) and ``error`` (a recipe that is wrong; ``tailtune lint`` exits 1).

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


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (``ok`` = 0 ... ``error`` = 3)."""
    if severity not in _RANK:
        raise ValueError(f"severity={severity!r} is not one of {list(SEVERITIES)}")
    return _RANK[severity]


@dataclass(frozen=True)
class Finding:
    """One diagnostic result.

    Args:
        rule: the rule or lint check's name (stable, snake_case; documented in docs/diagnostics.md).
        severity: one of :data:`SEVERITIES`.
        figures: the numbers the verdict rests on (JSON-serialisable), e.g. ``{"ratio": 12.5}``.
        verdict: what happened, citing the figures.
        action: what to change (empty for ``ok``/``info`` findings that need nothing).
    """

    rule: str
    severity: str
    figures: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""
    action: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.rule, str) or not self.rule:
            raise TypeError(f"rule must be a non-empty str, got {self.rule!r}")
        severity_rank(self.severity)
        if not isinstance(self.figures, dict):
            raise TypeError(f"figures must be a dict, got {type(self.figures).__name__}")

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
