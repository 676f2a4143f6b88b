"""The report's "How this model was chosen" section, from a ``tailtune fit`` folder's ``fit.json``.

The report layer sits below ``tailtune.fit``, so this reads the JSON contract documented in
``docs/fit.md`` (``units.<name>.result``) and nothing of the fit package. A run that is not a fit
folder has no such section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SECTION", "fit_context"]

SECTION = ("chosen", "How this model was chosen")
FIT_FILE = "fit.json"


def _arms(decision: dict) -> list[dict[str, Any]]:
    rows = []
    for arm, s in (decision.get("summaries") or {}).items():
        c = (decision.get("comparisons") or {}).get(arm) or {}
        t = c.get("tuned") or {}
        d = c.get("default") or {}
        rows.append({"name": arm, "winner": arm == decision.get("winner"), "seeds": len(s.get("seeds") or []),
                     "tuned": s["tuned"].get("mean"), "tuned_ci": [s["tuned"].get("ci_low"), s["tuned"].get("ci_high")],
                     "default": s["default"].get("mean"), "diff": t.get("diff"), "item_ci": t.get("item_ci"),
                     "item_p": t.get("item_p"), "seed_ci": t.get("seed_ci"), "default_verdict": d.get("verdict"),
                     "verdict": c.get("verdict") if c else "baseline", "note": c.get("note")})
    return rows


def _screen(screen: dict, candidates: dict) -> list[dict[str, Any]]:
    reasons = {c["name"]: c.get("reason", "") for c in candidates.get("candidates") or []}
    dropped = {d["name"]: d["why"] for d in screen.get("dropped") or []}
    finalists = set(screen.get("finalists") or [])
    rows = []
    for e in screen.get("ranking") or []:
        vs = e.get("vs_baseline") or {}
        fate = ("baseline" if e["name"] == "baseline" else "fine-tuned" if e["name"] in finalists
                else dropped.get(e["name"], ""))
        rows.append({"name": e["name"], "rank": e.get("rank"), "status": e.get("status"),
                     "tuned": (e.get("tuned") or {}).get("mean"), "default": (e.get("default") or {}).get("mean"),
                     "diff": vs.get("diff"), "ci": vs.get("bootstrap_ci"), "verdict": vs.get("verdict"),
                     "fate": fate, "why": reasons.get(e["name"], "")})
    return rows


def _stages(state: dict) -> list[dict[str, Any]]:
    totals: dict[str, float] = {}
    for unit in state.get("order", []):
        key = "fine-tuning" if unit.startswith("train/") else unit
        totals[key] = totals.get(key, 0.0) + float(state["units"][unit].get("seconds") or 0.0)
    return [{"name": k, "seconds": v} for k, v in totals.items()]


def fit_context(run_path: str | Path | None) -> dict[str, Any] | None:
    """The section's template context, or ``None`` when ``run_path`` holds no readable fit.json."""
    if run_path is None or not (Path(run_path) / FIT_FILE).is_file():
        return None
    try:
        state = json.loads((Path(run_path) / FIT_FILE).read_text(encoding="utf-8"))
        units = {k: (v.get("result") or {}) for k, v in state["units"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    decision, plan = units.get("decide") or {}, units.get("plan") or {}
    final, screen = units.get("final") or {}, units.get("screen") or {}
    opts = state.get("options") or {}
    return {
        "budget_s": opts.get("budget_s"), "spent_s": state.get("spent_s"), "status": state.get("status"),
        "winner": decision.get("winner"), "reason": decision.get("reason", ""),
        "arms": _arms(decision), "screen": _screen(screen, units.get("candidates") or {}),
        "screen_skipped": screen.get("skipped"),
        "plan": {"arms": (units.get("replan") or {}).get("arms", plan.get("arms")),
                 "seeds": (units.get("replan") or {}).get("seeds", plan.get("seeds")), "epochs": plan.get("epochs"),
                 "train_size": plan.get("train_size"), "full_estimate_s": plan.get("full_estimate_s"),
                 "estimate_s": plan.get("estimate_s"), "available_s": plan.get("available_s"),
                 "cuts": (plan.get("skipped") or []) + ((units.get("replan") or {}).get("skipped") or [])},
        "ensemble": (units.get("ensemble") or {}).get("reason"),
        "test": final.get("test"), "validation": final.get("validation"),
        "stages": _stages(state),
    }
