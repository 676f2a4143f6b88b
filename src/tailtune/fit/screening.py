"""The screening stage: rank the candidates cheaply on cached frozen-encoder embeddings, on
validation only, and keep the top ones for fine-tuning.

It calls :func:`tailtune.experiments.screen.screen` with ``score_split="validation"`` (the data
folder holds no test split at all) and ``rank_by="tuned_macro_f1"``: every head is scored with
the default rule and with the tuned rule cross-fitted on validation halves, and compared with the
baseline by the paired tests of :mod:`tailtune.experiments.stats`. The finalists are the
:data:`FINALISTS` best-ranked candidates whose screening verdict against the baseline is not a
regression; each dropped candidate is recorded with why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tailtune.experiments.screen import screen
from tailtune.fit.analysis import stored_task

__all__ = ["SCREEN_SEEDS", "SCREEN_N_RESAMPLES", "run_screening", "screen_cost"]

#: seeds per screened candidate (at most; fewer when fewer are asked for)
SCREEN_SEEDS = 3
SCREEN_N_RESAMPLES = 1000
#: seconds per training text per head (CPU, hidden 256, <= 50 epochs with early stopping); measured on
#: tweeteval_emotion: 3,257 texts, about 0.6 s a head
HEAD_S_PER_TEXT = 2e-4


def screen_cost(n_train: int, n_val: int, *, n_candidates: int, seeds: int, eval_s: float, tune_s: float) -> float:
    """Estimated seconds of a screen: embed every text once, then one head + two cross-fitted rule
    fits per candidate and seed."""
    heads = n_candidates * seeds * (0.3 + n_train * HEAD_S_PER_TEXT + 2 * tune_s)
    return (n_train + n_val) * eval_s + heads


def _entry(r: dict, names: dict[str, str]) -> dict[str, Any]:
    name = names.get(r["spec"], r["spec"])
    if r.get("status") != "ok":
        return {"name": name, "status": "skipped", "reason": r.get("reason")}
    vs = (r.get("vs_baseline") or {}).get("tuned") or {}
    return {"name": name, "status": "ok", "rank": r.get("rank"), "tuned": r["tuned"]["macro_f1"],
            "default": r["default"]["macro_f1"], "vs_baseline": {k: vs.get(k) for k in
                                                                   ("diff", "bootstrap_ci", "permutation_p",
                                                                    "seed_welch_ci", "verdict")} if vs else None}


def _finalists(ranking: list[dict], baseline: str, k: int) -> tuple[list[str], list[dict]]:
    keep, dropped = [], []
    for e in ranking:
        if e["name"] == baseline:
            continue
        verdict = (e.get("vs_baseline") or {}).get("verdict")
        if e["status"] != "ok":
            dropped.append({"name": e["name"], "why": f"could not be screened: {e.get('reason')}"})
        elif verdict == "regression":
            dropped.append({"name": e["name"], "why": "screening: worse than the baseline outside the noise"})
        elif len(keep) < k:
            keep.append(e["name"])
        else:
            dropped.append({"name": e["name"], "why": f"screening rank {e['rank']}: below the top {k}"})
    return keep, dropped


def run_screening(data_dir: Path, out: Path, templates: dict[str, Path], *, baseline: str, task, model: str,
                  seeds: int, seed: int, max_length: int, finalists: int, cache_dir: str | None) -> dict[str, Any]:
    """Screen ``templates`` (candidate name -> recipe file) and pick the finalists."""
    specs = [str(p) for p in templates.values()]
    names = {str(p): n for n, p in templates.items()}
    res = screen(data_dir, recipes=specs, seeds=seeds, seed=seed, model=model, out=out, max_length=max_length,
                 cache_dir=cache_dir, baseline=str(templates[baseline]), rank_by="tuned_macro_f1",
                 n_resamples=SCREEN_N_RESAMPLES, show_progress=False, score_split="validation", task=stored_task(task))
    ranking = [_entry(r, names) for r in res.recipes]
    keep, dropped = _finalists(ranking, baseline, finalists)
    return {"ranking": ranking, "finalists": keep, "dropped": dropped, "seeds": res.seeds,
            "embedding": {k: res.embedding.get(k) for k in ("cache_hit", "seconds", "max_length", "counts")},
            "timing": res.timing, "screen_json": str(out / "screen.json")}
