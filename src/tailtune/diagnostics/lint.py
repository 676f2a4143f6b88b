"""Recipe lint: remedies that cancel or compound each other, caught before any GPU time is spent.

``lint_recipe(recipe, *, class_counts=None)`` returns :class:`~tailtune.diagnostics.findings.Finding`
objects; each says why, citing the figure from the recipe or the data (the imbalance ratio, the
effective weight, the chance a batch holds no rare example). ``error`` findings make
``tailtune lint`` exit 1; warnings alone exit 0. docs/diagnostics.md lists every check.

=============================== ======== ====================================================
check                           severity fires when
=============================== ======== ====================================================
``double_weighting``            error    two or more of: ``weighting`` class weights (as alpha,
                                         weight or pos_weight), a loss part's own ``alpha``/
                                         ``pos_weight``/``class_weight`` (or a list ``weight``),
                                         ``sampler: class_balanced``, a loss that rebalances by
                                         class counts itself (logit_adjusted, distribution_balanced)
                                         act on the same loss part's classes
``reversed_focal``              warning  a focal ``gamma`` (or schedule value) ``< 0`` (p_t^|gamma|: noisy labels)
                                warning  a focal ``alpha`` pointing the wrong way (needs counts):
                                         a class-weight list heavier on the largest class than
                                         on the rarest, or a sigmoid ``alpha < 0.5`` (0.25 is
                                         torchvision's default) while the positives are the
                                         minority, which down-weights the rare positives
``gamma_weights_mild``          warning  focal ``gamma >= 2`` together with class weights while
                                         the imbalance (largest / smallest class) is ``< 10:1``
``focal_lr_unchanged``          warning  a focal loss with ``optim.lr`` equal to the CE default
                                         (5e-5) or to the CE baseline recipe's lr
``small_batch_no_accum``        warning  ``batch_size`` below the reference (32, or the baseline's
                                         effective batch) and no gradient accumulation making up
                                         for it (``batch_size x grad_accum`` still below)
``weights_over_50x``            warning  a class weight more than 50x the smallest (pos_weight > 50)
``smoothing_with_confidence``   warning  label smoothing together with confidence weighting
                                         (``sample_weighting.confidence`` or a part's ``confidence``)
``max_length_over_positions``  error    ``data.max_length`` above the encoder's positions (its
                                         ``config.json`` readable from a local folder)
=============================== ======== ====================================================

Example:
    >>> findings = lint_recipe({"loss": {"focal": {"gamma": -1.0}}})
    >>> [(f.rule, f.severity) for f in findings]
    [('reversed_focal', 'warning'), ('focal_lr_unchanged', 'warning')]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailtune.data import TaskSpec, task_kind
from tailtune.diagnostics.findings import Finding, sort_findings
from tailtune.diagnostics.loss_scale import focal_factor
from tailtune.diagnostics.rundata import DEFAULT_LR, is_contrastive
from tailtune.diagnostics.weights import imbalance_ratio, recipe_class_weights
from tailtune.errors import RecipeError
from tailtune.recipe import Recipe, recipe_from_dict
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.data import load_recipe_data, train_counts
from tailtune.recipe.resolve import resolve_loss_part, weighting_active

#: batch size the "smaller batch" check compares with when no baseline recipe is given
REFERENCE_BATCH = 32
#: imbalance (largest / smallest class) below which gamma >= 2 plus class weights over-corrects
MILD_IMBALANCE = 10.0
#: focal gamma at or above which the mild-imbalance check applies
HIGH_GAMMA = 2.0
#: largest class weight / smallest above which weights are extreme
MAX_WEIGHT_RATIO = 50.0
#: probability of the true class used to show how much focal loss shrinks an easy example's loss
EASY_P = 0.9

#: loss-part parameters that carry class weights (``weight`` only when it is a list: a number is the
#: part's weight in the composite loss)
_WEIGHT_PARAMS = ("alpha", "pos_weight", "class_weight", "weight")
#: a sigmoid focal ``alpha`` of -1 is torchvision's "no weighting" (the rule's owner is
#: ``tailtune.losses.focal.NO_ALPHA``; repeated here so that linting does not import torch)
_NO_ALPHA = -1
#: losses whose ``alpha`` is not a class weight (Tversky: false-positive weight)
_ALPHA_NOT_CLASS_WEIGHT = ("tversky", "dice")
#: losses that rebalance classes themselves from the class counts (priors): logit adjustment
#: (Menon et al. 2021) and distribution-balanced loss (Wu et al. 2020); LDAM's margins are not a
#: re-weighting (LDAM-DRW pairs them with class weights on purpose)
_REBALANCING_LOSSES = ("logit_adjusted", "la", "distribution_balanced", "db")


def _explicit_weights(spec: dict, ltype: str = "") -> list[str]:
    """The class-weight parameters a loss part sets itself (as written in the recipe)."""
    out = []
    for p in _WEIGHT_PARAMS:
        if spec.get(p) is None:
            continue
        if p == "weight" and not isinstance(spec[p], (list, tuple)):
            continue
        if p == "alpha" and (ltype.lower() in _ALPHA_NOT_CLASS_WEIGHT or spec[p] == _NO_ALPHA):
            continue
        out.append(p)
    return out


def _as_mapping(recipe: Any) -> dict:
    if isinstance(recipe, Mapping):
        data = dict(recipe)
    elif hasattr(recipe, "model_dump"):
        data = recipe.model_dump(mode="json")
    else:
        raise TypeError(f"recipe must be a Recipe or a mapping, got {type(recipe).__name__}")
    loss = data.get("loss")
    if isinstance(loss, str):
        data["loss"] = {loss: {}}
    elif isinstance(loss, list):
        data["loss"] = {str(x): {} for x in loss}
    elif loss is None:
        data["loss"] = {"ce": {}}
    else:
        data["loss"] = {str(k): dict(v or {}) for k, v in loss.items()}
    return data


def _validated(data: dict) -> Recipe:
    """The recipe as the schema reads it. A list under a part's ``weight`` is a class-weight list the
    checks read from the raw mapping; the schema's ``weight`` is the part's number, so it is left out."""
    view = dict(data)
    view["loss"] = {k: {p: v for p, v in spec.items() if not (p == "weight" and isinstance(v, (list, tuple)))}
                    for k, spec in data["loss"].items()}
    return recipe_from_dict(view, source="recipe", check_registry=False)


def _is_focal(name: str, spec: dict) -> bool:
    return "focal" in str(spec.get("type") or name).lower()


def _gamma_values(g: Any) -> list[float]:
    if isinstance(g, Mapping):
        vals = [g[k] for k in ("start", "end") if k in g] + list(g.get("values") or [])
        return [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return [float(g)] if isinstance(g, (int, float)) and not isinstance(g, bool) else []


def _counts(class_counts) -> dict[str, float] | None:
    if class_counts is None:
        return None
    if isinstance(class_counts, ClassCounts):
        return class_counts.as_dict()
    if isinstance(class_counts, Mapping):
        return {str(k): float(v) for k, v in class_counts.items()}
    return {str(i): float(v) for i, v in enumerate(class_counts)}


def _vector_ratio(value) -> float | None:
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 1:
        vals = [float(v) for v in value if isinstance(v, (int, float))]
        pos = [v for v in vals if v > 0]
        if pos:
            return max(pos) / min(pos)
    return None


@dataclass
class _Context:
    """What every check reads: the raw recipe (the values as written), the validated one, its loss
    parts resolved (every argument, defaults from the loss signatures), the counts and the weights."""

    data: dict
    recipe: Recipe
    base: Recipe | None
    base_data: dict | None
    kind: str | None
    counts: dict[str, float] | None
    num_examples: float | None
    labels: list[str] | None
    args: dict[str, dict]
    weights: dict[str, float] | None
    ratio: float | None
    big: str | None
    small: str | None

    @property
    def loss(self) -> dict[str, dict]:
        return self.data["loss"]

    def ltype(self, name: str) -> str:
        return str(self.loss[name].get("type") or name)

    @property
    def active(self) -> bool:
        return weighting_active(self.recipe.weighting)

    @property
    def apply_to(self) -> str:
        apply_to = self.recipe.weighting.apply_to
        if apply_to != "auto":
            return apply_to
        return task_kind(self.kind).auto_class_weight if self.kind else "alpha/pos_weight"


def _part_args(recipe: Recipe, data: dict, kind: str | None) -> dict[str, dict]:
    """Each part's constructor arguments as training builds them (the raw values when the loss is
    not known for the kind: the other checks still read what was written)."""
    out = {}
    for name, part in recipe.loss.items():
        try:
            out[name] = resolve_loss_part(name, part, kind=kind).args
        except RecipeError:
            out[name] = dict(data["loss"].get(name) or {})
    return out


def _weight_ratio(ctx: _Context, name: str) -> float | None:
    """Weight of the rarest class over the largest's: from ``weighting`` or an explicit per-class list."""
    weights, counts, small, big = ctx.weights, ctx.counts, ctx.small, ctx.big
    if weights and small in weights and big in weights and weights[big] > 0:
        return weights[small] / weights[big]
    spec = ctx.loss[name]
    for p in _explicit_weights(spec, ctx.ltype(name)):
        value = spec.get(p)
        if isinstance(value, (list, tuple)) and len(value) == len(counts):
            by_class = dict(zip(counts, value))
            if all(isinstance(by_class[k], (int, float)) for k in (small, big)) and by_class[big] > 0:
                return float(by_class[small]) / float(by_class[big])
    return None


def _reversed_alpha(alpha, kind: str | None, counts: dict[str, float] | None,
                    num_examples: float | None) -> dict[str, Any] | None:
    """Figures of a focal ``alpha`` that favours the frequent classes, or ``None``.

    Softmax (a list, one weight per class in the order of ``counts``): the largest class weighs
    more than the rarest. Sigmoid (binary/multilabel; a number or one per label, the weight of the
    positives with ``1 - alpha`` for the negatives): ``alpha < 0.5`` on a label whose positives are
    the minority.
    """
    if alpha is None or not counts or isinstance(alpha, (str, bool)):
        return None
    names = list(counts)
    info = task_kind(kind) if kind else None
    sigmoid = info.sigmoid if info else isinstance(alpha, (int, float))
    if sigmoid:
        return _reversed_sigmoid_alpha(alpha, info, names, counts, num_examples)
    if isinstance(alpha, (int, float)) or len(alpha) != len(names) or not all(isinstance(v, (int, float)) for v in alpha):
        return None
    weights = dict(zip(names, (float(v) for v in alpha)))
    big, small = max(names, key=counts.get), min(names, key=counts.get)
    if counts[big] <= counts[small] or weights[big] <= weights[small]:
        return None
    return {"form": "softmax", "largest": big, "largest_count": counts[big], "largest_alpha": weights[big],
            "rarest": small, "rarest_count": counts[small], "rarest_alpha": weights[small],
            "ratio": round(weights[big] / weights[small], 2) if weights[small] > 0 else None}


def _reversed_sigmoid_alpha(alpha, info, names, counts, num_examples) -> dict[str, Any] | None:
    if (info is not None and info.is_binary) or (info is None and len(names) == 2):
        if len(names) != 2:
            return None
        labels, pos, total = [names[1]], [counts[names[1]]], sum(counts.values())
    else:
        if not num_examples:
            return None
        labels, pos, total = names, [counts[n] for n in names], float(num_examples)
    values = [float(alpha)] * len(labels) if isinstance(alpha, (int, float)) else list(alpha)
    if len(values) != len(labels) or not all(isinstance(v, (int, float)) for v in values):
        return None
    hits = {lab: (float(a), p) for lab, a, p in zip(labels, values, pos) if 0 < a < 0.5 and p < total - p}
    if not hits:
        return None
    lab = min(hits, key=lambda k: hits[k][1])
    a, p = hits[lab]
    return {"form": "sigmoid", "class": lab, "alpha": a, "positives": p, "examples": total,
            "positive_share": round(p / total, 4), "down_weight": round((1 - a) / a, 2), "labels": sorted(hits)}


def _reversed_gamma(name: str, gamma: float) -> Finding:
    """``reversed_focal`` warning for ``gamma < 0``: a legitimate choice (noisy labels) that also mutes rare classes."""
    easy, hard = focal_factor(EASY_P, gamma), focal_factor(1 - EASY_P, gamma)
    return Finding(
        "reversed_focal", "warning",
        {"part": name, "gamma": gamma, "easy_p": EASY_P, "hard_p": round(1 - EASY_P, 4), "easy_factor": round(easy, 4),
         "hard_factor": round(hard, 4), "easy_over_hard": round(easy / hard, 2)},
        f"loss.{name}.gamma = {gamma:g} < 0 is the reversed focal loss: the loss computes p_t^|gamma| x cross-entropy, "
        f"so an easy example (p_t = {EASY_P}) keeps {easy:.2f} of its cross-entropy and a hard one (p_t = "
        f"{1 - EASY_P:.1f}) {hard:.2f}: easy examples count {easy / hard:.1f}x as much as hard ones. That is the remedy "
        "for noisy labels (a mislabelled example looks hard to the model); on imbalanced data the rare classes are "
        "hard examples too, so it mutes them as well",
        f"keep it if your labels are noisy (the hardest training examples are mostly mislabelled) and give the rare "
        f"classes their weight through weighting:; otherwise use gamma >= 0 (loss.{name}.gamma: 1.0 focuses on the "
        "hard and rare examples; 0 is cross-entropy)",
    )


# ------------------------------------------------------------------------------------ the checks
def _double_weighting(ctx: _Context) -> list[Finding]:
    out = []
    sampler = ctx.recipe.sampler
    for name, spec in ctx.loss.items():
        ltype = ctx.ltype(name)
        if is_contrastive(name, ltype):
            continue
        mechs = []
        if ltype.lower() in _REBALANCING_LOSSES:
            mechs.append(f"loss.{name} ({ltype} rebalances by class counts itself)")
        if ctx.active:
            mechs.append(f"weighting.scheme {ctx.recipe.weighting.scheme} (as {ctx.apply_to})")
        for p in _explicit_weights(spec, ltype):
            mechs.append(f"loss.{name}.{p}")
        if sampler == "class_balanced":
            mechs.append("sampler: class_balanced")
        if len(mechs) >= 2:
            out.append(_double_finding(ctx, name, ltype, mechs))
    return out


def _double_finding(ctx: _Context, name: str, ltype: str, mechs: list[str]) -> Finding:
    counts, ratio, small, big = ctx.counts, ctx.ratio, ctx.small, ctx.big
    sampler = ctx.recipe.sampler
    figs: dict[str, Any] = {"part": name, "mechanisms": mechs}
    why = "each one already up-weights the rare classes; together their effect multiplies"
    rel_w = _weight_ratio(ctx, name) if counts and ratio else None
    if rel_w is not None and sampler == "class_balanced":
        factor = rel_w * ratio
        figs.update(rarest=small, weight_ratio=round(rel_w, 2), sampling_ratio=round(ratio, 2), combined=round(factor, 1))
        why = (f"the sampler already draws {small} {ratio:.1f}x more often (relative to {big}) than the data does, and the class weights "
               f"multiply its loss by another {rel_w:.1f}x: {factor:.0f}x in all instead of about {ratio:.1f}x")
    elif rel_w is not None:
        figs.update(rarest=small, largest=big, weight_ratio=round(rel_w, 2), imbalance_ratio=round(ratio, 2))
        why = (f"the class weights alone give {small} {rel_w:.1f}x the weight of {big} (the data is {ratio:.1f}:1), "
               "and the other mechanism corrects the same imbalance again on top")
    elif counts and ratio:
        figs.update(rarest=small, largest=big, imbalance_ratio=round(ratio, 2))
        why = f"each one already corrects the {ratio:.1f}:1 imbalance ({big} vs {small}); together their effect multiplies"
    fixes = []
    if sampler == "class_balanced":
        fixes.append("set sampler: none")
    if ctx.active:
        fixes.append("set weighting.apply_to: none")
    explicit = [f"loss.{name}.{p}" for p in _explicit_weights(ctx.loss[name], ltype)]
    if explicit:
        fixes.append(f"remove {', '.join(explicit)}")
    if ltype.lower() in _REBALANCING_LOSSES:
        fixes.append(f"replace {ltype} by ce/focal")
    return Finding(
        "double_weighting", "error", figs,
        f"class weights applied more than once on loss.{name}: {', '.join(mechs)}; {why}",
        "keep one owner of class weights: " + ", or ".join(fixes),
    )


def _gammas(ctx: _Context, name: str) -> list[float]:
    """The focusing parameter(s) of a part as it trains (its loss's default when not written)."""
    return _gamma_values(ctx.args[name].get("gamma"))


def _focal_checks(ctx: _Context) -> list[Finding]:
    out = []
    for name, spec in ctx.loss.items():
        if not _is_focal(name, spec):
            continue
        gammas = _gammas(ctx, name)
        neg = [g for g in gammas if g < 0]
        if neg:
            out.append(_reversed_gamma(name, min(neg)))
        out += _alpha_finding(name, _reversed_alpha(spec.get("alpha"), ctx.kind, ctx.counts, ctx.num_examples))
        high = [g for g in gammas if g >= HIGH_GAMMA]
        has_weights = ctx.active or bool(_explicit_weights(spec, ctx.ltype(name)))
        if high and has_weights and ctx.ratio is not None and ctx.ratio < MILD_IMBALANCE:
            out.append(Finding(
                "gamma_weights_mild", "warning",
                {"part": name, "gamma": max(high), "imbalance_ratio": round(ctx.ratio, 2), "largest": ctx.big,
                 "smallest": ctx.small, "threshold": MILD_IMBALANCE},
                f"loss.{name}.gamma = {max(high):g} plus class weights on a mild imbalance: the largest class "
                f"({ctx.big}) is only {ctx.ratio:.1f}x the smallest ({ctx.small}); focal loss already shifts weight to hard "
                "examples, so both together over-correct and cost majority-class precision",
                f"use one remedy: gamma 1.0 with the class weights, or gamma {max(high):g} with weighting.scheme: uniform",
            ))
    return out


def _alpha_finding(name: str, rev: dict | None) -> list[Finding]:
    if rev is None:
        return []
    if rev["form"] == "softmax":
        times = f" ({rev['ratio']:g}x)" if rev["ratio"] else ""
        return [Finding(
            "reversed_focal", "warning", {"part": name, **rev},
            f"loss.{name}.alpha is reversed: it gives the largest class {rev['largest']} "
            f"({rev['largest_count']:g} examples) weight {rev['largest_alpha']:g} and the rarest {rev['rarest']} "
            f"({rev['rarest_count']:g} examples) {rev['rarest_alpha']:g}{times}, so it up-weights the majority",
            f"give rarer classes the larger alpha, or drop loss.{name}.alpha and let weighting own the class "
            "weights (weighting.scheme: sqrt_inverse, apply_to: alpha)",
        )]
    return [Finding(
        "reversed_focal", "warning", {"part": name, **rev},
        f"loss.{name}.alpha = {rev['alpha']:g} weighs positives {rev['alpha']:g} and negatives "
        f"{1 - rev['alpha']:g} while the positives are the minority ({rev['class']}: {rev['positives']:g} of "
        f"{rev['examples']:g}, {100 * rev['positive_share']:.1f}%): the rare positives are down-weighted "
        f"{rev['down_weight']:g}x" + (f" (on {len(rev['labels'])} labels)" if len(rev["labels"]) > 1 else ""),
        f"use alpha above 0.5 for rare positives (e.g. loss.{name}.alpha: {1 - rev['alpha']:g}), or drop it and "
        "let weighting own the class weights (weighting.scheme: sqrt_inverse); 0.25 is RetinaNet's value "
        "for dense detection with gamma 2, not a class-balancing weight",
    )]


def _focal_lr(ctx: _Context) -> list[Finding]:
    focal_parts = [n for n, s in ctx.loss.items() if _is_focal(n, s)]
    if not focal_parts:
        return []
    lr = float(ctx.recipe.optim.lr)
    ref_lr, ref_what = DEFAULT_LR, "the cross-entropy default"
    if ctx.base is not None:
        if any(_is_focal(n, s) for n, s in ctx.base_data["loss"].items()):
            return []
        ref_lr, ref_what = float(ctx.base.optim.lr), "the cross-entropy baseline's"
    if not math.isclose(lr, float(ref_lr), rel_tol=1e-9):
        return []
    name = focal_parts[0]
    g = max(_gammas(ctx, name) or [2.0])
    shrink = focal_factor(EASY_P, g)
    return [Finding(
        "focal_lr_unchanged", "warning",
        {"lr": lr, "reference_lr": float(ref_lr), "gamma": g, "easy_p": EASY_P, "easy_loss_factor": round(shrink, 4)},
        f"optim.lr = {lr:g} is {ref_what} learning rate, unchanged for focal loss: with gamma {g:g} an "
        f"example the model gets right with p_t = {EASY_P} contributes {shrink:.3g}x its cross-entropy loss, "
        "so the gradient scale (and the best learning rate) differs from cross-entropy's",
        f"tune the learning rate for focal loss: try {lr * 2:g} and {lr / 2:g} (tailtune sweep)",
    )]


def _batch(ctx: _Context) -> list[Finding]:
    bs, accum = ctx.recipe.train.batch_size, ctx.recipe.train.grad_accum
    ref_bs, ref_what = REFERENCE_BATCH, f"the reference batch of {REFERENCE_BATCH}"
    if ctx.base is not None:
        ref_bs = ctx.base.train.batch_size * ctx.base.train.grad_accum
        ref_what = f"the baseline's effective batch of {ref_bs}"
    if not (bs < ref_bs and bs * accum < ref_bs):  # no accumulation, or not enough to make up for the smaller batch
        return []
    figs = {"batch_size": bs, "grad_accum": accum, "effective_batch": bs * accum, "reference": ref_bs}
    extra = ""
    counts, small = ctx.counts, ctx.small
    if counts:
        # multilabel counts are positives per label: the share of a label is of the rows, not of all positives
        multi_hot = ctx.kind is not None and task_kind(ctx.kind).multi_hot
        total = float(ctx.num_examples) if multi_hot and ctx.num_examples else sum(counts.values())
        share = counts[small] / total if total and small else None
        if share:
            p_none = (1 - share) ** bs
            figs.update(rarest=small, rarest_share=round(share, 4), p_batch_without_rarest=round(p_none, 3))
            extra = (f"; the rarest class {small} is {100 * share:.1f}% of the data, so {100 * p_none:.0f}% of "
                     f"batches of {bs} hold none of it")
    need = math.ceil(ref_bs / bs)
    what = ("without gradient accumulation" if accum == 1
            else f"with train.grad_accum = {accum} (effective batch {bs * accum})")
    return [Finding(
        "small_batch_no_accum", "warning", figs,
        f"train.batch_size = {bs} {what} is smaller than {ref_what}: gradients are "
        f"about {ref_bs / (bs * accum):.1f}x noisier and the tuned learning rate no longer fits{extra}",
        f"keep the effective batch: train.grad_accum: {need} (effective {bs * need}), or scale optim.lr by {bs / ref_bs:g}",
    )]


def _extreme_weights(ctx: _Context) -> list[Finding]:
    out = []
    weights, counts = ctx.weights, ctx.counts
    vals = {k: v for k, v in (weights or {}).items() if v > 0}
    if vals:
        sigmoid = ctx.kind is not None and task_kind(ctx.kind).sigmoid
        top = max(vals, key=vals.get)
        r = vals[top] if sigmoid else vals[top] / min(vals.values())
        if r > MAX_WEIGHT_RATIO:
            low = min(vals, key=vals.get)
            what = (f"pos_weight of {top} is {r:.0f}" if sigmoid
                    else f"the weight of {top} ({vals[top]:.3g}) is {r:.0f}x that of {low} ({vals[low]:.3g})")
            cnt = f" (it has {counts.get(top, 0):g} training examples)" if counts and top in counts else ""
            out.append(Finding(
                "weights_over_50x", "warning",
                {"class": top, "ratio": round(r, 1), "threshold": MAX_WEIGHT_RATIO, "weights": {k: round(v, 4) for k, v in weights.items()}},
                f"extreme class weights: {what}{cnt}; one mislabelled example of it then outweighs {r:.0f} correct ones "
                "and the loss is dominated by a handful of texts",
                "bound them: weighting.cap: 10, or weighting.scheme: sqrt_inverse / effective_number",
            ))
    for name, spec in ctx.loss.items():
        for p in _explicit_weights(spec, ctx.ltype(name)):
            r = _vector_ratio(spec.get(p))
            if r is not None and r > MAX_WEIGHT_RATIO:
                out.append(Finding(
                    "weights_over_50x", "warning", {"part": name, "param": p, "ratio": round(r, 1), "threshold": MAX_WEIGHT_RATIO},
                    f"loss.{name}.{p}: the largest weight is {r:.0f}x the smallest; a few examples dominate the loss",
                    "bound them below 50x (or let weighting: own the class weights with a cap)",
                ))
    return out


def _smoothing(ctx: _Context, name: str) -> float:
    """The part's label smoothing as it trains (the loss's default when not written)."""
    args, spec = ctx.args[name], ctx.loss[name]
    for key in ("label_smoothing", "smoothing", "epsilon"):
        eps = args.get(key, spec.get(key))
        if isinstance(eps, (int, float)) and not isinstance(eps, bool):
            return float(eps)
    return 0.0


def _smoothing_with_confidence(ctx: _Context) -> list[Finding]:
    out = []
    global_conf = ctx.recipe.sample_weighting.confidence
    for name in ctx.loss:
        part_conf = ctx.args[name].get("confidence") is True
        if not (global_conf or part_conf):
            continue
        eps = _smoothing(ctx, name)
        if eps <= 0:
            continue
        c = len(ctx.labels) if ctx.labels else None
        figs = {"part": name, "label_smoothing": eps}
        cap_txt = ""
        if c and (ctx.kind is None or task_kind(ctx.kind).is_multiclass):
            top_target = 1 - eps + eps / c
            figs.update(num_classes=c, max_target=round(top_target, 4))
            cap_txt = f" (the target for the true class is {top_target:.3f} with {c} classes)"
        out.append(Finding(
            "smoothing_with_confidence", "warning", figs,
            f"loss.{name} smooths labels by {eps:g}{cap_txt} while "
            f"{'sample_weighting.confidence' if global_conf else f'loss.{name}.confidence'} weights each "
            "example by the model's confidence: smoothing pulls confidence down, the weighting reads that "
            "lowered confidence as a signal, so the two fight and the weights carry little information",
            "use one: drop label_smoothing, or turn confidence weighting off",
        ))
    return out


def _max_length(ctx: _Context) -> list[Finding]:
    """``data.max_length`` above the encoder's positions (when its config.json is readable locally:
    :func:`tailtune.models.checks.position_limit_of_folder`; ``train`` checks it before loading)."""
    from tailtune.models.checks import position_limit_of_folder
    from tailtune.models.classifier import resolve_encoder_name

    name, max_length = ctx.recipe.model.name, ctx.recipe.data.max_length
    limit = position_limit_of_folder(resolve_encoder_name(str(name))) if name else None
    if limit is None or max_length is None or int(max_length) <= limit:
        return []
    return [Finding(
        "max_length_over_positions", "error", {"max_length": int(max_length), "positions": limit, "model": str(name)},
        f"data.max_length = {int(max_length)} but the encoder {name} has {limit} positions: training would stop "
        f"at the first text longer than {limit} tokens",
        f"set data.max_length: {limit} (or less)",
    )]


_CHECKS = (_double_weighting, _focal_checks, _focal_lr, _batch, _extreme_weights, _smoothing_with_confidence,
           _max_length)


def lint_recipe(
    recipe: Any,
    *,
    class_counts: Mapping[str, float] | Sequence[float] | None = None,
    num_examples: float | None = None,
    baseline: Any = None,
    task: TaskSpec | None = None,
) -> list[Finding]:
    """Check a recipe for remedies that cancel or compound each other.

    Every figure is what training uses: the class weights come from :func:`tailtune.recipe.resolve`
    and each loss part's arguments from its loss signature (a focal part that sets no ``gamma`` is
    checked at its loss's default, e.g. 0.1 for ``sentiment_focal``).

    Args:
        recipe: a :class:`tailtune.recipe.Recipe` or its mapping form.
        class_counts: training examples per class (multilabel: positives per label), e.g. from
            :func:`class_counts_from_data`, or the :class:`~tailtune.recipe.counts.ClassCounts` training
            resolves with (an aspect task's per-cell weights need its per-aspect counts); enables the
            checks that cite the data.
        num_examples: training set size (multilabel ``pos_weight`` needs it).
        baseline: the recipe this one is compared with (a CE recipe it switches from); its lr and
            effective batch replace the defaults of ``focal_lr_unchanged`` and ``small_batch_no_accum``.
        task: the data's TaskSpec (its kind, label order and hierarchy; default: the recipe's
            ``task`` section and the class names of ``class_counts``).

    Returns:
        findings, errors first (empty when the recipe is clean).

    Raises:
        TypeError: ``recipe`` is neither a Recipe nor a mapping. RecipeError: it does not validate.

    Example:
        >>> lint_recipe({"loss": {"ce": {}}, "train": {"batch_size": 32}})
        []
    """
    data = _as_mapping(recipe)
    rec = _validated(data)
    base_data = _as_mapping(baseline) if baseline is not None else None
    counts = _counts(class_counts)
    kind = task.kind if task is not None else rec.task.kind
    ratio, big, small = imbalance_ratio(counts) if counts else (None, None, None)
    given = class_counts if isinstance(class_counts, ClassCounts) else counts  # a ClassCounts keeps per-aspect counts
    weights = (recipe_class_weights(rec, kind, given, num_examples=num_examples, task=task) if counts else None)
    labels = list(task.labels) if task is not None else (rec.task.labels or (list(counts) if counts else None))
    ctx = _Context(data, rec, _validated(base_data) if base_data is not None else None, base_data, kind, counts,
                   num_examples, labels, _part_args(rec, data, kind), weights, ratio, big, small)
    return sort_findings([f for check in _CHECKS for f in check(ctx)])


def recipe_counts(recipe: Any, *, data_path: str | None = None) -> tuple[TaskSpec, Any]:
    """Load the recipe's training data as training does (:func:`tailtune.recipe.data.load_recipe_data`)
    and count it: ``(task, ClassCounts)``."""
    rec = recipe if isinstance(recipe, Recipe) else _validated(_as_mapping(recipe))
    loaded = load_recipe_data(rec, data_path=data_path, require=("train",))
    return loaded.task, train_counts(loaded)


def class_counts_from_data(recipe: Any, *, data_path: str | None = None) -> tuple[dict[str, float], int]:
    """Load the recipe's training data and count it: ``({class: count}, number of training examples)``.

    Multilabel: positives per label; aspects: examples per polarity (``absent`` included) pooled over
    aspects, as the class weights use them.

    Raises:
        RecipeError: no ``data.path`` in the recipe and none given.
        DataError: from :func:`tailtune.data.load_dataset`.
    """
    _, counts = recipe_counts(recipe, data_path=data_path)
    return counts.as_dict(), int(counts.num_examples)
