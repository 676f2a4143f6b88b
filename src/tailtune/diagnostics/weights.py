"""The class weights a recipe gives each class, recomputed from the recipe and the class counts.

This mirrors what training does with ``weighting`` (docs/architecture.md, "Weighting"): softmax
tasks (multiclass, aspects) get :func:`tailtune.weighting.class_weights` over the classes;
binary/multilabel tasks get ``pos_weight = negatives / positives`` per label
(:func:`tailtune.weighting.pos_weight`, bounded by ``cap``; its square root under ``sqrt_inverse``,
as training takes it). ``overrides`` are applied last, ``apply_to: none`` or a ``uniform`` scheme
without overrides means no class weights (``None``). Sigmoid tasks report the ``pos_weight`` even
when training hands it to a focal loss as ``alpha = pos_weight / (1 + pos_weight)``: it is the
positive-to-negative weight ratio either way.

Example:
    >>> recipe_class_weights({"weighting": {"scheme": "inverse", "normalize": False}}, "multiclass",
    ...                      {"a": 900, "b": 100})
    {'a': 1.1111111640930176, 'b': 10.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def weighting_active(recipe: Mapping | None) -> bool:
    """Whether the recipe's ``weighting`` section produces non-uniform class weights."""
    w = (recipe or {}).get("weighting") or {}
    if not isinstance(w, Mapping) or w.get("apply_to") == "none":
        return False
    scheme = w.get("scheme") or "uniform"
    overrides = w.get("overrides") or {}
    return scheme not in ("uniform", "none") or any(float(v) != 1.0 for v in overrides.values())


def recipe_class_weights(
    recipe: Mapping | None,
    kind: str | None,
    counts: Mapping[str, float] | None,
    *,
    labels: Sequence[str] | None = None,
    num_examples: float | None = None,
) -> dict[str, float] | None:
    """``{class: weight}`` the recipe's ``weighting`` gives, or ``None`` (no weighting, or unknown).

    Args:
        recipe: the recipe mapping (``recipe.yaml`` contents or ``Recipe.model_dump()``).
        kind: the task kind.
        counts: training examples per class (multilabel: positives per label).
        labels: class order (default: the keys of ``counts``).
        num_examples: training set size, needed for multilabel ``pos_weight`` (negatives = N - positives).
    """
    if not weighting_active(recipe) or not counts:
        return None
    from tailtune import weighting

    w = dict((recipe or {}).get("weighting") or {})
    names = [str(n) for n in (labels or list(counts))]
    if any(n not in counts for n in names):
        names = list(counts)
    values = [float(counts[n]) for n in names]
    overrides = {str(k): float(v) for k, v in (w.get("overrides") or {}).items()}
    try:
        if kind in ("binary", "multilabel"):
            if kind == "binary":
                if len(values) != 2:
                    return None
                pos, neg, out_names = [values[1]], [values[0]], [names[1]]
            else:
                if num_examples is None:
                    return None
                pos, neg, out_names = values, [float(num_examples) - v for v in values], names
            tensor = weighting.pos_weight(pos, neg, cap=w.get("cap"), names=out_names,
                                          scheme=w.get("scheme") or "uniform", beta=float(0.999 if w.get("beta") is None else w["beta"]))
            result = {n: float(v) for n, v in zip(out_names, tensor.tolist())}
            for k, v in overrides.items():
                if k in result:
                    result[k] = v
            return result
        opts = {"scheme": w.get("scheme") or "uniform"}
        if w.get("beta") is not None:
            opts["beta"] = float(w["beta"])
        if w.get("cap") is not None:
            opts["cap"] = float(w["cap"])
        if w.get("normalize") is not None:
            opts["normalize"] = bool(w["normalize"])
        ov = {k: v for k, v in overrides.items() if k in names}
        tensor = weighting.class_weights(values, overrides=ov or None, names=names, **opts)
        return {n: float(v) for n, v in zip(names, tensor.tolist())}
    except (ValueError, TypeError):
        return None


def imbalance_ratio(counts: Mapping[str, float] | Sequence[float]) -> tuple[float, str | None, str | None]:
    """``(max count / min non-zero count, largest class, smallest class)``; ``(1.0, None, None)`` if empty."""
    items = list(counts.items()) if isinstance(counts, Mapping) else [(str(i), c) for i, c in enumerate(counts)]
    items = [(k, float(v)) for k, v in items if float(v) > 0]
    if not items:
        return 1.0, None, None
    big = max(items, key=lambda kv: kv[1])
    small = min(items, key=lambda kv: kv[1])
    return big[1] / small[1], big[0], small[0]
