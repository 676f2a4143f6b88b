"""Batches for training and evaluation: pad the tokenised texts, stack the targets.

:class:`LabelCollator` pads with numpy (one array per model input, filled row by row) instead of
the tokenizer's ``pad`` (which walks the batch through Python several times and built about a
third of a micro-encoder step's host time, benchmarks/step_overhead.py). The tensors it returns
equal ``DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)``'s for the same features
(tests/training/test_collate.py), on either padding side.

Widths: by default each batch is padded to its longest text rounded up to ``pad_to_multiple_of``;
with ``buckets`` (``train.pad_buckets``, :func:`tailtune.training.speed.bucket_widths`) to the
smallest listed width that holds it, so a compiled step sees a few shapes. Padded positions are
masked by the attention mask and by the masked mean pooling, so outputs are equal to rounding.

Training data (``train.fast_step``, default on): :class:`TokenTable` holds the tokenised training
set once as flat numpy arrays (every row's tokens end to end, with offsets) and
:class:`TableCollator` builds each batch with a few vectorised gathers, in place of the data set's
per-batch Arrow-to-Python conversion and the collator's row-by-row fill (together the largest host
cost of a micro-encoder step outside the model, benchmarks/step_overhead.py). Its batches equal
:class:`LabelCollator`'s for the same rows, key for key and bit for bit (tests/training/test_collate.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from tailtune.data.kinds import TaskKind, task_kind
from tailtune.models.chunking import PAD_MULTIPLE, round_up
from tailtune.training.speed import bucket_widths, speed_options

__all__ = ["LabelCollator", "TableCollator", "TokenTable", "build_collator", "MODEL_INPUTS", "LABEL_KEY",
           "WEIGHT_KEY"]

LABEL_KEY = "labels"
WEIGHT_KEY = "sample_weight"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class LabelCollator:
    """Pad model inputs and stack targets with the task's dtype.

    Args:
        tokenizer: supplies ``pad_token_id``, ``pad_token_type_id`` and ``padding_side``.
        kind: the task kind (a name or a :class:`~tailtune.data.TaskKind`); targets are stacked in its
            ``target_dtype`` (``torch.float32`` for ``multilabel``, else ``torch.long``).
        pad_to_multiple_of: round each batch's width up to a multiple of this (``None``: no rounding).
        buckets: ascending widths; a batch is padded to the smallest that holds its longest text
            (a longer batch falls back to the rounded width).

    Example:
        >>> from types import SimpleNamespace
        >>> tok = SimpleNamespace(pad_token_id=0, pad_token_type_id=0, padding_side="right")
        >>> batch = LabelCollator(tok, kind="multiclass")([{"input_ids": [5, 6, 7], "labels": 1},
        ...                                                {"input_ids": [5], "labels": 0}])
        >>> batch["input_ids"].shape, batch["labels"].tolist()
        (torch.Size([2, 8]), [1, 0])
    """

    def __init__(self, tokenizer, *, kind: str | TaskKind, pad_to_multiple_of: int | None = PAD_MULTIPLE,
                 buckets: Sequence[int] | None = None):
        pad_id = getattr(tokenizer, "pad_token_id", None)
        if pad_id is None:
            raise ValueError("the tokenizer has no pad token (pad_token_id is None); set one, e.g. tokenizer.pad_token = tokenizer.eos_token")
        side = getattr(tokenizer, "padding_side", "right")
        if side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {side!r}")
        info = task_kind(kind)
        self.kind = info.name
        self.left = side == "left"
        self.multiple = int(pad_to_multiple_of or 1)
        self.buckets = tuple(sorted(int(b) for b in buckets)) if buckets else ()
        self.pad_values = {"input_ids": int(pad_id), "attention_mask": 0,
                           "token_type_ids": int(getattr(tokenizer, "pad_token_type_id", 0) or 0)}
        self.target_dtype = getattr(torch, info.target_dtype)

    def width(self, longest: int) -> int:
        """The padded width of a batch whose longest text has ``longest`` tokens."""
        for w in self.buckets:
            if w >= longest:
                return w
        return round_up(max(int(longest), 1), self.multiple)

    def pad(self, rows: list, width: int, value: int) -> torch.Tensor:
        """``rows`` (lists of ints) as one ``(N, width)`` int64 tensor padded with ``value``."""
        out = np.full((len(rows), width), value, dtype=np.int64)
        if self.left:
            for i, row in enumerate(rows):
                if len(row):
                    out[i, width - len(row):] = row
        else:
            for i, row in enumerate(rows):
                out[i, : len(row)] = row
        return torch.from_numpy(out)

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        first = features[0]
        keys = [k for k in MODEL_INPUTS if k in first]
        ids = [f["input_ids"] for f in features]
        width = self.width(max(len(r) for r in ids))
        batch = {k: self.pad(ids if k == "input_ids" else [f[k] for f in features], width, self.pad_values[k])
                 for k in keys}
        if LABEL_KEY in first:
            batch[LABEL_KEY] = torch.as_tensor(np.asarray([f[LABEL_KEY] for f in features]), dtype=self.target_dtype)
        if WEIGHT_KEY in first:
            batch[WEIGHT_KEY] = torch.as_tensor(np.asarray([f[WEIGHT_KEY] for f in features], dtype=np.float32))
        return batch


#: the most tokens a :class:`TokenTable` holds (beyond it the data set's own row reads are used)
TABLE_MAX_TOKENS = 1 << 28


class TokenTable(torch.utils.data.Dataset):
    """A tokenised data set as flat numpy arrays, for :class:`TableCollator`.

    Each model input is kept as one array of every row's values end to end (``offsets[i]`` is
    where row ``i`` starts, ``lengths[i]`` its length), in the narrowest integer type that holds
    it, or as a single number when it is the same for every token (an attention mask of ones,
    token types of zeros); targets and sample weights as arrays with one row per example.
    ``__getitems__`` hands the DataLoader's indices to the collator unchanged.

    Build it with :meth:`build`, which answers ``None`` where the data do not fit this form
    (every model input as long as ``input_ids`` in each row, numeric targets of one shape).
    """

    def __init__(self, source, *, lengths: np.ndarray, inputs: dict, targets: dict):
        self.source = source
        self.lengths = lengths
        self.offsets = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=self.offsets[1:])
        self.inputs = inputs  # key -> flat array, or a Python int when constant
        self.targets = targets  # key -> array with one row per example

    @classmethod
    def build(cls, dataset, *, max_tokens: int = TABLE_MAX_TOKENS) -> TokenTable | None:
        """The table of a ``datasets.Dataset`` (read through Arrow, in its row order), or ``None``."""
        columns = list(getattr(dataset, "column_names", None) or ())
        if "input_ids" not in columns or len(dataset) == 0 or not hasattr(dataset, "with_format"):
            return None
        table = _arrow_rows(dataset)
        ids = _list_column(table, "input_ids")
        if ids is None:
            return None
        lengths = ids.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
        if int(lengths.sum()) > max_tokens:
            return None
        inputs = {}
        for key in (k for k in MODEL_INPUTS if k in columns):
            col = ids if key == "input_ids" else _list_column(table, key)
            if col is None or not np.array_equal(col.value_lengths().to_numpy(zero_copy_only=False), lengths):
                return None  # an input not as long as input_ids in some row
            inputs[key] = _narrow(col.flatten().to_numpy(zero_copy_only=False).astype(np.int64))
        targets = {}
        for key, dtype in ((LABEL_KEY, None), (WEIGHT_KEY, np.float32)):
            if key in columns:
                try:  # the Python values, converted as the collator converts a batch of them
                    values = np.asarray(_combined(table.column(key)).to_pylist(), dtype=dtype)
                except (TypeError, ValueError):
                    return None
                if values.dtype.kind not in "biuf" or values.shape[:1] != lengths.shape:
                    return None
                targets[key] = values
        return cls(dataset, lengths=lengths, inputs=inputs, targets=targets)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitems__(self, indices):
        return indices

    def __getitem__(self, index):
        return [index]


def _arrow_rows(dataset):
    """The rows of a ``datasets.Dataset`` as one pyarrow Table, in the data set's row order: its
    backing table with its row mapping (after ``select``/``shuffle``) applied by one pyarrow ``take``
    (the data set's own ``[:]`` gathers a mapped table row by row: seconds for 100k rows)."""
    import pyarrow as pa

    data = getattr(dataset, "data", None)
    table = getattr(data, "table", data)
    indices = getattr(dataset, "_indices", None)  # datasets' row mapping (None: the rows as stored)
    mapping = getattr(indices, "table", indices)
    if not isinstance(table, pa.Table) or (mapping is not None and not isinstance(mapping, pa.Table)):
        return dataset.with_format("arrow")[:]
    return table if mapping is None else table.take(mapping.column(0))


def _combined(column):
    """A pyarrow column as one array (a chunked column's chunks joined)."""
    return column.combine_chunks() if hasattr(column, "combine_chunks") else column


def _list_column(table, key: str):
    """Column ``key`` of a pyarrow Table as one list array of integers without nulls, or ``None``."""
    import pyarrow as pa

    col = _combined(table.column(key))
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)) or col.null_count:
        return None
    if not pa.types.is_integer(col.type.value_type) or col.flatten().null_count:
        return None
    return col


def _narrow(flat: np.ndarray):
    """``flat`` as one int when constant, else in the narrowest of int8/int16/int32/int64 holding it."""
    if flat.size and flat.min() == flat.max():
        return int(flat[0])
    lo, hi = (int(flat.min()), int(flat.max())) if flat.size else (0, 0)
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return flat.astype(dtype)
    return flat


class TableCollator:
    """The batches of ``collator`` (a :class:`LabelCollator`) for rows of a :class:`TokenTable`,
    built from the indices with vectorised gathers: same keys, widths, padding side, values and dtypes."""

    def __init__(self, table: TokenTable, collator: LabelCollator):
        self.table = table
        self.collator = collator

    def __call__(self, indices) -> dict[str, torch.Tensor]:
        table, col = self.table, self.collator
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        lengths = table.lengths[idx]
        width = col.width(int(lengths.max()))
        pos = np.arange(width, dtype=np.int64)[None, :]
        if col.left:
            pos = pos - (width - lengths)[:, None]
        valid = (pos >= 0) & (pos < lengths[:, None])
        where = np.where(valid, table.offsets[idx][:, None] + pos, 0)
        batch = {}
        for key, values in table.inputs.items():
            taken = values if isinstance(values, int) else values.take(where).astype(np.int64)
            batch[key] = torch.from_numpy(np.where(valid, taken, np.int64(col.pad_values[key])).astype(np.int64, copy=False))
        if LABEL_KEY in table.targets:
            batch[LABEL_KEY] = torch.as_tensor(table.targets[LABEL_KEY][idx], dtype=col.target_dtype)
        if WEIGHT_KEY in table.targets:
            batch[WEIGHT_KEY] = torch.from_numpy(table.targets[WEIGHT_KEY][idx])
        return batch


def build_collator(tokenizer, kind: str | TaskKind, train_cfg=None, *, max_length: int | None = None) -> LabelCollator:
    """The run's collator: padding to a multiple of 8, or to :func:`~tailtune.training.speed.bucket_widths`
    of ``max_length`` when the ``train`` section's ``pad_buckets`` resolves on (it follows ``compile``)."""
    opts = speed_options(train_cfg)  # a mapping or the recipe's train section
    buckets = bucket_widths(max_length) if opts.pad_buckets and max_length else None
    return LabelCollator(tokenizer, kind=kind, pad_to_multiple_of=PAD_MULTIPLE, buckets=buckets)
