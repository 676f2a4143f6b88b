"""Hierarchy consistency penalty for multi-label tasks with parent/child labels.

For every (child ``c``, parent ``p``) pair the penalty of an example is::

    space="prob":  relu(sigmoid(z_c) - sigmoid(z_p) + margin)
    space="logit": relu(z_c - z_p + margin)

i.e. it is positive exactly when a secondary label is scored above its primary label. It needs no
targets (a consistent model never scores a child above its parent). ``"none"`` sums the pairs of
an example; ``"mean"`` divides the sum by ``num_pairs * sum_i s_i`` (mean over example-pair items).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from tailtune.errors import did_you_mean
from tailtune.losses._base import (
    LossModule,
    check_number,
    check_reduction,
    check_sample_weight,
    compute_dtype,
    reduce,
)

SPACES: tuple[str, ...] = ("prob", "logit")


def parent_index(parent_of, *, num_classes: int | None = None, names: Sequence[str] | None = None) -> torch.Tensor:
    """Normalise a hierarchy to a ``(C,)`` long tensor: parent index per class, ``-1`` for roots.

    ``parent_of`` is a sequence/tensor of parent indices (``-1`` = no parent), a mapping
    ``{child index: parent index}``, or a mapping ``{child name: parent name}`` (``TaskSpec.hierarchy``)
    together with ``names``.

    Example:
        >>> parent_index({"praising violence": "violent content"}, names=["violent content", "praising violence"])
        tensor([-1,  0])
    """
    if isinstance(parent_of, Mapping):
        if names is not None:
            names = list(names)
            num_classes = len(names)
        if num_classes is None:
            raise ValueError("a mapping hierarchy needs names= (label names) or num_classes=")
        out = torch.full((num_classes,), -1, dtype=torch.long)
        for child, parent in parent_of.items():
            idx = []
            for label in (child, parent):
                if isinstance(label, str):
                    if names is None:
                        raise ValueError(f"hierarchy uses the name {label!r} but no names= were given")
                    if label not in names:
                        raise ValueError(f"hierarchy names unknown label {label!r}{did_you_mean(label, names)}")
                    idx.append(names.index(label))
                elif isinstance(label, int) and not isinstance(label, bool):
                    idx.append(label)
                else:
                    raise TypeError(f"hierarchy keys/values must be label names or indices, got {label!r}")
            out[idx[0]] = idx[1]
    else:
        out = torch.as_tensor(parent_of).long().flatten()
        if num_classes is not None and out.numel() != num_classes:
            raise ValueError(f"parent_of has {out.numel()} entries, expected {num_classes}")
    c = out.numel()
    if ((out < -1) | (out >= c)).any():
        raise ValueError(f"parent indices must be -1 or in [0, {c}), got {out.tolist()}")
    if (out == torch.arange(c)).any():
        raise ValueError(f"a label cannot be its own parent: {out.tolist()}")
    # cycle check: following parents must reach a root within C steps
    cur = out.clone()
    for _ in range(c):
        cur = torch.where(cur >= 0, out[cur.clamp_min(0)], cur)
    if (cur >= 0).any():
        raise ValueError(f"the hierarchy has a cycle: {out.tolist()}")
    if not (out >= 0).any():
        raise ValueError("the hierarchy has no (child, parent) pair")
    return out


def hierarchy_penalty(
    logits: torch.Tensor,
    parent_of,
    *,
    margin: float = 0.0,
    space: str = "prob",
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Penalise children scored above their parents (see module docstring).

    Args:
        logits: ``(N, C)`` multi-label logits.
        parent_of: hierarchy accepted by :func:`parent_index` (index forms only here).
        margin: required gap (``>= 0``) in the chosen ``space``.
        space: ``"prob"`` (bounded, default) or ``"logit"``.

    Shape:
        ``(N, C)`` -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> z = torch.tensor([[-2.0, 3.0], [2.0, -1.0]])   # row 0: child (1) above parent (0)
        >>> hierarchy_penalty(z, [-1, 0], reduction="none")
        tensor([0.8334, 0.0000])

    References:
        Giunchiglia & Lukasiewicz, "Coherent Hierarchical Multi-Label Classification Networks",
        NeurIPS 2020 (hierarchy violation); Wehrmann et al., ICML 2018.

    Relations:
        zero for any model whose child scores never exceed their parents' (by ``margin``).
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"logits must be a tensor of shape (N, C), got {getattr(logits, 'shape', None)}")
    check_reduction(reduction)
    if space not in SPACES:
        raise ValueError(f"space={space!r} is not one of {list(SPACES)}{did_you_mean(str(space), SPACES)}")
    m = check_number(margin, name="margin", low=0.0)
    parents = parent_of if isinstance(parent_of, torch.Tensor) and parent_of.dtype == torch.long else None
    if parents is None or parents.numel() != logits.shape[1]:
        parents = parent_index(parent_of, num_classes=logits.shape[1])
    x = compute_dtype(logits)
    sw = check_sample_weight(sample_weight, x.shape[0], x)
    parents = parents.to(x.device)
    has_parent = parents >= 0
    s = torch.sigmoid(x) if space == "prob" else x
    # every class is a potential child; roots are masked (no host-side nonzero, no sync)
    gap = s - s[:, parents.clamp_min(0)] + m
    per_example = (torch.relu(gap) * has_parent.to(x.dtype)).sum(dim=1)
    if sw is not None:
        per_example = per_example * sw
    if reduction != "mean":
        return reduce(per_example, None, reduction)
    denom = (sw.sum() if sw is not None else x.shape[0]) * has_parent.sum()
    return reduce(per_example, denom, reduction)


class HierarchyPenalty(LossModule):
    """Module form of :func:`hierarchy_penalty`; the parent index is a buffer; ignores ``target``.

    Example:
        >>> pen = HierarchyPenalty(parent_of={"praising violence": "violent content"},
        ...                        names=["violent content", "praising violence"])
    """

    count_unit = "pairs"

    def __init__(self, *, parent_of, names: Sequence[str] | None = None, margin: float = 0.0,
                 space: str = "prob", reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.register_buffer("parents", parent_index(parent_of, names=names))
        self.margin = check_number(margin, name="margin", low=0.0)
        if space not in SPACES:
            raise ValueError(f"space={space!r} is not one of {list(SPACES)}{did_you_mean(str(space), SPACES)}")
        self.space = space

    def forward(self, logits, target=None, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        if logits.ndim != 2 or logits.shape[1] != self.parents.numel():
            raise ValueError(f"logits must have shape (N, {self.parents.numel()}), got {tuple(logits.shape)}")
        return hierarchy_penalty(logits, self.parents, margin=self.margin, space=self.space,
                                 reduction=self._reduction(reduction), sample_weight=sample_weight)
