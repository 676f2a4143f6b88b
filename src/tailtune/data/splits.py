"""Deterministic train/validation splits that keep the class balance.

Only the training data is ever split (when no validation split exists); a test split is never
touched.

- single-label (``binary``/``multiclass``): exact per-class stratification, vectorised: each class
  keeps ``round(n_c * val_fraction)`` examples for validation (at least one stays in train);
- ``multilabel`` and ``aspects``: iterative stratification (Sechidis et al., 2011) through the
  ``iterative-stratification`` package, on the multi-hot labels (aspects: one column per
  ``aspect#polarity`` cell, absent excluded).

References:
    Sechidis, Tsoumakas, Vlahavas. "On the Stratification of Multi-Label Data". ECML PKDD 2011.
"""

from __future__ import annotations

import numpy as np

from tailtune.data.task import TaskSpec


def _check_fraction(val_fraction: float) -> None:
    if not isinstance(val_fraction, (int, float)) or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be a float in (0, 1), got {val_fraction!r}")


def stratified_split(y: np.ndarray, *, val_fraction: float = 0.1, seed: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """Split single-label targets ``y`` (N,) into sorted (train_idx, val_idx), stratified per class.

    Each class c with n_c examples contributes ``min(round(n_c * val_fraction), n_c - 1)`` to
    validation, so every class keeps at least one training example. O(N log N), no Python loop per row.

    Example:
        >>> tr, va = stratified_split(np.array([0] * 90 + [1] * 10), val_fraction=0.1, seed=0)
        >>> len(tr), len(va), int((np.array([0] * 90 + [1] * 10)[va] == 1).sum())
        (90, 10, 1)
    """
    _check_fraction(val_fraction)
    y = np.asarray(y)
    n = y.shape[0]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    order = perm[np.argsort(y[perm], kind="stable")]  # grouped by class, random within class
    classes, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    n_val = np.minimum(np.rint(counts * float(val_fraction)).astype(np.int64), counts - 1)
    rank = np.arange(n) - np.repeat(starts, counts)
    is_val = np.zeros(n, dtype=bool)
    is_val[order] = rank < np.repeat(n_val, counts)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def multilabel_split(y: np.ndarray, *, val_fraction: float = 0.1, seed: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """Iterative stratification of a multi-hot matrix ``y`` (N, C) into sorted (train_idx, val_idx).

    Deterministic for a given ``seed``. Rows with no label are split at random in proportion.
    """
    _check_fraction(val_fraction)
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit  # loads scikit-learn (~1 s): on use

    y = (np.asarray(y) > 0).astype(np.int64).reshape(len(y), -1)
    n = y.shape[0]
    if n < 2:  # nothing to hold out; the caller reports the too-small data set
        return np.arange(n), np.zeros(0, dtype=np.int64)
    if y.shape[1] == 1:  # the package refuses a single column; [y, 1 - y] stratifies the same way
        y = np.hstack([y, 1 - y])
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=float(val_fraction), random_state=seed)
    train_idx, val_idx = next(splitter.split(np.zeros((n, 1)), y))
    return np.sort(train_idx), np.sort(val_idx)


def aspect_indicator(y: np.ndarray, num_polarities: int) -> np.ndarray:
    """(N, A) aspect targets -> (N, A * P) 0/1 matrix of the present ``aspect#polarity`` cells."""
    y = np.asarray(y)
    n, a = y.shape
    out = np.zeros((n, a * num_polarities), dtype=np.int8)
    rows, cols = np.nonzero(y < num_polarities)
    out[rows, cols * num_polarities + y[rows, cols]] = 1
    return out


def split_train(encoded: np.ndarray, task: TaskSpec, *, val_fraction: float = 0.1, seed: int = 13):
    """(train_idx, val_idx) for the task kind: stratified (single-label) or iterative (multi-label, aspects)."""
    kind = task.kind_info
    if kind.single_label:
        return stratified_split(encoded, val_fraction=val_fraction, seed=seed)
    if kind.per_aspect:
        return multilabel_split(aspect_indicator(encoded, len(task.polarities)), val_fraction=val_fraction, seed=seed)
    return multilabel_split(encoded, val_fraction=val_fraction, seed=seed)
