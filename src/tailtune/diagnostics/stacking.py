"""Class weights stacked with a tuned decision rule on the same classes: one prior corrected twice.

Class weights and a tuned decision rule both move a class's decisions, and both by a factor on its
odds:

* a class weight ``w`` trains the model towards weighted probabilities: the odds of a positive
  (sigmoid tasks, ``pos_weight``) or of class ``c`` against the others (softmax tasks, ``w_c``
  relative to the median class weight) are multiplied by about ``w``;
* a tuned threshold ``t`` (binary/multilabel) accepts a positive at odds ``t / (1 - t)`` instead
  of 1, i.e. multiplies its odds by ``(1 - t) / t``; a tuned bias ``b_c`` (multiclass/aspects, added
  to the logits) multiplies the odds of ``c`` by ``exp(b_c - median(b))``.

When both factors are at least :data:`UPWEIGHT_FACTOR` for a class,
both correct its rarity: the tuned rule pushes further in the direction the weights already push.
The decision then treats the class as if its odds were multiplied by the product, the correction is
split over two knobs, and changing either (a new weighting scheme, a re-tune) silently changes what
the other should be.

Example:
    >>> f = stacked_corrections({"spam": 6.0}, {"thresholds": 0.25}, kind="binary", labels=["ham", "spam"])
    >>> f.rule, f.figures["classes"]["spam"]["combined_factor"]
    ('weights_with_thresholds', 18.0)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from tailtune.data.kinds import TASK_KINDS, TaskKind
from tailtune.diagnostics.findings import Finding, Knob
from tailtune.weighting.cells import CELL_SEP

#: a class is up-weighted when its weight >= UPWEIGHT_FACTOR x the median class weight (pos_weight: >= this);
#: the history rules (``upweighted_low_precision``) use the same bar
UPWEIGHT_FACTOR = 1.5


def _info(kind: str | TaskKind | None) -> TaskKind | None:
    """The kind as an object; ``None`` for a run without a (known) task kind (no finding then)."""
    return kind if isinstance(kind, TaskKind) else TASK_KINDS.get(kind) if isinstance(kind, str) else None


def _rule_factors(postprocess: Mapping, kind: TaskKind | None, labels: Sequence[str], classes: Sequence[str]) -> dict[str, tuple[float, float]]:
    """``{class: (threshold or bias, odds factor)}`` of the tuned rule (empty when it has none)."""
    out: dict[str, tuple[float, float]] = {}
    thr, biases = postprocess.get("thresholds"), postprocess.get("biases")
    if kind is not None and kind.sigmoid and thr is not None:
        values = [thr] if isinstance(thr, (int, float)) else list(thr)
        names = [str(labels[-1])] if kind.is_binary and labels else [str(x) for x in labels]
        for name, t in zip(names, values):
            if isinstance(t, (int, float)) and 0 < t < 1:
                out[name] = (float(t), (1 - float(t)) / float(t))
    elif kind is not None and kind.per_aspect and isinstance(biases, list) and biases \
            and all(CELL_SEP in c for c in classes):
        return _cell_rule_factors(biases, classes)
    elif kind is not None and kind.softmax and isinstance(biases, list) and biases:
        rows = biases if isinstance(biases[0], list) else [biases]
        if not all(len(r) == len(classes) for r in rows):
            return {}
        mean_b = [statistics.fmean(float(r[i]) for r in rows) for i in range(len(classes))]
        mid = statistics.median(mean_b)
        out = {str(c): (b, math.exp(b - mid)) for c, b in zip(classes, mean_b)}
    return out


def _cell_rule_factors(biases: list, cells: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per-cell class weights (``aspect#class``, aspect-major): each cell's tuned bias against its own
    aspect's row, ``exp(b - median(row))`` (a shared row applies to every aspect)."""
    rows = biases if isinstance(biases[0], list) else None
    width = len(rows[0]) if rows else len(biases)
    if not width or len(cells) % width:
        return {}
    rows = rows or [biases] * (len(cells) // width)
    if len(rows) * width != len(cells) or any(len(r) != width for r in rows):
        return {}
    out = {}
    for a, row in enumerate(rows):
        mid = statistics.median(float(b) for b in row)
        for j, b in enumerate(row):
            out[str(cells[a * width + j])] = (float(b), math.exp(float(b) - mid))
    return out


def _weight_factors(class_weights: Mapping[str, float], kind: TaskKind | None) -> dict[str, float]:
    if kind is not None and kind.sigmoid:
        return {str(k): float(v) for k, v in class_weights.items()}
    positive = [float(v) for v in class_weights.values() if float(v) > 0]
    if not positive:
        return {}
    mid = statistics.median(positive)
    return {str(k): float(v) / mid for k, v in class_weights.items()}


def stacked_corrections(
    class_weights: Mapping[str, float] | None,
    postprocess: Mapping[str, Any] | None,
    *,
    kind: str | TaskKind | None,
    labels: Sequence[str] = (),
) -> Finding | None:
    """A ``weights_with_thresholds`` warning when class weights and the tuned rule favour the same
    classes (see the module doc), else ``None``.

    Args:
        class_weights: ``{class: weight}`` as :func:`tailtune.diagnostics.weights.recipe_class_weights`
            returns it (sigmoid tasks: ``pos_weight`` per label).
        postprocess: the mapping of ``postprocess.json`` (``thresholds`` / ``biases``).
        kind: the task kind (a name or a :class:`~tailtune.data.TaskKind`; ``None``/unknown: no finding).
        labels: the task's labels (binary: ``[negative, positive]``).
    """
    if not class_weights or not postprocess:
        return None
    info = _info(kind)
    classes = list(class_weights)
    rule = _rule_factors(postprocess, info, list(labels) or classes, classes)
    weight = _weight_factors(class_weights, info)
    hits = {
        c: {"weight": round(float(class_weights[c]), 4), "weight_factor": round(weight[c], 2),
            "rule_value": round(rule[c][0], 4), "rule_factor": round(rule[c][1], 2),
            "combined_factor": round(weight[c] * rule[c][1], 1)}
        for c in classes
        if c in rule and weight.get(c, 0) >= UPWEIGHT_FACTOR and rule[c][1] >= UPWEIGHT_FACTOR
    }
    if not hits:
        return None
    sigmoid = info is not None and info.sigmoid
    what = "threshold" if sigmoid else "bias"
    value = "{:.2f}" if sigmoid else "{:+.2f}"
    desc = "; ".join(
        f"{c}: {'pos_weight' if sigmoid else 'weight'} {h['weight']:g} (odds x{h['weight_factor']:.1f} in training) and "
        f"tuned {what} {value.format(h['rule_value'])} (x{h['rule_factor']:.1f} at decision time): "
        f"x{h['combined_factor']:.0f} in all"
        for c, h in hits.items()
    )
    figs = {"kind": info.name if info else kind, "factor_threshold": UPWEIGHT_FACTOR, "classes": hits}
    return Finding(
        "weights_with_thresholds", "warning", figs,
        f"class weights and the tuned decision rule both favour {', '.join(hits)}: {desc}. Both correct the same "
        f"prior (the class's rarity); the tuned {what} pushes further in the direction the weights already push, "
        "so the correction is split over two knobs and counted twice, and changing either one silently changes "
        "what the other should be",
        "give the correction one owner: retrain with weighting.apply_to: none and tune the decision rule "
        "(`tailtune tune RUN`), which moves the decision without the weights' cost (noisier gradients, "
        "over-confident rare-class scores); compare both runs with `tailtune postmortem`. If you keep the "
        "weights, re-tune after every weighting change",
        (Knob("class_weights", "down", tuple(hits)),),
    )
