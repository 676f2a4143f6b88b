"""``analyze``: load a dataset, compute its statistics and write ``analysis.json`` plus PNG plots.

The CLI command ``tailtune analyze`` only parses its flags, calls :func:`analyze` and
:func:`write_analysis`, and prints. Loading validates everything first, so bad input raises
:class:`tailtune.errors.DataError` before a single file is written.

The data statistics are :func:`tailtune.data.stats.compute_statistics`; the class weights each
``weighting.scheme`` would train with (``weights.training`` in ``analysis.json``) come from
:func:`tailtune.recipe.resolve.resolve_class_weights`, the same function training calls, so this
module sits in the diagnostics layer (above the recipe layer), not in ``data/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tailtune import __version__
from tailtune.data.kinds import task_kind
from tailtune.data.loading import LoadedData, load_dataset
from tailtune.data.plots import PLOTS
from tailtune.data.stats import compute_statistics
from tailtune.errors import DataError, TailtuneError
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.resolve import resolve_class_weights
from tailtune.recipe.schema import WeightingSection
from tailtune.utils.io import atomic_write_bytes, atomic_write_json
from tailtune.weighting import SCHEMES

ANALYSIS_FILE = "analysis.json"


def _load_tokenizer(name_or_path: str):
    if ("/" in name_or_path or "\\" in name_or_path or name_or_path.startswith(".")) and not Path(name_or_path).exists():
        if name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") != 1:  # not an `org/name` hub id
            raise DataError(f"--tokenizer {name_or_path}: no such folder; give a local model folder (with "
                            f"tokenizer files), a hub id when online, or omit --tokenizer for whitespace tokens")
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)  # never run a model's code
    except Exception as exc:  # missing folder, offline hub, ...
        raise DataError(f"could not load tokenizer {name_or_path!r}: {str(exc).splitlines()[0]}; give a local "
                        f"model folder (or go online for a hub id), or omit --tokenizer for whitespace tokens") from None


def analyze(source, *, task=None, text_column=None, label_column=None, label_sep=None, seed: int = 13,
            val_fraction: float = 0.1, empty_text: str = "error", tokenizer: str | None = None,
            cache_dir: str | None = None, unused_labels: str = "error") -> tuple[LoadedData, dict]:
    """Load ``source`` (see :func:`tailtune.data.load_dataset`) and compute its statistics.

    Returns ``(loaded, stats)``; ``stats`` is what ``analysis.json`` holds.
    """
    data = load_dataset(source, task=task, text_column=text_column, label_column=label_column,
                        label_sep=label_sep, seed=seed, val_fraction=val_fraction, empty_text=empty_text,
                        cache_dir=cache_dir, unused_labels=unused_labels)
    tok = _load_tokenizer(tokenizer) if tokenizer else None
    stats = compute_statistics(data, tokenizer=tok, tokenizer_name=tokenizer, seed=seed)
    stats["weights"]["training"] = training_weights(data.task, ClassCounts.from_targets(data.task, data.targets["train"]))
    stats = {"tailtune_version": __version__, "source": os.fspath(source), **stats}
    return data, stats


def training_weights(task, counts: ClassCounts) -> dict[str, dict]:
    """For each scheme, the class weights ``weighting: {scheme: S}`` (every other field at its
    default) trains with (:func:`tailtune.recipe.resolve.resolve_class_weights`): ``apply_to``,
    ``per_class`` and, for sigmoid tasks, ``pos_weight``; ``{"error": ...}`` when the scheme is
    undefined for these counts (a class without examples). Aspect tasks also get ``per_cell``: the
    weight of every ``aspect#class`` cell under ``weighting: {scheme: S, per_aspect: true}``."""
    out: dict[str, dict] = {}
    for scheme in SCHEMES:
        if scheme == "uniform":
            continue
        try:
            cw = resolve_class_weights(WeightingSection(scheme=scheme), task, counts)
        except TailtuneError as exc:
            out[scheme] = {"error": str(exc)}
        else:
            out[scheme] = {"apply_to": cw.apply_to, "per_class": cw.per_class, "pos_weight": cw.pos_weight}
        if task_kind(task).per_aspect and counts.cells is not None:
            try:
                cells = resolve_class_weights(WeightingSection(scheme=scheme, per_aspect=True), task, counts)
            except TailtuneError as exc:
                out[scheme]["per_cell_error"] = str(exc)
            else:
                out[scheme]["per_cell"] = cells.per_class
    return out


def write_analysis(stats: dict, out_dir: str | os.PathLike, *, plots: bool = True) -> list[Path]:
    """Write ``analysis.json`` and the PNG plots into ``out_dir`` (atomically); return the paths.

    The plots are rendered in memory first, so nothing is written if one of them fails.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a folder; choose a folder")
    rendered = {}
    if plots:
        for name, fn in PLOTS.items():
            png = fn(stats)
            if png is not None:
                rendered[name] = png
    written = [atomic_write_json(out / ANALYSIS_FILE, stats)]
    for name, png in rendered.items():
        written.append(atomic_write_bytes(out / name, png))
    return written
