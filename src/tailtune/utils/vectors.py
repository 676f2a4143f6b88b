"""One validation of a per-class vector (class weights, counts, priors): the one owner of its rules
and messages, called by ``losses._base.as_weight_tensor`` and ``weighting.classes`` alike."""

from __future__ import annotations

import torch

__all__ = ["as_class_vector"]


def as_class_vector(values, *, name: str, dtype: torch.dtype = torch.float32, nonnegative: bool = True,
                    device: str | torch.device | None = None) -> torch.Tensor:
    """A sequence or a tensor -> a detached 1-D ``dtype`` tensor with one finite value per class
    (non-negative unless ``nonnegative=False``), on ``device`` (a tensor's own device if ``None``).

    Raises ``TypeError`` for something that is not numbers and ``ValueError`` naming ``name`` for a
    wrong shape, a non-finite or a negative value."""
    if isinstance(values, torch.Tensor):
        t = values.detach().to(device=device, dtype=dtype)
    else:
        try:
            t = torch.as_tensor(values, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be a sequence of numbers or a tensor, got {type(values).__name__}") from exc
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence (one value per class), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    if nonnegative and (t < 0).any():
        raise ValueError(f"{name} must be non-negative, got {t.tolist()}")
    return t
