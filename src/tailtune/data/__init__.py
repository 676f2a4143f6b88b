"""tailtune.data: TaskSpec, loaders (CSV/TSV/JSONL/JSON/Parquet/``datasets``), validation, splits, statistics.

Contracts: docs/architecture.md ("TaskSpec", "Loaded data"); user guide: docs/data.md.
The task kinds and :class:`TaskSpec` import without ``datasets``/pyarrow; the loaders and splits
load on first use (so the recipe schema and the CLI start fast).
"""

from tailtune.data.kinds import TASK_KINDS, TaskKind, task_kind
from tailtune.data.task import ABSENT, KINDS, TaskSpec

__all__ = [
    "ABSENT",
    "KINDS",
    "LoadedData",
    "TASK_KINDS",
    "TaskKind",
    "TaskSpec",
    "load_dataset",
    "multilabel_split",
    "split_train",
    "stratified_split",
    "task_kind",
]

_LAZY = {
    "LoadedData": "tailtune.data.loading",
    "load_dataset": "tailtune.data.loading",
    "multilabel_split": "tailtune.data.splits",
    "split_train": "tailtune.data.splits",
    "stratified_split": "tailtune.data.splits",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tailtune.data' has no attribute {name!r}")
