"""A run against a baseline run (``tailtune diagnose RUN --baseline BASE``): metrics, never raw losses.

Two ``info`` findings:

* ``baseline_metrics`` — the early-stopping metric (and accuracy) of both runs: ``eval.json`` of the
  split both have (``test``, else ``validation``), with the default decision rule and, where
  ``tailtune tune`` wrote one, the tuned rule; else the validation value at each best epoch. One run
  per side is no verdict: the finding points to ``tailtune postmortem`` for an interval.
* ``loss_scale`` — when the two runs' losses differ
  (:func:`tailtune.diagnostics.loss_scale.loss_differences`): why their values are not compared,
  and each run's training loss against its own first epoch instead.

Example:
    >>> from tailtune.diagnostics.rundata import run_from_history
    >>> rows = lambda l: [{"epoch": i + 1, "train": {"loss": x}, "validation": {"macro_f1": 0.5 + i / 10}}
    ...                   for i, x in enumerate(l)]
    >>> run = run_from_history(rows([0.5, 0.2, 0.1]), recipe={"loss": {"focal": {"gamma": 2.0}}})
    >>> base = run_from_history(rows([1.1, 0.7, 0.5]), recipe={"loss": {"ce": {}}})
    >>> [f.rule for f in compare_with_baseline(run, base)]
    ['baseline_metrics', 'loss_scale']
"""

from __future__ import annotations

from tailtune.diagnostics.findings import Finding
from tailtune.diagnostics.loss_scale import loss_differences, loss_progress, why_not_comparable
from tailtune.diagnostics.rundata import RunData, check_same_task, finite_number, val_metric


def _shared_split(run: RunData, base: RunData) -> str | None:
    for split in ("test", "validation"):
        if all(isinstance((r.eval or {}).get(split), dict) for r in (run, base)):
            return split
    return None


def _scores(r: RunData, split: str | None, metric: str) -> dict[str, float | None]:
    if split is None:
        return {"default": val_metric(r.best_row or {}, metric)}
    out = {"default": finite_number(r.eval[split].get(metric))}
    tuned = (r.eval or {}).get(f"{split}_tuned")
    if isinstance(tuned, dict):
        out["tuned"] = finite_number(tuned.get(metric))
    return out


def _metric_finding(run: RunData, base: RunData) -> Finding | None:
    metric = run.stop_metric if not run.stop_metric.endswith("loss") else "macro_f1"
    split = _shared_split(run, base)
    a, b = _scores(run, split, metric), _scores(base, split, metric)
    if a["default"] is None or b["default"] is None:
        return None
    where = f"{split} (eval.json)" if split else "validation at each best epoch (history.jsonl)"
    parts = [f"default rule {a['default']:.3f} vs {b['default']:.3f} ({100 * (a['default'] - b['default']):+.1f} points)"]
    if a.get("tuned") is not None or b.get("tuned") is not None:
        ra = a["tuned"] if a.get("tuned") is not None else a["default"]
        rb = b["tuned"] if b.get("tuned") is not None else b["default"]
        rules = f"{'tuned' if a.get('tuned') is not None else 'default'} vs {'tuned' if b.get('tuned') is not None else 'default'}"
        parts.append(f"each side's tuned rule where it has one ({rules}) {ra:.3f} vs {rb:.3f} ({100 * (ra - rb):+.1f} points)")
    figs = {"metric": metric, "where": where, "run": a, "baseline": b}
    return Finding(
        "baseline_metrics", "info", figs,
        f"{metric} on {where}, this run vs {base.name or 'the baseline'}: " + "; ".join(parts),
        "one run per side is no verdict: `tailtune postmortem RUN --baseline BASE` gives the interval (run 3 seeds "
        "per side for one that includes seed variance)",
    )


def _loss_finding(run: RunData, base: RunData) -> Finding | None:
    why = why_not_comparable(run.recipe, base.recipe)
    if why is None:
        return None
    progress = {}
    texts = []
    for name, r in (("run", run), ("baseline", base)):
        p = loss_progress(r.history)
        progress[name] = p
        if p is not None:
            texts.append(f"{name} {p['first']:.3f} -> {p['last']:.3f} ({p['share_of_start']:.0%} of its epoch 1)")
    figs = {"differences": loss_differences(run.recipe, base.recipe), "train_loss": progress}
    return Finding(
        "loss_scale", "info", figs,
        why + (f" Training loss against its own start: {'; '.join(texts)}." if texts else ""),
        "",
    )


def compare_with_baseline(run: RunData, baseline: RunData) -> list[Finding]:
    """The ``baseline_metrics`` and ``loss_scale`` findings of ``run`` against ``baseline`` (see the module doc)."""
    check_same_task([run], [baseline], command="diagnose --baseline")
    return [f for f in (_metric_finding(run, baseline), _loss_finding(run, baseline)) if f is not None]
