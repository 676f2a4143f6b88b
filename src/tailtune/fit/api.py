"""``fit(data, output=...)``: one call from a labelled data set to the best defensible model."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers

from tailtune.errors import RecipeError
from tailtune.experiments.embeddings import default_cache_dir
from tailtune.fit.analysis import carve_test, data_digest, load_input, model_info
from tailtune.fit.context import FitContext
from tailtune.fit.options import DEFAULT_MODEL, Budget, FitOptions, parse_budget
from tailtune.fit.progress import FitProgress
from tailtune.fit.result import FitResult
from tailtune.fit.stages import run_stages
from tailtune.fit.state import open_state
from tailtune.utils.paths import check_writable
from tailtune.utils.runlock import run_dir_lock

__all__ = ["fit", "resolve_device"]


def resolve_device(device: str) -> tuple[str, bool]:
    """``(device, bf16 supported)`` for ``auto``/``cpu``/``cuda``. ``cpu`` hides the GPUs from this
    process (effective while CUDA is not yet initialised, as in a fresh ``tailtune fit``)."""
    if device == "cpu":
        if not torch.cuda.is_initialized():
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return "cpu", False
    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise RecipeError("--device cuda: no CUDA GPU is visible to this process. Fix: --device auto (or cpu)")
    if available:
        return "cuda", bool(torch.cuda.is_bf16_supported())
    return "cpu", False


@contextlib.contextmanager
def quiet_libraries():
    """No progress bars or info logs from datasets/transformers inside a fit (it has its own line)."""
    was_enabled = not datasets.are_progress_bars_disabled()
    bars = transformers.logging.is_progress_bar_enabled()
    verbosity = transformers.logging.get_verbosity()
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.logging.enable_progress_bar()


def fit(
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    budget: str | float = "30m",
    seeds: int = 3,
    device: str = "auto",
    task: Any = None,
    text_column: str | None = None,
    label_column: str | None = None,
    label_sep: str | None = None,
    empty_text: str = "error",
    unused_labels: str = "error",
    seed: int = 13,
    test_fraction: float = 0.15,
    finalists: int = 2,
    max_epochs: int | None = None,
    restart: bool = False,
    cache_dir: str | os.PathLike | None = None,
    show_progress: bool = False,
    console: Any = None,
    clock: Callable[[], float] | None = None,
) -> FitResult:
    """Analyse ``data``, propose candidate recipes by rules, screen them, fine-tune the best over seeds
    within ``budget``, decide with paired tests on validation, finish (ensemble, bagged rule,
    temperature) and score the test split once. Writes the run-like folder ``output``.

    Args:
        data: what :func:`tailtune.data.load_dataset` reads (a folder of train/validation/test files, a
            file, a saved dataset). No test split: one is carved (stratified, seeded) and said so.
        output: the fit folder; running the same call again continues a killed fit.
        model: encoder folder or hub id (default all-MiniLM-L6-v2, the packaged copy).
        budget: ``"30m"``, ``"1h"``, ``"90s"`` or seconds: the whole fit ends within it (+10% at most).
        seeds: seeds per fine-tuned candidate (the planner may use fewer; 2 are needed to measure noise).
        device: ``auto`` (a GPU when visible), ``cpu`` or ``cuda``.
        task, text_column, label_column, label_sep, empty_text, unused_labels: data options of ``load_dataset``
            (``unused_labels="drop"``: leave out declared labels without training examples).
        seed: the first training seed (then ``seed + 1``, ...) and the seed of every split carved.
        test_fraction: share of train held out as test when the data has no test split.
        finalists: screened challengers kept for fine-tuning (besides the baseline).
        max_epochs: caps the epochs the rules choose (the planner may still lower them).
        restart: delete an earlier fit in ``output`` and start over.
        cache_dir: the screening embeddings cache (default ``~/.cache/tailtune/embeddings``).
        show_progress: one rich progress line (the CLI's default; off for library calls).
        clock: a monotonic clock in seconds (tests inject a fake one).

    Returns:
        :class:`~tailtune.fit.result.FitResult` (``.winner``, ``.decision``, ``.scores``, ``.predict(texts)``).

    Raises:
        DataError: bad data, or a validation split too small to decide on (nothing is written, not even
            ``output``).
        NotWritable: ``output`` or ``cache_dir`` cannot be written (before anything is).
        RunDirError: ``output`` holds something else, or a fit of other data/options (``restart=True``);
            :class:`~tailtune.utils.runlock.RunDirBusy` while another process fits into ``output``.
        BudgetTooSmall: not even one short baseline run fits in the budget (the message names the minimum).

    Example:
        >>> result = fit("../shared/data/sms_spam", output="runs/sms", budget="20m")  # doctest: +SKIP
        >>> result.winner, result.scores["test"]  # doctest: +SKIP
    """
    opts = FitOptions(data=data, output=Path(output), model=model or DEFAULT_MODEL, budget_s=parse_budget(budget),
                      seeds=seeds, device=device, task=task, text_column=text_column, label_column=label_column,
                      label_sep=label_sep, empty_text=empty_text, unused_labels=unused_labels, seed=seed,
                      test_fraction=test_fraction, finalists=finalists, max_epochs=max_epochs, restart=restart,
                      cache_dir=os.fspath(cache_dir) if cache_dir else None)
    resolved, bf16 = resolve_device(opts.device)
    threads = torch.get_num_threads()  # the probe may choose fewer for this fit
    with quiet_libraries():
        loaded = load_input(opts)  # bad data stops here: nothing written yet
        digest = data_digest(loaded)
        model_info(opts.model)  # a bad model name too
        loaded, _ = carve_test(loaded, fraction=opts.test_fraction, seed=opts.seed)
        check_writable(opts.output, option="-o/--output")  # before anything is written
        check_writable(opts.cache_dir or default_cache_dir(), option="--cache-dir")  # the screen writes there
        # one writer per fit folder for the whole command (a second `tailtune fit -o DIR` exits 2 naming
        # this one; the kernel drops the lock when this process dies, even by kill -9)
        with run_dir_lock(opts.output):
            state = open_state(opts.output, {"data": digest, "options": opts.fingerprint()}, opts.to_dict(),
                               restart=opts.restart)
            budget_clock = Budget(opts.budget_s, spent_s=state.spent_s, clock=clock)
            progress = FitProgress(budget_clock, enabled=show_progress, console=console).start()
            ctx = FitContext(opts=opts, loaded=loaded, state=state, budget=budget_clock, progress=progress,
                             device=resolved, bf16=bf16)
            try:
                run_stages(ctx)
            finally:
                progress.close()
                torch.set_num_threads(threads)
    return FitResult.from_dir(opts.output)
