"""Class-level weights: one owner for every class-weighting scheme.

A class weight ``w_c`` multiplies the loss of every example whose target is class ``c`` (softmax
losses: ``alpha``/``weight``) or scales the positive term of a label (sigmoid losses:
``pos_weight``). The functions here return ``torch.float32`` tensors that a loss module stores
with ``register_buffer`` so they follow ``.to(device)`` and ``state_dict``.

Schemes (``n_c`` examples of class ``c``, ``N = sum_c n_c``):

=================== ============================================ ==============================
scheme              raw weight ``w_c``                           reference
=================== ============================================ ==============================
``uniform``         ``1``                                        --
``inverse``         ``N / n_c``                                  King & Zeng 2001
``sqrt_inverse``    ``sqrt(N / n_c)``                            Mikolov et al. 2013 (smoothing)
``effective_number````(1 - beta) / (1 - beta ** n_c)``          Cui et al., CVPR 2019
=================== ============================================ ==============================

Order of operations: raw weights -> ``cap`` -> ``normalize`` -> ``overrides``.

* ``cap`` bounds the spread of the *automatic* weights: after capping, no automatic weight exceeds
  ``cap`` times the smallest automatic weight (that of the most frequent class). The bound is a
  ratio, so it holds with or without normalisation (``cap=3.0`` reads "at most 3x").
* ``normalize=True`` rescales the automatic weights to mean 1 over classes (sum = C), the
  convention of Cui et al.; the loss scale then stays comparable to the unweighted loss.
* ``overrides`` ({class name: weight}) are set last, exactly as given: never capped, never
  normalised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from tailtune.errors import did_you_mean
from tailtune.utils.vectors import as_class_vector
from tailtune.weighting.schemes import DEFAULT_BETA, SCHEMES

_ZERO_REMEDY = (
    "remedies: add training examples for it, merge it into a related class, drop it from the task's "
    "labels, or give it an explicit weight with overrides={name: weight}"
)


def _as_float64(values, *, name: str) -> torch.Tensor:
    return as_class_vector(values, name=name, dtype=torch.float64, device="cpu")


def _label(i: int, names: Sequence[str] | None) -> str:
    return repr(names[i]) if names is not None else f"index {i}"


def _split_counts(counts, names):
    if isinstance(counts, Mapping):
        if names is not None and list(names) != list(counts.keys()):
            raise ValueError("names must match the keys of counts when counts is a mapping")
        names = [str(k) for k in counts.keys()]
        counts = list(counts.values())
    t = _as_float64(counts, name="counts")
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != t.numel():
            raise ValueError(f"names has {len(names)} entries but counts has {t.numel()}")
    return t, names


def class_weights(
    counts,
    *,
    scheme: str,
    beta: float = DEFAULT_BETA,
    cap: float | None = None,
    overrides: Mapping[str | int, float] | None = None,
    normalize: bool = True,
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """Per-class weights from class counts.

    Args:
        counts: examples per class, a sequence/array/tensor of length C or a mapping
            ``{class name: count}`` (which also supplies ``names``).
        scheme: one of :data:`SCHEMES`.
        beta: ``effective_number`` hyper-parameter in ``[0, 1)``; ``beta -> 1`` approaches
            ``inverse``, ``beta = 0`` is ``uniform``.
        cap: ratio bound ``>= 1``: automatic weights are clipped to ``cap * min(weights)``.
        overrides: ``{class name (or int index): weight}`` set after everything else.
        normalize: rescale automatic weights to mean 1 over classes.
        names: class names (needed for name keys in ``overrides`` and for error messages).

    Returns:
        ``torch.float32`` tensor of shape ``(C,)``.

    Raises:
        ValueError: unknown scheme, invalid beta/cap/override, or a class with zero examples
            (unless it is overridden; ``uniform`` never needs counts to be positive).

    Shape:
        counts ``(C,)`` -> weights ``(C,)``.

    Example:
        >>> class_weights([900, 90, 10], scheme="inverse", normalize=False)
        tensor([  1.1111,  11.1111, 100.0000])
        >>> class_weights({"a": 900, "b": 10}, scheme="inverse", cap=3.0, normalize=False)
        tensor([1.0111, 3.0333])

    References:
        Cui, Jia, Lin, Song, Belongie. "Class-Balanced Loss Based on Effective Number of Samples",
        CVPR 2019.

    Relations:
        ``effective_number`` with ``beta=0`` equals ``uniform``; as ``beta -> 1`` it approaches
        ``inverse`` (after normalisation).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r} is not one of {list(SCHEMES)}{did_you_mean(scheme, SCHEMES)}")
    if not isinstance(beta, (int, float)) or not (0.0 <= float(beta) < 1.0):
        raise ValueError(f"beta={beta!r} must be a number in [0, 1)")
    if cap is not None and (not isinstance(cap, (int, float)) or not math.isfinite(cap) or cap < 1.0):
        raise ValueError(f"cap={cap!r} must be a finite number >= 1 (a ratio to the smallest weight) or None")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize={normalize!r} must be a bool")
    n, names = _split_counts(counts, names)
    num_classes = n.numel()
    override_idx = _override_indices(overrides, names, num_classes)
    auto = torch.tensor([i not in override_idx for i in range(num_classes)])
    if scheme != "uniform":
        zero = [i for i in range(num_classes) if n[i] == 0 and auto[i]]
        if zero:
            which = ", ".join(_label(i, names) for i in zero)
            raise ValueError(f"class {which} has zero examples, so scheme={scheme!r} cannot weight it; {_ZERO_REMEDY}")
    w = _raw_weights(n, auto, scheme=scheme, beta=beta)
    if auto.any():
        wa = w[auto]
        if cap is not None:
            wa = torch.minimum(wa, wa.min() * cap)
        if normalize:
            wa = wa / wa.mean()
        w = w.clone()
        w[auto] = wa
    for idx, value in override_idx.items():
        w[idx] = value
    return w.to(torch.float32)


def _override_indices(overrides, names: list[str] | None, num_classes: int) -> dict[int, float]:
    """``{class index: weight}`` of ``overrides`` (keys: class names or int indices), validated."""
    override_idx: dict[int, float] = {}
    for key, value in (overrides or {}).items():
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise TypeError(f"overrides keys must be class names or int indices, got {key!r}")
        if isinstance(key, int):
            if not 0 <= key < num_classes:
                raise ValueError(f"overrides index {key} is out of range [0, {num_classes})")
            idx = key
        else:
            if names is None:
                raise ValueError(f"overrides uses the name {key!r} but no class names were given (pass names=)")
            if key not in names:
                raise ValueError(
                    f"overrides names unknown class {key!r}{did_you_mean(key, names)}; classes: {names}"
                )
            idx = names.index(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ValueError(f"overrides[{key!r}]={value!r} must be a finite number >= 0")
        override_idx[idx] = float(value)
    return override_idx


def _raw_weights(n: torch.Tensor, auto: torch.Tensor, *, scheme: str, beta: float) -> torch.Tensor:
    """The scheme's weights before cap, normalisation and overrides (float64; overridden classes,
    whose count may be 0, get a placeholder)."""
    num_classes = n.numel()
    if scheme == "uniform" or (scheme == "effective_number" and beta == 0.0):
        return torch.ones(num_classes, dtype=torch.float64)
    safe = torch.where(auto, n, torch.ones_like(n))
    total = n.sum()
    if scheme == "inverse":
        return total / safe
    if scheme == "sqrt_inverse":
        return torch.sqrt(total / safe)
    # effective_number: (1 - beta) / (1 - beta**n) computed with expm1 for beta close to 1
    return (1.0 - beta) / -torch.expm1(safe * math.log(beta))


def aspect_class_weights(
    cell_counts,
    *,
    aspects: Sequence[str],
    classes: Sequence[str],
    scheme: str,
    beta: float = DEFAULT_BETA,
    cap: float | None = None,
    overrides: Mapping[str, float] | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """Per-cell class weights of an aspect task: every (aspect, class) cell is a class of its own.

    The cells (``absent`` included: it is a class of each aspect, as in the pooled weights) go through
    :func:`class_weights` as ``A * (P + 1)`` classes named ``aspect#class``: the scheme weighs each
    cell by its own count, ``cap`` bounds every automatic weight to ``cap`` times the smallest (that of
    the most frequent cell, usually an aspect's ``absent``), ``normalize`` gives the automatic weights
    mean 1 over the cells, and ``overrides`` (keys of :mod:`tailtune.weighting.cells`: a cell, an
    aspect or a class for every aspect; the most specific wins) are set last, exactly as given.

    A cell without training examples (an aspect never ``negative`` in train) takes no part in the
    scheme and gets the largest automatic weight unless overridden: no training target uses it (only
    label smoothing's sum over classes reads it), and refusing the whole recipe for it would help no one.

    Args:
        cell_counts: ``(A, P + 1)`` training examples per cell (aspect-major, ``absent`` last).
        aspects, classes: the names of the rows and columns (classes: polarities + ``absent``).
        scheme, beta, cap, normalize: as in :func:`class_weights`.
        overrides: ``{key: weight}`` (see :func:`tailtune.weighting.cells.cell_overrides`).

    Returns:
        ``torch.float32`` tensor of shape ``(A, P + 1)``.

    Raises:
        ValueError: the shape does not match the names, an unknown override key (naming the closest),
            a bad scheme, beta, cap or weight.

    Example:
        >>> w = aspect_class_weights([[90, 10], [50, 50]], aspects=["food", "menu"], classes=["pos", "absent"],
        ...                          scheme="inverse", normalize=False, overrides={"menu#pos": 3.0})
        >>> w
        tensor([[ 2.2222, 20.0000],
                [ 3.0000,  4.0000]])

    Relations:
        One aspect (A = 1) gives exactly :func:`class_weights` of its counts; ``scheme: uniform`` gives
        ones (then the overrides).
    """
    from tailtune.weighting.cells import cell_keys, cell_overrides

    aspects, classes = [str(a) for a in aspects], [str(c) for c in classes]
    table = _as_float64(torch.as_tensor(cell_counts, dtype=torch.float64).reshape(-1), name="cell_counts")
    if table.numel() != len(aspects) * len(classes):
        raise ValueError(f"cell_counts has {table.numel()} cells, expected {len(aspects)} aspects x {len(classes)} classes")
    num_classes = len(classes)
    fixed = {a * num_classes + c: w for (a, c), w in cell_overrides(overrides, aspects, classes).items()}
    names = cell_keys(aspects, classes)
    empty = [i for i in range(table.numel()) if table[i] == 0 and i not in fixed]
    if scheme != "uniform" and empty and len(empty) + len(fixed) < table.numel():
        kept = [i for i in range(table.numel()) if i not in empty]
        sub = class_weights(table[kept], scheme=scheme, beta=beta, cap=cap, normalize=normalize,
                            overrides={kept.index(i): w for i, w in fixed.items()}, names=[names[i] for i in kept])
        auto = [sub[k] for k, i in enumerate(kept) if i not in fixed]
        w = torch.zeros(table.numel(), dtype=torch.float32)
        w[kept] = sub
        w[empty] = max(auto) if auto else 1.0
    else:
        w = class_weights(table, scheme=scheme, beta=beta, cap=cap, normalize=normalize, overrides=fixed or None,
                          names=names)
    return w.reshape(len(aspects), num_classes)


def pos_weight(pos_counts, neg_counts=None, *, cap: float | None = None, num_samples: int | None = None,
               names: Sequence[str] | None = None, scheme: str = "inverse", beta: float = DEFAULT_BETA) -> torch.Tensor:
    """Per-label positive weight for ``binary_cross_entropy_with_logits``: the scheme's weight of the
    label's positives relative to its negatives.

    ``scheme`` (as in :func:`class_weights`, with the label's positives and negatives as the two
    classes): ``inverse`` ``neg_c / pos_c``; ``sqrt_inverse`` its square root; ``effective_number``
    ``E(neg_c) / E(pos_c)`` with ``E(n) = (1 - beta**n) / (1 - beta)`` (Cui et al. 2019: extra
    negatives add ever less, so a 1:700 label gets about 100 at ``beta=0.999``, not 700; ``beta=0``
    gives 1); ``uniform`` 1. Give either ``neg_counts`` or ``num_samples`` (then ``neg_c =
    num_samples - pos_c``). ``cap`` is an absolute upper bound on each weight, applied last (e.g. 10
    for a 100:1 label).

    Shape:
        ``(C,)`` -> ``(C,)`` float32.

    Example:
        >>> pos_weight([10, 50], [990, 950], cap=30.0)
        tensor([30., 19.])

    Raises:
        ValueError: a label with no positives or no negatives (naming it), bad ``cap``.
    """
    pos, names = _split_counts(pos_counts, names)
    if (neg_counts is None) == (num_samples is None):
        raise ValueError("pass exactly one of neg_counts or num_samples")
    if neg_counts is not None:
        neg = _as_float64(neg_counts, name="neg_counts")
        if neg.numel() != pos.numel():
            raise ValueError(f"neg_counts has {neg.numel()} entries but pos_counts has {pos.numel()}")
    else:
        if not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(f"num_samples={num_samples!r} must be a positive int")
        neg = num_samples - pos
        if (neg < 0).any():
            raise ValueError(f"num_samples={num_samples} is smaller than a positive count {pos.max().item():.0f}")
    if cap is not None and (not isinstance(cap, (int, float)) or not math.isfinite(cap) or cap <= 0):
        raise ValueError(f"cap={cap!r} must be a finite number > 0 or None")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r} is not one of {list(SCHEMES)}{did_you_mean(str(scheme), SCHEMES)}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < 1.0:
        raise ValueError(f"beta={beta!r} must be a number in [0, 1)")
    for i in range(pos.numel()):
        if pos[i] == 0:
            raise ValueError(
                f"label {_label(i, names)} has no positive examples, so its pos_weight is undefined; "
                "remedies: add positive examples, drop the label, or pass an explicit pos_weight"
            )
        if neg[i] == 0:
            raise ValueError(
                f"label {_label(i, names)} has no negative examples (positive on every row), so its "
                "pos_weight would be 0; remedies: drop the label or pass an explicit pos_weight"
            )
    if scheme == "uniform":
        w = torch.ones_like(pos)
    elif scheme == "inverse":
        w = neg / pos
    elif scheme == "sqrt_inverse":
        w = torch.sqrt(neg / pos)
    elif beta == 0.0:  # effective_number: every example counts once
        w = torch.ones_like(pos)
    else:  # effective_number: E(neg) / E(pos), the (1 - beta) factors cancel; expm1 for beta near 1
        log_beta = math.log(beta)
        w = torch.expm1(neg * log_beta) / torch.expm1(pos * log_beta)
    if cap is not None:
        w = w.clamp(max=cap)
    return w.to(torch.float32)


def label_counts(targets, *, num_classes: int | None = None, ignore_index: int = -100) -> torch.Tensor:
    """Count examples per class from encoded targets.

    ``targets`` int ``(N,)`` (multiclass, ``ignore_index`` skipped) -> ``(C,)`` counts; float or int
    multi-hot ``(N, C)`` -> positives per label ``(C,)``. Returns int64.
    """
    t = torch.as_tensor(targets)
    if t.ndim == 1:
        t = t.long()
        t = t[t != ignore_index]
        if (t < 0).any():
            raise ValueError(f"targets contain negative class indices other than ignore_index={ignore_index}")
        size = num_classes if num_classes is not None else (int(t.max().item()) + 1 if t.numel() else 0)
        if t.numel() and int(t.max().item()) >= size:
            raise ValueError(f"targets contain class {int(t.max().item())} >= num_classes={size}")
        return torch.bincount(t, minlength=size)
    if t.ndim == 2:
        if num_classes is not None and t.shape[1] != num_classes:
            raise ValueError(f"multi-hot targets have {t.shape[1]} columns, expected num_classes={num_classes}")
        return (t > 0.5).sum(dim=0).long()
    raise ValueError(f"targets must be (N,) class indices or (N, C) multi-hot, got shape {tuple(t.shape)}")
