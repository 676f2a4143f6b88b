"""``decision-log.md``: the readable account of a fit, rendered from ``fit.json`` alone.

Every stage with its time, every candidate with why it was proposed, how it screened and why it
was kept or dropped, the plan and what it cut (with the time each cut saves, estimated), every fine-tuned run, the
paired tests with their intervals, the decision and its reason, the finishing choices and the
test score (measured once, after every choice).
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_log", "stage_times"]


def _pct(x) -> str:
    return "–" if x is None else f"{x:.4f}"


def _pts(x) -> str:
    return "–" if x is None else f"{100 * x:+.1f}"


def _ci(ci) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "–"
    return f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _interval(summary: dict) -> str:
    low, high = summary.get("ci_low"), summary.get("ci_high")
    return "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def stage_times(state: dict) -> list[tuple[str, float]]:
    """``[(stage, seconds)]`` in order; training units are summed into ``fine-tuning``."""
    out: dict[str, float] = {}
    for unit in state.get("order", []):
        seconds = state["units"][unit].get("seconds") or 0.0
        key = "fine-tuning" if unit.startswith("train/") else unit
        out[key] = out.get(key, 0.0) + seconds
    return list(out.items())


def _analysis(lines: list[str], a: dict) -> None:
    lines += ["## 1. The data", ""]
    rows = ", ".join(f"{k} {v:,}" for k, v in (a.get("rows") or {}).items())
    lines.append(f"- task: {a['task']['kind']}, {len(a['task']['labels'])} labels; rows: {rows}")
    imb = a.get("imbalance") or {}
    if imb:
        lines.append(f"- imbalance {imb['ratio']:.1f}:1 ({imb['largest']} {imb['largest_count']:,} / "
                     f"{imb['smallest']} {imb['smallest_count']:,})")
    lines += [f"- note: {n}" for n in a.get("notes") or []]
    lines += [f"- warning ({w['code']}): {w['message']}" for w in a.get("warnings") or []]
    lines.append("")


def _candidates(lines: list[str], c: dict, screening: dict) -> None:
    lines += ["## 2. Candidates (rules: `tailtune.fit.candidates`)", ""]
    lines += [f"- shared: `{s['path']}` = {s['value']!r}: {s['reason']}" for s in c.get("shared", [])]
    lines += ["", "| candidate | rule | why proposed | lint |", "|---|---|---|---|"]
    for cand in c.get("candidates", []):
        lint = "; ".join(f"{f['severity']} {f['rule']}" for f in cand.get("lint") or []) or "clean"
        lines.append(f"| {cand['name']} | {cand['rule']} | {cand['reason']} | {lint} |")
    lines += ["", "## 3. Screening (frozen encoder + heads, validation only, tuned rule cross-fitted)", ""]
    if screening.get("skipped"):
        lines.append(f"- skipped: {screening['skipped']}")
    else:
        lines += ["| rank | candidate | tuned macro-F1 | default macro-F1 | vs baseline (tuned) | item CI | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for e in screening.get("ranking", []):
            if e["status"] != "ok":
                lines.append(f"| – | {e['name']} | skipped: {e.get('reason')} | | | | |")
                continue
            vs = e.get("vs_baseline") or {}
            lines.append(f"| {e['rank']} | {e['name']} | {_pct(e['tuned'].get('mean'))} | {_pct(e['default'].get('mean'))} "
                         f"| {_pts(vs.get('diff'))} | {_ci(vs.get('bootstrap_ci'))} | {vs.get('verdict', 'baseline')} |")
    lines.append(f"- finalists: {', '.join(screening.get('finalists') or []) or 'none'}")
    lines += [f"- dropped {d['name']}: {d['why']}" for d in screening.get("dropped") or []]
    lines.append("")


def _plan(lines: list[str], plan: dict, replan: dict) -> None:
    lines += ["## 4. Plan", ""]
    lines.append(f"- full plan: {len(plan.get('finalists', []))} arms x {len(plan.get('seeds_asked', []))} seeds, "
                 f"estimated {plan.get('full_estimate_s', 0):.0f} s; available {plan.get('available_s', 0):.0f} s")
    lines.append(f"- chosen: arms {', '.join(plan.get('arms', []))}; seeds {plan.get('seeds')}; {plan.get('epochs')} "
                 f"epoch(s) on {plan.get('train_size', 0):,} training texts; estimated {plan.get('estimate_s', 0):.0f} s")
    lines += [f"- cut: {s['what']} (saves about {s['estimated_s']:.0f} s)" for s in plan.get("skipped") or []]
    if replan:
        lines.append(f"- after the first run ({replan['unit_s']} s, x{replan['factor']:.2f} the estimate): arms "
                     f"{', '.join(replan['arms'])}, seeds {replan['seeds']}")
        lines += [f"- cut: {s['what']} (saves about {s['estimated_s']:.0f} s)" for s in replan.get("skipped") or []]
    lines.append("")


def _runs(lines: list[str], state: dict) -> None:
    lines += ["## 5. Fine-tuning", "", "| unit | seconds | epochs | validation macro-F1 (default rule) | note |",
              "|---|---|---|---|---|"]
    for name, u in state["units"].items():
        if not name.startswith("train/"):
            continue
        r = u.get("result") or {}
        note = f"skipped: {r.get('why')} (est. {r.get('estimated_s')} s)" if r.get("skipped") else (
            "stopped by the budget guard" if r.get("stopped_by_budget") else "")
        epochs = r.get("epochs_run")
        epochs = "–" if epochs is None else f"{round(float(epochs), 2):g}"
        lines.append(f"| {name[6:]} | {u.get('seconds', 0):.0f} | {epochs} | "
                     f"{_pct(r.get('validation_macro_f1_default_rule'))} | {note} |")
    lines.append("")


def _decision(lines: list[str], d: dict) -> None:
    lines += ["## 6. Decision (validation only; rests on the tuned rule, cross-fitted)", "",
              "| arm | seeds | tuned mean [95% CI] | default mean | vs baseline tuned | item CI | seed CI | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for arm, s in (d.get("summaries") or {}).items():
        c = (d.get("comparisons") or {}).get(arm) or {}
        t = c.get("tuned") or {}
        ci = s["tuned"]
        lines.append(f"| {arm} | {len(s['seeds'])} | {_pct(ci['mean'])} {_interval(ci)}"
                     f" | {_pct(s['default']['mean'])} | {_pts(t.get('diff'))} | {_ci(t.get('item_ci'))} | "
                     f"{_ci(t.get('seed_ci'))} | {c.get('verdict', 'baseline') if c else 'baseline'} |")
    lines += ["", f"**Decision:** {d.get('reason', '')}", ""]


def render_log(state: dict) -> str:
    """The Markdown decision log of a fit's state (``fit.json``)."""
    u = {k: (v.get("result") or {}) for k, v in state.get("units", {}).items()}
    opts = state.get("options") or {}
    lines = ["# How this model was chosen (`tailtune fit`)", "",
             f"data `{opts.get('data')}` · model `{opts.get('model')}` · budget {opts.get('budget_s', 0):.0f} s "
             f"(spent {state.get('spent_s', 0):.0f} s) · seeds {opts.get('seeds')} · status {state.get('status')}", ""]
    if "analyze" in u:
        _analysis(lines, u["analyze"])
    if "candidates" in u:
        _candidates(lines, u["candidates"], u.get("screen") or {})
    if "plan" in u:
        _plan(lines, u["plan"], u.get("replan") or {})
    _runs(lines, state)
    if "decide" in u:
        _decision(lines, u["decide"])
    if "ensemble" in u:
        lines += ["## 7. Finishing", "", f"- {u['ensemble'].get('reason', '')}"]
    final: dict[str, Any] = u.get("final") or {}
    if final:
        v, t = final.get("validation") or {}, final.get("test")
        temperature = final.get("postprocess", {}).get("temperature")
        temperature = f"{temperature:.3f}" if isinstance(temperature, (int, float)) else temperature
        lines.append(f"- shipped: {', '.join(final.get('shipped', []))}; rule tuned on validation (temperature "
                     f"{temperature}); validation macro-F1 {_pct(v.get('default'))} "
                     f"default -> {_pct(v.get('tuned'))} tuned")
        lines.append("- test (scored once, after every choice): " + (
            f"macro-F1 {_pct(t['default'])} with the default rule, **{_pct(t['tuned'])}** with the shipped rule"
            if t else "no test split"))
    lines += ["", "## Time per stage", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.1f} |" for name, sec in stage_times(state)]
    return "\n".join(lines) + "\n"
