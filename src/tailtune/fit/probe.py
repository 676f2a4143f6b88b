"""The probe: time a few real training steps and evaluation batches of the encoder on the data.

What it measures feeds :class:`tailtune.fit.planner.CostModel`: seconds per training example
(forward, backward and an AdamW step at the recipe's batch size and ``max_length``, on randomly
drawn training texts, with the same length chunking as training), seconds per evaluated example
(length-sorted batches of twice the batch size, as training evaluates) and the time to load the
model. The first real run then corrects the whole model by one factor. On a CPU it also picks the
torch thread count the fit then uses (:func:`choose_threads`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from tailtune.models.truncation import tokenize_truncated
from tailtune.training.modeling import build_model

__all__ = ["probe_costs"]

#: timed training steps after one warm-up step (CPU; a GPU gets more, they are short)
CPU_STEPS = 3
GPU_STEPS = 10
#: bytes written per parameter by a checkpoint (weights + two AdamW moments, float32) and the
#: assumed write speed; the first real run corrects the estimate
CHECKPOINT_BYTES_PER_PARAM = 12
WRITE_BYTES_PER_S = 300e6
TOKENIZE_S_PER_TEXT = 1e-4


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed_train_steps(model, batches: list[dict], device: str, *, max_s: float) -> tuple[float, int]:
    """``(seconds, examples)`` of timed training steps. The first step pays one-off costs and is left
    out, unless it alone took half of ``max_s`` (a slow machine: then it is the measurement, an
    over-estimate); timing stops once ``max_s`` is spent."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    model.train()
    elapsed, examples = 0.0, 0
    for i, enc in enumerate(batches):
        _sync(device)
        start = time.perf_counter()
        loss = model(**enc).logits.float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        took = time.perf_counter() - start
        if i == 0 and took < max_s / 2 and len(batches) > 1:
            continue
        elapsed, examples = elapsed + took, examples + int(enc["input_ids"].shape[0])
        if elapsed >= max_s:
            break
    return elapsed, examples


def _timed_eval(model, batches: list[dict], device: str, *, max_s: float) -> tuple[float, int]:
    model.eval()
    elapsed, examples = 0.0, 0
    with torch.inference_mode():
        for enc in batches:
            _sync(device)
            start = time.perf_counter()
            model(**enc)
            _sync(device)
            elapsed, examples = elapsed + time.perf_counter() - start, examples + int(enc["input_ids"].shape[0])
            if elapsed >= max_s:
                break
    return elapsed, examples


#: texts per step of the thread comparison (short: the slow setting can be 10x slower on a busy CPU)
THREAD_PROBE_TEXTS = 8


def _one_step(model, enc, opt, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    model(**enc).logits.float().pow(2).mean().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - start


def choose_threads(model, enc: dict, device: str) -> dict[str, Any]:
    """On a CPU with several torch threads: time one training step with 1 thread and with the current
    count and keep the faster (the current one unless 1 thread is 10% faster). On a machine whose cores
    other processes also use, OpenMP threads that wait for each other can make 2 threads several times
    slower than 1 (measured on the shared 2-core development box); measured, not assumed."""
    current = torch.get_num_threads()
    if device.startswith("cuda") or current == 1:
        return {"threads": current, "compared": False}
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    try:
        torch.set_num_threads(1)
        _one_step(model, enc, opt, device)  # warm-up
        one = _one_step(model, enc, opt, device)
        torch.set_num_threads(current)
        many = _one_step(model, enc, opt, device)
    finally:
        torch.set_num_threads(current)
    return {"threads": 1 if one < 0.9 * many else current, "compared": True, "step_s_1": one,
            f"step_s_{current}": many}


def probe_costs(recipe, task, texts: list[str], *, batch_size: int, device: str, n_total: int, seed: int = 0,
                max_s: float = 10.0) -> dict[str, Any]:
    """Measure training and evaluation cost per example of ``recipe``'s model on ``texts`` (training texts).

    The model and tokenizer are built as training builds them
    (:func:`tailtune.training.modeling.build_model`: the recipe's ``model`` section, its
    ``train.length_chunks``) and the texts are tokenised as training tokenises them
    (:func:`tailtune.models.truncation.tokenize_truncated` at ``data.max_length``). ``max_s`` bounds
    the timed training steps (and half of it the evaluation batches), so a slow machine or model does
    not spend its budget on the probe. Returns the :class:`~tailtune.fit.planner.CostModel` fields
    plus what was measured.
    """
    steps = GPU_STEPS if device.startswith("cuda") else CPU_STEPS
    rng = np.random.default_rng(seed)
    n_pick = min(len(texts), batch_size * (steps + 1))
    picked = [texts[i] for i in rng.choice(len(texts), size=n_pick, replace=False)]
    del_first, _ = build_model(recipe, task)  # warms the imports and the file cache: costs a run never pays again
    del del_first
    t0 = time.perf_counter()
    model, tokenizer = build_model(recipe, task)
    model = model.to(device)
    load_s = time.perf_counter() - t0
    max_length = int(recipe.data.max_length)

    def encode(chunk):
        enc = tokenize_truncated(tokenizer, chunk, max_length=max_length, padding=True, return_tensors="pt")
        return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    threads = choose_threads(model, encode(picked[:THREAD_PROBE_TEXTS]), device)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads["threads"])
    try:
        train_batches = [encode(picked[i:i + batch_size]) for i in range(0, n_pick, batch_size)]
        train_time, timed = _timed_train_steps(model, train_batches, device, max_s=max_s)
        ordered = sorted(picked, key=len)
        eval_batches = [encode(ordered[i:i + 2 * batch_size]) for i in range(0, len(ordered), 2 * batch_size)]
        eval_time, evaluated = _timed_eval(model, eval_batches, device, max_s=max_s / 2)
    finally:
        torch.set_num_threads(previous)
    params = sum(p.numel() for p in model.parameters())
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    checkpoint_s = params * CHECKPOINT_BYTES_PER_PARAM / WRITE_BYTES_PER_S
    return {
        "train_s": train_time / max(timed, 1),
        "eval_s": eval_time / max(evaluated, 1),
        "fixed_s": 2 * load_s + 1.5 + checkpoint_s / 3 + n_total * TOKENIZE_S_PER_TEXT,
        "checkpoint_s": checkpoint_s,
        "load_s": load_s,
        "params": int(params),
        "examples_timed": timed,
        "texts": n_pick,
        "device": device,
        **threads,
    }
