"""``tailtune fit``'s printed outcome: one line per fine-tuned candidate, readable in an 80-column
terminal or a log (the table it replaced cut names and verdicts to "candida…", "logit-a…", "no detecta…")."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from tailtune.cli import fit as cli_fit
from tailtune.fit.result import FitResult


def _summary(seeds, tuned, default):
    return {"seeds": seeds, "tuned": {"mean": tuned}, "default": {"mean": default}}


def test_the_outcome_keeps_every_name_verdict_and_interval_at_80_columns(monkeypatch):
    decision = {
        "winner": "baseline",
        "reason": "no challenger beats baseline outside the noise under the tuned rule; baseline is kept",
        "summaries": {"baseline": _summary([13, 14], 0.9917, 0.4505),
                      "focal-pos-weight+hierarchy": _summary([13, 14], 0.9831, 0.7474),
                      "logit-adjust": _summary([13], 0.9834, 0.4505)},
        "comparisons": {"focal-pos-weight+hierarchy": {"seeds": [13, 14], "verdict": "no detectable difference",
                                                       "tuned": {"diff": -0.009, "item_ci": [-0.038, 0.021],
                                                                 "seed_ci": [-0.113, 0.096]}},
                        "logit-adjust": {"seeds": [13], "verdict": "no detectable difference", "note": "1 common"}},
    }
    result = FitResult(output=Path("runs/fit"), winner="baseline", decision=decision, ensemble=True,
                       scores={"validation": None, "test": {"default": 0.4565, "tuned": 0.9256}})
    buffer = io.StringIO()
    monkeypatch.setattr(cli_fit, "console", Console(file=buffer, width=80, color_system=None))
    cli_fit.print_outcome(result)
    text = buffer.getvalue()
    flat = " ".join(text.split())
    assert "…" not in text
    for part in ("* baseline", "focal-pos-weight+hierarchy", "logit-adjust", "no detectable difference",
                 "-0.9 points", "items [-3.8, +2.1]", "seeds [-11.3, +9.6]", "1 common seed, too few to compare",
                 "0.9256 with the shipped rule (ensemble of the winner's seeds)"):
        assert part in flat, part
