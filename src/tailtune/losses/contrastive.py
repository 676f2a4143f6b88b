"""Supervised contrastive loss (Khosla et al. 2020) for class, multi-label and per-aspect labels.

With L2-normalised embeddings ``z``, similarities ``s_ij = z_i . z_j / temperature`` and positive
weights ``w_ij`` (``w_ii = 0``), the loss of anchor ``i`` is::

    L_i = log sum_{j != i} exp(s_ij)  -  sum_j w_ij s_ij / sum_j w_ij
        = - sum_j w_ij log softmax_{j != i}(s_i)_j / sum_j w_ij

(``L^sup_out`` of Khosla et al.). Positive weights:

* integer labels ``(N,)``: ``w_ij = [y_i == y_j]`` (``positives`` has no effect);
* multi-hot ``(N, C)`` (``kind="multilabel"``) and per-aspect ``(N, A)`` label matrices
  (``kind="aspects"``, entries are polarity indices; entries equal to ``absent_index`` are not
  labels) are compared as label *sets*: ``positives="jaccard"`` weights each pair by
  ``|Y_i & Y_j| / |Y_i | Y_j|`` (two empty sets count as identical, Jaccard 1);
  ``positives="exact"`` keeps only identical sets with weight 1.

Anchors without any positive are excluded: their ``"none"`` value is 0 and they do not count in
the ``"mean"`` denominator (the number of anchors with a positive, weighted by ``sample_weight``).
A batch without any such anchor returns 0 with a gradient, never NaN.

Targets equal to ``ignore_index`` (-100, as in the softmax losses) are no label: an ignored example
is left out entirely, exactly as if it were not in the batch (nobody's positive or negative, no
loss, no gradient). An aspect entry equal to ``ignore_index`` is treated like an absent aspect, and
an example whose aspects are all ignored is ignored. So an all-ignored batch gives 0, as every
softmax loss does.

The forward pass is one matrix product and a row log-sum-exp; the gradient is computed in closed
form (``dL/ds = softmax - w / sum w``) with a single matrix product in the same pass (see
:mod:`tailtune.losses._fused`; compiled on CUDA), without Python loops or host synchronisation.
"""

from __future__ import annotations

import torch

from tailtune.errors import did_you_mean
from tailtune.losses import _fused
from tailtune.losses._base import (
    LossModule,
    check_number,
    check_reduction,
    check_sample_weight,
    compute_dtype,
)
from tailtune.losses._fused import reduce_rows

POSITIVE_MODES: tuple[str, ...] = ("jaccard", "exact")
LABEL_KINDS: tuple[str, ...] = ("binary", "multiclass", "multilabel", "aspects")


def supcon_kernel(z_raw, labels, weights, keep, sw, scalars, *, normalize: bool, reduction: str,
                  need_grad: bool):
    """Per-anchor loss (reduced) and, with ``need_grad``, its closed-form gradient (``reduction``
    ``"sum"``/``"mean"`` only: anchors share every embedding, so a per-anchor upstream gradient does
    not factor out). Positive weights: from integer ``labels`` here (``weights is None``), else the
    given ``(N, N)`` matrix; ``keep`` (``None``: all) marks the examples that are not ignored.
    With ``r_i = d out / d L_i`` and ``P`` the softmax over the kept ``j != i``::

        G = r_i P_ij - w_ij r_i / sum_j w_ij,   d out / d z = (G + G^T) z / T

    then through the L2 normalisation (``(g - z (z.g)) / |z_raw|``)."""
    (inv_temp,) = scalars
    norm = None
    if normalize:
        norm = torch.linalg.vector_norm(z_raw, dim=1, keepdim=True).clamp_min(_NORM_EPS)
        z = z_raw / norm
    else:
        z = z_raw
    n = z.shape[0]
    out_mask = torch.arange(n, device=z.device).unsqueeze(1) == torch.arange(n, device=z.device).unsqueeze(0)
    if keep is not None:
        out_mask = out_mask | ~keep.unsqueeze(0)
    w = _class_weights(labels, out_mask, keep, z.dtype) if weights is None else weights
    sim = torch.mm(z * inv_temp, z.t())
    # a finite fill: a row with nothing left (all others ignored) stays finite, and is not counted;
    # w is 0 wherever the fill is, so w . masked = w . sim. The fused path records no graph: in place.
    fill = torch.finfo(sim.dtype).min
    masked = sim.masked_fill_(out_mask, fill) if not torch.is_grad_enabled() else sim.masked_fill(out_mask, fill)
    lse = torch.logsumexp(masked, dim=1)
    count = w.sum(dim=1)
    valid = count > 0
    count = count.clamp_min(torch.finfo(z.dtype).tiny)
    rows = torch.where(valid, lse - torch.linalg.vecdot(w, masked) / count, 0.0)
    denom = valid.to(z.dtype) if sw is None else torch.where(valid, sw, 0.0)
    out, scale = reduce_rows(rows, sw, denom if reduction == "mean" else None, reduction)
    if not need_grad:
        return out, None
    r = torch.where(valid, torch.ones_like(count) * scale, 0.0)
    # only the fused path (no autograd recording) gets here: in-place operations are safe
    gs = torch.sub(masked, lse.unsqueeze(1)).exp_().mul_(r.unsqueeze(1)).addcmul_(w, (-r / count).unsqueeze(1))
    grad = torch.mm(gs + gs.t(), z).mul_(inv_temp)
    if normalize:
        raw = norm > _NORM_EPS  # F.normalize: z_raw / max(|z_raw|, eps)
        grad = torch.where(raw, (grad - z * (z * grad).sum(dim=1, keepdim=True)) / norm, grad / _NORM_EPS)
    return out, grad


_NORM_EPS = 1e-12  # F.normalize's default eps


def _class_weights(labels, out_mask, keep, dtype):
    w = (labels.unsqueeze(1) == labels.unsqueeze(0)) & ~out_mask
    if keep is not None:
        w = w & keep.unsqueeze(1)
    return w.to(dtype)


def _kept(labels: torch.Tensor, kind: str, ignore_index: int | None) -> torch.Tensor | None:
    """Examples that are not ignored (``None`` when nothing can be): see the module docstring."""
    if ignore_index is None or kind == "multilabel":
        return None
    if labels.ndim == 1:
        return labels != ignore_index
    return ~(labels == ignore_index).all(dim=1)


def _set_overlap(labels: torch.Tensor, kind: str, absent_index: int | None, dtype,
                 ignore_index: int | None = None) -> tuple[torch.Tensor, ...]:
    """Intersection sizes (N, N) and set sizes (N,) of the label sets."""
    if kind == "multilabel":
        y = (labels > 0.5).to(dtype)
        inter = torch.mm(y, y.t())
        size = y.sum(dim=1)
    else:  # aspects
        present = torch.ones_like(labels, dtype=torch.bool) if absent_index is None else labels != absent_index
        if ignore_index is not None:
            present = present & (labels != ignore_index)
        same = (labels.unsqueeze(1) == labels.unsqueeze(0)) & present.unsqueeze(1)
        inter = same.sum(dim=2).to(dtype)
        size = present.sum(dim=1).to(dtype)
    return inter, size


def positive_weights(labels: torch.Tensor, *, kind: str | None = None, positives: str = "jaccard",
                     absent_index: int | None = None, ignore_index: int | None = -100,
                     dtype=torch.float32) -> torch.Tensor:
    """The ``(N, N)`` positive-weight matrix ``w`` (zero diagonal) used by the loss.

    Examples whose label is ``ignore_index`` (integer labels) or whose aspects are all
    ``ignore_index`` (``kind="aspects"``) get an all-zero row and column.
    """
    ignored = None
    if labels.ndim == 1:
        w = (labels.unsqueeze(1) == labels.unsqueeze(0)).to(dtype)
        if ignore_index is not None:
            ignored = labels == ignore_index
    else:
        if kind == "aspects" and ignore_index is not None:
            ignored = (labels == ignore_index).all(dim=1)
        inter, size = _set_overlap(labels, kind, absent_index, dtype, ignore_index if kind == "aspects" else None)
        union = size.unsqueeze(1) + size.unsqueeze(0) - inter
        if positives == "exact":
            w = ((inter == size.unsqueeze(1)) & (inter == size.unsqueeze(0))).to(dtype)
        else:
            w = torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(inter))
    if ignored is not None:
        keep = (~ignored).to(dtype)
        w = w * keep.unsqueeze(1) * keep.unsqueeze(0)
    return w.fill_diagonal_(0.0)


def _check_labels(labels, n: int, kind: str | None) -> str:
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a tensor, got {type(labels).__name__}")
    if labels.shape[:1] != (n,) or labels.ndim not in (1, 2):
        raise ValueError(f"labels must have shape ({n},) or ({n}, K), got {tuple(labels.shape)}")
    if kind is not None and kind not in LABEL_KINDS:
        raise ValueError(f"kind={kind!r} is not one of {list(LABEL_KINDS)}{did_you_mean(str(kind), LABEL_KINDS)}")
    if labels.ndim == 1:
        if kind in ("multilabel", "aspects"):
            raise ValueError(f"kind={kind!r} needs a label matrix (N, K), got shape {tuple(labels.shape)}")
        return "multiclass"
    if kind not in ("multilabel", "aspects"):
        raise ValueError(
            f"labels of shape {tuple(labels.shape)} need kind='multilabel' (multi-hot) or kind='aspects' "
            f"(per-aspect polarity indices), got kind={kind!r}"
        )
    return kind


def supervised_contrastive_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 0.1,
    kind: str | None = None,
    positives: str = "jaccard",
    absent_index: int | None = None,
    ignore_index: int | None = -100,
    normalize: bool = True,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Supervised contrastive loss over a batch of embeddings.

    Args:
        embeddings: ``(N, D)``; L2-normalised inside unless ``normalize=False``.
        labels: ``(N,)`` integer classes, or ``(N, C)`` multi-hot (``kind="multilabel"``), or
            ``(N, A)`` per-aspect polarity indices (``kind="aspects"``).
        temperature: ``> 0``.
        kind: task kind; required for 2-D labels.
        positives: ``"jaccard"`` (overlap-weighted) or ``"exact"`` (identical label sets) for 2-D labels.
        absent_index: for ``kind="aspects"``, the polarity index meaning "aspect absent" (not a label).
        ignore_index: integer label (or aspect entry) meaning "no label" (``None``: none); see the
            module docstring. Multi-hot labels have no ignore value.
        normalize: L2-normalise the embeddings first (cosine similarity, as Khosla et al. and
            pytorch-metric-learning do).
        reduction: ``"none"`` (per anchor, 0 when excluded) | ``"mean"`` (over anchors with a
            positive) | ``"sum"``.
        sample_weight: ``(N,)`` per-anchor weights.

    Shape:
        embeddings ``(N, D)``, labels ``(N,)`` or ``(N, K)`` -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> emb = torch.randn(6, 8); y = torch.tensor([0, 0, 1, 1, 2, 2])
        >>> supervised_contrastive_loss(emb, y).ndim
        0

    References:
        Khosla et al. "Supervised Contrastive Learning", NeurIPS 2020 (``L^sup_out``).
        Musgrave et al. pytorch-metric-learning ``SupConLoss`` (equal to 1e-5 relative for int labels).

    Differences from pytorch-metric-learning: PML returns 0 for a batch with no negative pair at
        all (every example the same class); here such anchors keep their term
        ``logsumexp_j s_ij - mean_j s_ij``, finite and bounded below by ``log(n-1)`` (reached when
        the anchor is equally similar to every other example).

    Relations:
        With one positive per anchor and ``temperature`` ``t`` it is InfoNCE / NT-Xent; for integer
        labels ``positives`` is irrelevant; ``"jaccard"`` and ``"exact"`` agree on single-label rows.
    """
    if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
        raise ValueError(f"embeddings must be a tensor of shape (N, D), got {getattr(embeddings, 'shape', None)}")
    check_reduction(reduction)
    tau = check_number(temperature, name="temperature", low=0.0, low_open=True)
    if positives not in POSITIVE_MODES:
        raise ValueError(
            f"positives={positives!r} is not one of {list(POSITIVE_MODES)}{did_you_mean(str(positives), POSITIVE_MODES)}"
        )
    n = embeddings.shape[0]
    kind = _check_labels(labels, n, kind)
    if absent_index is not None and kind != "aspects":
        raise ValueError("absent_index applies only to kind='aspects'")
    x = compute_dtype(embeddings)
    sw = check_sample_weight(sample_weight, n, x)
    labels = labels.to(x.device)
    w = None
    if labels.ndim == 2:
        w = positive_weights(labels, kind=kind, positives=positives, absent_index=absent_index,
                             ignore_index=ignore_index, dtype=x.dtype)
    aux = (labels if labels.ndim == 1 else None, w, _kept(labels, kind, ignore_index), sw)
    flags = {"normalize": bool(normalize), "reduction": reduction}
    if reduction == "none":
        return supcon_kernel(x, *aux, (1.0 / tau,), need_grad=False, **flags)[0]
    return _fused.run(supcon_kernel, x, aux, (1.0 / tau,), **flags)


class SupConLoss(LossModule):
    """Module form of :func:`supervised_contrastive_loss`; consumes ``embeddings``, ignores ``logits``.

    ``target`` of ``forward`` are the labels: ``(N,)`` classes (float 0/1 for binary is fine),
    ``(N, C)`` multi-hot, or for ``kind="aspects"`` the ``(N, A)`` matrix, also accepted flattened
    to ``(N*A,)`` as the training layer passes it (a sample weight repeated A times is taken once).
    """

    uses_embeddings = True
    count_unit = "anchors"

    def __init__(self, *, temperature: float = 0.1, kind: str | None = None, positives: str = "jaccard",
                 absent_index: int | None = None, ignore_index: int | None = -100, normalize: bool = True,
                 reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.temperature = check_number(temperature, name="temperature", low=0.0, low_open=True)
        if kind is not None and kind not in LABEL_KINDS:
            raise ValueError(f"kind={kind!r} is not one of {list(LABEL_KINDS)}{did_you_mean(str(kind), LABEL_KINDS)}")
        if positives not in POSITIVE_MODES:
            raise ValueError(
                f"positives={positives!r} is not one of {list(POSITIVE_MODES)}"
                f"{did_you_mean(str(positives), POSITIVE_MODES)}"
            )
        if absent_index is not None and kind != "aspects":
            raise ValueError("absent_index applies only to kind='aspects'")
        self.kind = kind
        self.positives = positives
        self.absent_index = absent_index
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise TypeError(f"ignore_index={ignore_index!r} must be an int or None")
        self.ignore_index = ignore_index
        self.normalize = bool(normalize)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        if embeddings is None:
            raise ValueError("SupConLoss needs embeddings= (the model's pooled or projected embeddings)")
        n = embeddings.shape[0]
        a = target.shape[0] // n if n else 1
        if self.kind == "aspects" and target.ndim == 1 and target.shape[0] == n * a:
            # the training layer flattens aspect targets to (N*A,) and repeats sample weights A times
            # (also for a single aspect, A = 1, and an empty batch)
            target = target.reshape(n, a)
            if sample_weight is not None and sample_weight.shape[0] == target.numel():
                sample_weight = sample_weight.reshape(n, a)[:, 0]
        kind = self.kind if target.ndim == 2 else None
        return supervised_contrastive_loss(
            embeddings, target, temperature=self.temperature, kind=kind, positives=self.positives,
            absent_index=self.absent_index, ignore_index=self.ignore_index, normalize=self.normalize,
            reduction=self._reduction(reduction),
            sample_weight=sample_weight,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, positives={self.positives!r}, reduction={self.reduction!r}"
