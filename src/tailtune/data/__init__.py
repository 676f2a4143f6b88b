"""tailtune.data: TaskSpec, loaders (CSV/TSV/JSONL/JSON/Parquet/``datasets``), validation, splits, statistics.

Contracts: docs/architecture.md ("TaskSpec", "Loaded data"); user guide: docs/data.md.
"""

from tailtune.data.loading import LoadedData, load_dataset
from tailtune.data.splits import multilabel_split, split_train, stratified_split
from tailtune.data.task import ABSENT, KINDS, TaskSpec

__all__ = [
    "ABSENT",
    "KINDS",
    "LoadedData",
    "TaskSpec",
    "load_dataset",
    "multilabel_split",
    "split_train",
    "stratified_split",
]
