"""Loss values are not headroom: when two runs' loss values can be compared, and why not otherwise.

A loss value is on the scale of its own loss function. Focal loss multiplies each example's
cross-entropy by ``(1 - p_t)^gamma <= 1``, so it is *below* cross-entropy for every example by
construction (at ``p_t = 0.9`` and ``gamma = 2``: 0.01x) and a lower focal value is not more
progress, nor would a higher one be "more room to improve". Class weights rescale each example's
loss, label smoothing puts a floor under it, a contrastive part has its own scale and floor. So:

* runs are compared on **metrics** (macro-F1, per-class recall), never on raw loss values unless
  their losses are identical (:func:`loss_differences` is empty);
* each loss is read against **its own start** (:func:`share_of_start`): whether that run was still
  learning, not which run is better (relative drops are not comparable across losses either: focal
  falls faster in relative terms because its modulating factor shrinks as p_t grows).

:func:`focal_factor` is focal over cross-entropy for one example, computed by the loss itself
(:func:`tailtune.losses.focal.sigmoid_focal_loss`), so the figures quoted here are the code's.

Example:
    >>> loss_differences({"loss": {"focal": {"gamma": 2.0}}}, {"loss": {"ce": {}}})
    ['loss: focal(gamma=2) vs ce']
    >>> is_loss_metric("val_loss"), is_loss_metric("macro_f1")
    (True, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: probability of the true class at which the focal factor is quoted
EASY_P = 0.9
#: loss parameters that change the loss's scale (shown in the signature); weights of parts are shown apart
_SCALE_PARAMS = ("gamma", "gamma_pos", "gamma_neg", "alpha", "label_smoothing", "smoothing", "temperature", "margin",
                 "pos_weight", "class_weight", "clip")


def focal_factor(p_t: float, gamma: float) -> float:
    """Focal loss over cross-entropy for one example whose true class has probability ``p_t``, as
    :func:`tailtune.losses.focal.sigmoid_focal_loss` computes it: ``(1 - p_t)^gamma`` for
    ``gamma >= 0``, ``p_t^|gamma|`` for the reversed loss (``gamma < 0``).

    Example:
        >>> round(focal_factor(0.9, 2.0), 4), round(focal_factor(0.9, -0.5), 4)
        (0.01, 0.9487)
    """
    import torch
    import torch.nn.functional as F

    from tailtune.losses.focal import sigmoid_focal_loss

    if not 0.0 < p_t < 1.0:
        raise ValueError(f"p_t={p_t!r} must be in (0, 1)")
    z = torch.tensor([math.log(p_t / (1 - p_t))], dtype=torch.float64)
    y = torch.ones(1, dtype=torch.float64)
    focal = sigmoid_focal_loss(z, y, gamma=float(gamma), reduction="sum")
    return float(focal / F.binary_cross_entropy_with_logits(z, y, reduction="sum"))


def is_loss_metric(name: str) -> bool:
    """Whether a metric name is a loss value (``loss``, ``val_loss``, ``loss_parts.focal``, ...)."""
    n = str(name).lower()
    return n == "loss" or n.endswith("_loss") or n.startswith("loss") or ".loss" in n


#: recipe sections whose values change what the loss computes (and so its scale)
SCALE_SECTIONS = ("loss", "loss_balance", "weighting", "sample_weighting")


def scale_changing(paths: Sequence[str]) -> list[str]:
    """The dotted recipe paths among ``paths`` that change the loss's scale (see :data:`SCALE_SECTIONS`).

    Example:
        >>> scale_changing(["optim.lr", "loss.focal.gamma", "weighting.cap"])
        ['loss.focal.gamma', 'weighting.cap']
    """
    return [p for p in paths if str(p).split(".")[0] in SCALE_SECTIONS]


def _loss_section(recipe: Mapping | None) -> dict[str, dict]:
    loss = (recipe or {}).get("loss")
    if isinstance(loss, str):
        return {loss: {}}
    if isinstance(loss, list):
        return {str(x): {} for x in loss}
    if isinstance(loss, Mapping):
        return {str(k): dict(v or {}) for k, v in loss.items()}
    return {"ce": {}} if recipe else {}


def _part(name: str, spec: Mapping) -> str:
    ltype = str(spec.get("type") or name)
    params = []
    for p in _SCALE_PARAMS:
        v = spec.get(p)
        if v is not None:
            params.append(f"{p}={v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{p}={v}")
    return ltype + (f"({', '.join(params)})" if params else "")


def loss_signature(recipe: Mapping | None) -> str:
    """The loss as the values are computed: parts with their scale parameters and weights.

    Example:
        >>> loss_signature({"loss": {"focal": {"weight": 0.7, "gamma": 1.0}, "supcon": {"weight": 0.3}}})
        'focal(gamma=1) x0.7 + supcon x0.3'
    """
    parts = _loss_section(recipe)
    if not parts:
        return "unknown (no recipe.yaml)"
    many = len(parts) > 1
    return " + ".join(_part(n, s) + (f" x{float(s.get('weight', 1.0)):g}" if many else "") for n, s in parts.items())


def _weighting(recipe: Mapping | None) -> str:
    from tailtune.diagnostics.weights import weighting_active

    if not weighting_active(recipe):
        return "none"
    w = dict((recipe or {}).get("weighting") or {})
    extra = [f"{k} {w[k]}" for k in ("cap", "apply_to") if w.get(k) not in (None, "auto")]
    return f"{w.get('scheme') or 'uniform'}" + (f" ({', '.join(extra)})" if extra else "") + (
        " + overrides" if w.get("overrides") else "")


def loss_differences(candidate: Mapping | None, baseline: Mapping | None) -> list[str]:
    """What makes the two recipes' loss values incomparable (empty: same loss, same scale).

    Compares the loss parts and their scale parameters, the class weights that enter the loss,
    per-sample weighting and the loss balance. ``None`` recipes compare as unknown (one entry).
    """
    if not candidate or not baseline:
        return ["a recipe.yaml is missing, so the losses cannot be shown to be the same"]
    out = []
    a, b = loss_signature(candidate), loss_signature(baseline)
    if a != b:
        out.append(f"loss: {a} vs {b}")
    wa, wb = _weighting(candidate), _weighting(baseline)
    if wa != wb:
        out.append(f"class weights: {wa} vs {wb}")
    for key in ("sample_weighting", "loss_balance"):
        va, vb = candidate.get(key), baseline.get(key)
        if (va or None) != (vb or None):
            out.append(f"{key}: {va} vs {vb}")
    return out


def _focal_gamma(recipe: Mapping | None) -> float | None:
    for name, spec in _loss_section(recipe).items():
        if "focal" in str(spec.get("type") or name).lower():
            g = spec.get("gamma", 2.0)
            return float(g) if isinstance(g, (int, float)) and not isinstance(g, bool) else None
    return None


def _reasons(candidate: Mapping | None, baseline: Mapping | None, diffs: list[str]) -> list[str]:
    reasons = []
    for recipe in (candidate, baseline):
        g = _focal_gamma(recipe)
        if g is not None and g > 0:
            reasons.append(
                f"focal loss multiplies each example's cross-entropy by (1 - p_t)^gamma, which is below 1 for every "
                f"example (gamma {g:g}, p_t = {EASY_P}: {focal_factor(EASY_P, g):.3g}x), so it sits below "
                "cross-entropy by construction: a lower focal value is not more progress, and a higher cross-entropy "
                "is not more room to improve")
            break
    if any(d.startswith("class weights") for d in diffs):
        reasons.append("class weights rescale each example's loss")
    if any("smoothing" in d for d in diffs):
        reasons.append("label smoothing puts a floor under the loss")
    return reasons or ["each loss is on the scale of its own function"]


def headroom_reason(candidate: Mapping | None, baseline: Mapping | None) -> str | None:
    """The main reason the two losses' values are not comparable (``None``: same loss)."""
    diffs = loss_differences(candidate, baseline)
    return _reasons(candidate, baseline, diffs)[0] if diffs else None


def why_not_comparable(candidate: Mapping | None, baseline: Mapping | None) -> str | None:
    """One paragraph saying why the two runs' raw loss values must not be compared, or ``None``
    when their losses are the same."""
    diffs = loss_differences(candidate, baseline)
    if not diffs:
        return None
    return (f"The runs' losses differ ({'; '.join(diffs)}), so their values are not compared: "
            + "; ".join(_reasons(candidate, baseline, diffs)) + ". Compare the metrics, and read each loss against its "
            "own start (whether that run was still learning), never against the other run's.")


def share_of_start(values: Sequence[float | None]) -> list[float | None]:
    """Each value over the first present one (``None`` where missing or undefined).

    Example:
        >>> share_of_start([0.8, 0.4, None, 0.2])
        [1.0, 0.5, None, 0.25]
    """
    first = next((float(v) for v in values if v is not None), None)
    if not first or first <= 0:
        return [None for _ in values]
    return [None if v is None else float(v) / first for v in values]


def loss_progress(history: list[dict], split: str = "train") -> dict[str, Any] | None:
    """``{"first", "last", "share_of_start", "epochs"}`` of a run's ``split`` loss, or ``None``."""
    vals = [(r.get(split) or {}).get("loss") for r in history]
    vals = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(vals) < 2 or vals[0] <= 0:
        return None
    return {"first": vals[0], "last": vals[-1], "share_of_start": vals[-1] / vals[0], "epochs": len(vals)}
