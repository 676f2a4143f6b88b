"""Minimal private stand-ins for the loss registry and the metrics, used ONLY while those modules
have not landed (``install`` patches nothing that already exists). They follow the contracts of
docs/architecture.md closely enough to drive the Trainer integration."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class _CE(nn.Module):
    uses_embeddings = False
    reduction = "mean"

    def __init__(self, kind, weight=None, alpha=None, pos_weight=None, **_):
        super().__init__()
        self.kind = kind
        w = weight if weight is not None else alpha
        self.register_buffer("w", None if w is None else torch.as_tensor(w, dtype=torch.float32))
        self.register_buffer("pw", None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32))

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        red = reduction or self.reduction
        if self.kind in ("binary", "multilabel"):
            loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pw, reduction="none")
            if sample_weight is not None:
                loss = loss * (sample_weight if loss.ndim == 1 else sample_weight[:, None])
            return loss.sum() if red == "sum" else loss.mean()
        w = None if self.kind != "multiclass" and self.w is None else self.w
        loss = F.cross_entropy(logits, target, weight=w, reduction="none")
        if sample_weight is not None:
            loss = loss * sample_weight
        return loss.sum() if red == "sum" else loss.mean()


class _Composite(nn.Module):
    def __init__(self, parts, *, auto_balance=False):
        super().__init__()
        self.modules_ = nn.ModuleDict({k: m for k, (_, m) in parts.items()})
        self.weights = {k: float(w) for k, (w, _) in parts.items()}
        self.log_vars = nn.Parameter(torch.zeros(len(parts))) if auto_balance else None

    def forward(self, logits, target, *, embeddings=None, sample_weight=None, progress=None, num_items_in_batch=None):
        total, parts = 0.0, {}
        for i, (name, module) in enumerate(self.modules_.items()):
            if num_items_in_batch is not None:
                value = module(logits, target, sample_weight=sample_weight, reduction="sum") / num_items_in_batch
            else:
                value = module(logits, target, sample_weight=sample_weight)
            parts[name] = value.detach()
            if self.log_vars is not None:
                total = total + torch.exp(-self.log_vars[i]) * value + self.log_vars[i]
            else:
                total = total + self.weights[name] * value
        return total, parts


def _decode(scores, task, **_):
    s = np.asarray(scores)
    if task.kind == "binary":
        return (s.reshape(-1) > 0).astype(int)
    if task.kind == "multiclass":
        return s.argmax(1)
    if task.kind == "multilabel":
        return (s > 0).astype(int)
    return s.reshape(len(s), len(task.labels), -1).argmax(-1)


def _report(y_true, y_pred, task, *, y_score=None):
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    names = list(task.aspect_classes) if task.kind == "aspects" else list(task.labels)
    if task.kind == "aspects":
        yt, yp = yt.reshape(-1), yp.reshape(-1)
    labels = list(range(len(names))) if task.kind != "multilabel" else None
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(yt, yp)),
        "macro_f1": float(f1_score(yt, yp, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(yt, yp, average="micro", zero_division=0)),
        "per_class": {
            n: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, n in enumerate(names)
        },
    }


def install(monkeypatch=None) -> list[str]:
    """Patch in the stand-ins that are missing; return their names."""
    import tailtune.losses as losses
    import tailtune.metrics as metrics

    def put(mod, name, value):
        if monkeypatch is not None:
            monkeypatch.setattr(mod, name, value, raising=False)
        else:
            setattr(mod, name, value)

    done = []
    if not hasattr(losses, "get"):
        put(losses, "get", lambda name, *, kind=None, **params: _CE(kind, **params))
        put(losses, "available", lambda kind=None: ["ce", "focal", "bce"])
        put(losses, "CompositeLoss", _Composite)
        done.append("losses")
    if not hasattr(metrics, "classification_report"):
        put(metrics, "decode", _decode)
        put(metrics, "classification_report", _report)
        done.append("metrics")
    return done
