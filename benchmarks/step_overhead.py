"""Host overhead of one optimiser step: tailtune's training step against the vanilla Trainer (issue 15).

A **micro encoder** (random-weight BERT, hidden 8, 1 head, 2 layers, a 305-token vocabulary, dropout off)
makes the arithmetic of a step negligible, so the time of a step is the host's work: Python,
the Trainer's bookkeeping, kernel launches, synchronisations and data loading. That is what
bounds a practitioner-sized model (MiniLM at batch 32) on a GPU, where the matrix units wait for
the host; on CPU this benchmark is the proxy for it.

Every arm trains the same synthetic multi-class data (4 imbalanced classes, log-normal lengths,
median 12 words, cut at 32 tokens) for one epoch of ``--steps`` optimiser steps at the same batch size,
seed, learning rate and optimiser (fused AdamW, as the vanilla Trainer picks), with gradient
clipping at 1.0, in one process:

- ``vanilla`` (the reference): ``transformers.Trainer`` + ``BertForSequenceClassification`` +
  ``DataCollatorWithPadding``, its defaults otherwise;
- ``floor``: a hand-written minimal loop (no trainer) over the vanilla arm's model, data, optimiser,
  schedule and clipping, with every batch padded before the loop: forward, backward, clip, step,
  ``zero_grad``. What the eager model costs by itself; ``ratio_vs_floor`` says how far each arm is
  from it (not an agreement check: its sampling order is its own);
- ``tailtune-trainer-loop``: tailtune with ``train.fast_step=false``: the Trainer's own per-step
  loop and the tokenizer's padding (tailtune's step before issue 15);
- ``tailtune``: the default path (tailtune's step loop, training batches gathered from the token
  table, ``training/collate.py``);
- ``tailtune-rowwise``: the default path with the batches read row by row from the data set and
  padded by the numpy collator (the data path before the token table; same batches, same losses);
- the loss configurations on the default path: ``weighted-ce``, ``focal``, ``focal+supcon``,
  ``sample-weights``;
- the speed levers: ``buckets`` (pad to a few widths), ``compile`` (the encoder's layers compiled
  with ``torch.compile``, one compilation for all, buckets on), ``compile-model`` (the whole
  forward as one graph), ``compile-step`` (the forward and the loss as one graph), ``cuda-graphs`` / ``cuda-graphs-model`` / ``cuda-graphs-step`` (the same with CUDA graphs; CUDA
  only) and ``group-by-length`` (changes which texts share a batch, so it changes results:
  reported apart).

Measured per arm: the median time between consecutive optimiser steps after ``--warm`` steps
(compilation falls in the first step: the median ignores it, ``compile_s`` reports it: the
largest over the repeats, as later repeats in the same process reuse dynamo's graphs), on CPU
as the process's CPU time (one intra-op thread; on a shared machine other processes inflate wall
time but not this; the wall-clock median is recorded too), on CUDA as wall time; the ratio of that median to vanilla's; and the host
synchronisations per step, counted over the 5 steps after the warm-up (which are then left out
of the timing, as the counting costs time): on CPU by counting ``Tensor.item`` / ``tolist`` / ``cpu`` / ``numpy`` / ``__bool__`` /
``__float__`` / ``__int__`` calls (calls on tensors that live on the host on any device, i.e. the
data loader, the sampler and the optimiser's step counters, are listed apart and not counted), on
CUDA with ``torch.cuda.set_sync_debug_mode("warn")``. The arms run ``--repeats`` times round robin
and each keeps its fastest repeat (other processes on a shared machine only add time). The first
``--check-steps`` training losses of each arm are recorded and compared: arms that must agree
bit for bit (the same maths on the same padded shapes) and arms that must agree to rounding (other
padding widths, compiled kernels) are checked and the result is written with the figures.

Usage::

    python benchmarks/step_overhead.py                      # CPU, writes benchmarks/results/step_overhead-cpu.json
    python benchmarks/step_overhead.py --device cuda        # on a GPU
    python benchmarks/step_overhead.py --arms vanilla tailtune compile --steps 60
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import json
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
from _bench import RESULTS, device_info, write_json

#: recipe overrides of each tailtune arm (on the ``ce`` preset)
ARMS: dict[str, list[str] | None] = {
    "vanilla": None,
    "floor": None,
    "tailtune-trainer-loop": ["train.fast_step=false"],
    "tailtune": [],
    "tailtune-rowwise": [],
    "weighted-ce": ["weighting.scheme=inverse", "weighting.apply_to=weight"],
    "focal": ["~loss.ce", "loss.focal={weight: 1.0, gamma: 2.0}"],
    "focal+supcon": ["~loss.ce", "loss.focal={weight: 0.7, gamma: 1.0}",
                     "loss.supcon={weight: 0.3, temperature: 0.1}", "model.projection_dim=16"],
    "sample-weights": ["sample_weighting.length=true", "sample_weighting.confidence=true"],
    "buckets": ["train.pad_buckets=true"],
    "compile": ["train.compile=true"],
    "compile-model": ["train.compile=true", "train.compile_scope=model"],
    "compile-step": ["train.compile=true", "train.compile_scope=step"],
    "cuda-graphs": ["train.cuda_graphs=true"],
    "cuda-graphs-model": ["train.cuda_graphs=true", "train.compile_scope=model"],
    "cuda-graphs-step": ["train.cuda_graphs=true", "train.compile_scope=step"],
    "group-by-length": ["train.group_by_length=true"],
}
#: arms outside tailtune and the Trainer: a hand-written loop (no recipe overrides)
FLOOR_ARMS = {"floor"}
#: the default path with the training batches read row by row from the data set and padded by
#: ``LabelCollator`` (tailtune's data path before the token table): the table's effect in one run
ROWWISE_ARMS = {"tailtune-rowwise"}
#: arms whose first losses must equal another arm's: (arm, reference arm, "exact" | "rounding")
AGREEMENT = [
    ("tailtune", "tailtune-trainer-loop", "exact"),
    ("tailtune-rowwise", "tailtune", "exact"),
    ("buckets", "tailtune", "rounding"),
    ("compile", "tailtune", "rounding"),
    ("compile-model", "tailtune", "rounding"),
    ("compile-step", "tailtune", "rounding"),
    ("cuda-graphs", "tailtune", "rounding"),
    ("cuda-graphs-model", "tailtune", "rounding"),
    ("cuda-graphs-step", "tailtune", "rounding"),
]
#: arms that change results on purpose (reported, never judged against the target)
CHANGES_RESULTS = {"group-by-length"}
CUDA_ONLY = ("cuda-graphs", "cuda-graphs-model", "cuda-graphs-step")
DEFAULT_ARMS = [a for a in ARMS if a not in CUDA_ONLY]
ROUNDING_RTOL = 2e-4

WORDS = [f"w{i}" for i in range(300)]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MICRO = {"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 1, "intermediate_size": 16,
         "max_position_embeddings": 128, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
LABELS = ["common", "frequent", "rare", "very_rare"]
PRIORS = [0.55, 0.25, 0.15, 0.05]


# ---------------------------------------------------------------------------------------------
def make_micro_encoder(root: Path, *, attn: str) -> Path:
    """A random-weight BERT of :data:`MICRO` shape with a 305-token word-level vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.txt").write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    import inspect

    # transformers 5 names the vocabulary ``vocab`` (``vocab_file`` is ignored there: a 5-token vocabulary,
    # every word [UNK]); 4.x names it ``vocab_file``
    key = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
    tok = BertTokenizerFast(**{key: str(root / "vocab.txt")}, model_max_length=128)
    if len(tok) != len(SPECIAL) + len(WORDS):
        raise RuntimeError(f"micro tokenizer has {len(tok)} tokens, expected {len(SPECIAL) + len(WORDS)}")
    config = BertConfig(vocab_size=len(tok), **MICRO)
    config._attn_implementation = attn
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(root)
    tok.save_pretrained(root)
    return root


def make_data(root: Path, *, n_train: int, n_eval: int, seed: int = 0) -> Path:
    """Multi-class JSONL data: imbalanced labels, each marked by cue words, log-normal lengths."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        rows = []
        for _ in range(n):
            y = int(rng.choice(len(LABELS), p=PRIORS))
            length = int(np.clip(round(rng.lognormal(np.log(12), 0.6)), 2, 60))
            words = list(rng.choice(WORDS[20:], size=length))
            words[int(rng.integers(length))] = WORDS[5 * y + int(rng.integers(5))]
            rows.append({"text": " ".join(words), "labels": LABELS[y]})
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


# ---------------------------------------------------------------------------------------------
class SyncCounter:
    """Counts host reads of tensor values (each one a device->host synchronisation on a GPU).

    CPU: wraps ``Tensor.item/tolist/cpu/numpy/__bool__/__float__/__int__`` while ``active``;
    each call is attributed to its nearest caller outside torch, and reads of tensors that live on
    the host on any device (data loader, samplers, collators, the optimisers' step counters) are
    kept apart.
    CUDA: ``torch.cuda.set_sync_debug_mode("warn")`` reports every synchronising call.
    """

    METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
    HOST_SITES = ("torch/utils/data", "data/sampler.py", "data_collator", "collate.py", "trainer_pt_utils",
                  "accelerate/data_loader", "EpochWeightedSampler", "datasets/", "optim/",
                  "<eval_with_key>",  # the size arithmetic of the eager debug backend's generated code
                  "losses/_fused.py")  # the fused losses' backward reads the upstream gradient only when it is on the CPU

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.active = False
        self.sites: collections.Counter = collections.Counter()
        self.host_sites: collections.Counter = collections.Counter()
        self._saved: dict = {}
        self._warn_ctx = None

    def _site(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if "/torch/" not in name or "/torch/utils/data" in name or "/torch/optim/" in name:
                return f"{Path(name).parent.name}/{Path(name).name}:{frame.f_lineno}"
            frame = frame.f_back
        return "?"

    def _record(self, site: str) -> None:
        if any(key in site for key in self.HOST_SITES):
            self.host_sites[site] += 1
        else:
            self.sites[site] += 1

    def install(self) -> None:
        import torch

        if self.cuda:
            return
        for name in self.METHODS:
            original = getattr(torch.Tensor, name)
            self._saved[name] = original

            def wrapper(tensor, *args, _original=original, **kwargs):
                if self.active:
                    self._record(self._site())
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, wrapper)

    def uninstall(self) -> None:
        import torch

        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)
        self._saved.clear()

    def start(self) -> None:
        import torch

        self.active = True
        if self.cuda:
            self._warn_ctx = warnings.catch_warnings(record=True)
            self._records = self._warn_ctx.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")

    def stop(self) -> None:
        import torch

        if not self.active:
            return
        self.active = False
        if self.cuda and self._warn_ctx is not None:
            torch.cuda.set_sync_debug_mode(0)
            for w in self._records:
                if "synchroniz" in str(w.message):
                    self._record(f"{Path(w.filename).parent.name}/{Path(w.filename).name}:{w.lineno}")
            self._warn_ctx.__exit__(None, None, None)
            self._warn_ctx = None

    def summary(self, steps: int) -> dict:
        return {"syncs_per_step": sum(self.sites.values()) / max(steps, 1),
                "sites": dict(self.sites.most_common(12)),
                "host_tensor_reads_per_step": sum(self.host_sites.values()) / max(steps, 1),
                "host_tensor_sites": dict(self.host_sites.most_common(6))}


def StepClock(warm: int, count: int, counter: SyncCounter):  # noqa: N802 - a factory that reads like a class
    """A ``TrainerCallback`` stamping the end of every optimiser step with the wall clock and the
    process's CPU clock (on a shared machine its CPU time is the host's work, undisturbed by other
    processes taking turns on the cores).
    The sync counter runs from the end of step ``warm`` to the end of step ``warm + count`` and is
    then removed, so its bookkeeping is in no timed step."""
    from transformers import TrainerCallback

    class _Clock(TrainerCallback):
        def __init__(self):
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self.counted = 0

        def on_train_begin(self, args, state, control, **kw):
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())

        def on_step_end(self, args, state, control, **kw):
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())
            step = int(state.global_step)
            if step == warm:
                counter.start()
            elif step == warm + count or step >= state.max_steps:
                if counter.active:
                    self.counted = step - warm
                counter.stop()
                counter.uninstall()

    return _Clock()


class LossTap:
    """Records the first ``k`` training losses (device tensors, read once at the end)."""

    def __init__(self, k: int):
        self.k = k
        self.values: list = []
        self.handle = None

    def hook(self, module, args, output):
        if module.training and len(self.values) < self.k:
            if isinstance(output, dict):
                loss = output.get("loss")
            else:
                loss = output[0] if isinstance(output, tuple) else getattr(output, "loss", None)
            if loss is not None:
                self.values.append(loss.detach().float().clone())
        if len(self.values) >= self.k and self.handle is not None:
            self.handle.remove()

    def floats(self) -> list[float]:
        return [float(v) for v in self.values]


def loss_tap_callback(tap: LossTap):
    """Attach ``tap`` to tailtune's training module (classifier + loss; its ``loss`` output is the composite
    loss's total) when training starts: outside any compiled region, whatever ``train.compile_scope`` is."""
    from transformers import TrainerCallback

    class _Attach(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            tap.handle = model.register_forward_hook(tap.hook)

    return _Attach()


# ---------------------------------------------------------------------------------------------
def run_vanilla(ctx: dict, clock, tap: LossTap) -> None:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    tok, model, splits = _vanilla_model_and_data(ctx)
    args = TrainingArguments(
        output_dir=str(ctx["tmp"] / "vanilla"), seed=ctx["seed"], num_train_epochs=1,
        per_device_train_batch_size=ctx["batch_size"], learning_rate=1e-3, warmup_steps=0.06, weight_decay=0.01,
        save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
        use_cpu=not ctx["cuda"], bf16=ctx["cuda"])
    model.register_forward_hook(tap.hook)
    trainer = Trainer(model=model, args=args, train_dataset=splits["train"], processing_class=tok,
                      data_collator=DataCollatorWithPadding(tok), callbacks=[clock])
    trainer.train()


def _vanilla_model_and_data(ctx: dict):
    """The vanilla arm's tokenizer, model (seeded as the Trainer seeds it) and tokenised splits."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, set_seed

    from tailtune.data import load_dataset

    loaded = load_dataset(ctx["data"], seed=13)
    tok = AutoTokenizer.from_pretrained(ctx["encoder"])
    set_seed(ctx["seed"])
    config = BertConfig.from_pretrained(ctx["encoder"], num_labels=len(LABELS))
    config._attn_implementation = ctx["attn"]
    model = BertForSequenceClassification.from_pretrained(ctx["encoder"], config=config, dtype=torch.float32)
    splits = {k: v.map(lambda b: tok(b["text"], truncation=True, max_length=ctx["max_length"]), batched=True,
                       remove_columns=["text"]) for k, v in loaded.splits.items()}
    return tok, model, splits


def run_floor(ctx: dict, clock, tap: LossTap) -> None:
    """The bare-loop floor: the vanilla arm's model, data, batch size, optimiser (fused AdamW, weight
    decay off for biases and LayerNorm, as the Trainer groups them), linear warm-up/decay schedule
    and clipping in a hand-written loop, every batch padded (``DataCollatorWithPadding``) and on the
    device BEFORE the loop: forward, backward, ``clip_grad_norm_`` (foreach), ``step``, schedule,
    ``zero_grad(set_to_none)``, nothing else. What no trainer can go below with this eager model."""
    import types

    import torch
    from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

    tok, model, splits = _vanilla_model_and_data(ctx)
    device = torch.device("cuda" if ctx["cuda"] else "cpu")
    model.to(device).train()
    train = splits["train"]
    collator = DataCollatorWithPadding(tok)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx["seed"])).tolist()
    bs = ctx["batch_size"]
    batches = [{k: v.to(device) for k, v in collator([train[j] for j in order[i:i + bs]]).items()}
               for i in range(0, len(order), bs)]
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm" in n or "norm" in n.lower()]
    ids = {id(p) for p in no_decay}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids], "weight_decay": 0.01},
              {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3, fused=True)
    sched = get_linear_schedule_with_warmup(opt, max(1, round(0.06 * len(batches))), len(batches))
    params = list(model.parameters())
    model.register_forward_hook(tap.hook)
    state = types.SimpleNamespace(global_step=0, max_steps=len(batches))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if ctx["cuda"] else contextlib.nullcontext()
    clock.on_train_begin(None, state, None)
    for batch in batches:
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        state.global_step += 1
        clock.on_step_end(None, state, None)


def run_tailtune(ctx: dict, overrides: list[str], clock, tap: LossTap, out: Path) -> dict:
    from tailtune.recipe import load_preset
    from tailtune.training import train

    recipe = load_preset("ce", [
        f"data.path={ctx['data']}", f"model.name={ctx['encoder']}", f"output={out}", f"train.seed={ctx['seed']}",
        "train.epochs=1", f"data.max_length={ctx['max_length']}", f"train.batch_size={ctx['batch_size']}",
        f"train.precision={'bf16' if ctx['cuda'] else 'fp32'}", "optim.lr=1e-3", "optim.warmup=0.06",
        "optim.weight_decay=0.01", "model.dropout=0.0", f"model.attn_implementation={ctx['attn']}",
        "early_stopping.patience=0", *overrides,
    ])
    result = train(recipe, callbacks=[clock, loss_tap_callback(tap)], report=False)  # training only, no report.html
    return {"speed": result.history[-1].get("speed") if result.history else None}


@contextlib.contextmanager
def rowwise_batches(on: bool):
    """While ``on``, tailtune's trainer builds no token table (``TokenTable.build`` answers ``None``),
    so its training batches are the data set's rows padded by ``LabelCollator``."""
    if not on:
        yield
        return
    from tailtune.training.collate import TokenTable

    saved = TokenTable.__dict__["build"]
    TokenTable.build = classmethod(lambda cls, *a, **k: None)
    try:
        yield
    finally:
        TokenTable.build = saved


def run_arm(arm: str, ctx: dict, *, warm: int, check_steps: int, count_steps: int = 5) -> dict:
    import torch

    gc.collect()
    counter = SyncCounter(ctx["cuda"])
    clock = StepClock(warm, count_steps, counter)
    tap = LossTap(check_steps)
    counter.install()
    extra: dict = {}
    t0 = time.perf_counter()
    try:
        if arm in FLOOR_ARMS:
            run_floor(ctx, clock, tap)
        elif ARMS[arm] is None:
            run_vanilla(ctx, clock, tap)
        else:
            with rowwise_batches(arm in ROWWISE_ARMS):
                extra = run_tailtune(ctx, ARMS[arm], clock, tap, ctx["tmp"] / f"run-{arm}")
    finally:
        counter.stop()
        counter.uninstall()
        if ctx["cuda"]:
            torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    wall_steps = np.diff(np.asarray(clock.wall)) * 1e3  # ms per optimiser step, step 1 first
    cpu_steps = np.diff(np.asarray(clock.cpu)) * 1e3
    first = warm + count_steps  # the counted steps carry the counter's bookkeeping: not timed
    if len(wall_steps) <= first:
        raise RuntimeError(f"only {len(wall_steps)} steps ran; need more than --warm {warm} + {count_steps} counted")
    # CPU: the main thread's CPU time is the host work (robust on a shared machine); CUDA: wall time
    steps = wall_steps if ctx["cuda"] else cpu_steps
    timed = steps[first:]
    median = float(np.median(timed))
    speed = extra.get("speed") or {}
    row = {
        "ms_per_step": median,
        "clock": "wall" if ctx["cuda"] else "process CPU time",
        "mean_ms_per_step": float(np.mean(timed)),
        "wall_ms_per_step": float(np.median(wall_steps[first:])),
        "first_step_ms": float(wall_steps[0]),
        "steps_timed": int(len(timed)),
        "compile_s": speed.get("compile_s"),
        "slow_steps_ms": [round(float(x), 1) for x in wall_steps if x > 5 * float(np.median(wall_steps[first:]))],
        **counter.summary(max(clock.counted, 1)),
        "first_losses": tap.floats(),
        "wall_s": round(wall, 2),
        "overrides": ARMS[arm],
        "changes_results": arm in CHANGES_RESULTS,
    }
    if speed:
        row["speed"] = speed
    return row


def agreement(arms: dict) -> list[dict]:
    """The loss checks of :data:`AGREEMENT` for the arms that ran."""
    out = []
    for arm, ref, how in AGREEMENT:
        if arm not in arms or ref not in arms or "first_losses" not in arms[arm] or "first_losses" not in arms[ref]:
            continue
        a, b = np.asarray(arms[arm]["first_losses"]), np.asarray(arms[ref]["first_losses"])
        n = min(len(a), len(b))
        diff = float(np.max(np.abs(a[:n] - b[:n]))) if n else float("nan")
        rel = float(np.max(np.abs(a[:n] - b[:n]) / np.maximum(np.abs(b[:n]), 1e-12))) if n else float("nan")
        ok = n > 0 and (diff == 0.0 if how == "exact" else rel <= ROUNDING_RTOL)
        out.append({"arm": arm, "reference": ref, "expected": how, "steps": n, "max_abs_diff": diff,
                    "max_rel_diff": rel, "ok": bool(ok)})
    return out


def heartbeat(state: dict, every: float = 10.0):
    """Print a line every ``every`` seconds while an arm runs (the GPU kit wants one every 15 s)."""
    stop = threading.Event()

    def loop():
        while not stop.wait(every):
            print(f"  ... {state.get('arm')} running for {time.perf_counter() - state.get('t0', 0):.0f} s", flush=True)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return stop


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--arms", nargs="+", default=None, choices=list(ARMS))
    ap.add_argument("--steps", type=int, default=70, help="optimiser steps per arm (one epoch)")
    ap.add_argument("--warm", type=int, default=10, help="steps left out of the timing")
    ap.add_argument("--repeats", type=int, default=2, help="runs of every arm, round robin; the fastest counts")
    ap.add_argument("--check-steps", type=int, default=8, help="first losses compared between arms")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--attn", default=None, help="attention implementation (default: eager on cpu, sdpa on cuda)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads on cpu (default 1)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--budget-s", type=float, default=None, help="start no arm once this many seconds have passed")
    ap.add_argument("--compile-backend", default=None,
                    help="torch.compile backend of the compiled arms (default inductor; eager: trace only, for smoke runs)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import torch
    import transformers

    import tailtune

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.compile_backend:
        from tailtune.training import speed

        speed.COMPILE_BACKEND = args.compile_backend
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("--device cuda requested but CUDA is not available", file=sys.stderr)
        return 2
    if not cuda:
        torch.set_num_threads(args.threads)
    arms = list(args.arms or [*DEFAULT_ARMS, *(CUDA_ONLY if cuda else ())])
    if not cuda and any(a in CUDA_ONLY for a in arms):
        arms = [a for a in arms if a not in CUDA_ONLY]
        print(f"{', '.join(CUDA_ONLY)}: CUDA only, skipped")
    out = Path(args.out or RESULTS / f"step_overhead-{args.device}.json")
    t_start = time.perf_counter()
    results: dict = {
        "benchmark": "step_overhead", **device_info(), "reference": "vanilla",
        "command": " ".join(["step_overhead.py", *(argv if argv is not None else sys.argv[1:])]),
        "tailtune_source": str(Path(tailtune.__file__).parent), "micro_encoder": MICRO,
        "batch_size": args.batch_size, "steps": args.steps, "warm": args.warm, "repeats": args.repeats,
        "max_length": args.max_length, "seed": args.seed, "compile_backend": args.compile_backend or "inductor",
        "arms": {}, "skipped": [],
    }
    beat: dict = {}
    stop = heartbeat(beat)
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="tailtune-step-overhead-") as tmp:
        tmp = Path(tmp)
        attn = args.attn or ("sdpa" if cuda else "eager")
        ctx = {"encoder": make_micro_encoder(tmp / "micro", attn=attn), "attn": attn, "cuda": cuda,
               "data": make_data(tmp / "data", n_train=args.steps * args.batch_size, n_eval=64),
               "tmp": tmp, "seed": args.seed, "batch_size": args.batch_size, "max_length": args.max_length}
        results["attn_implementation"] = attn
        for repeat in range(args.repeats):
            for arm in arms:
                if "error" in results["arms"].get(arm, {}):
                    continue
                elapsed = time.perf_counter() - t_start
                if args.budget_s is not None and elapsed > args.budget_s:
                    print(f"  skip {arm} (repeat {repeat + 1}): {elapsed:.0f} s of the {args.budget_s:.0f} s budget used",
                          flush=True)
                    results["skipped"].append(f"{arm}#{repeat + 1}")
                    continue
                beat.update(arm=f"{arm} (repeat {repeat + 1})", t0=time.perf_counter())
                ctx["tmp"] = tmp / f"r{repeat}"
                try:
                    row = run_arm(arm, ctx, warm=args.warm, check_steps=args.check_steps)
                except Exception as exc:  # an arm that cannot run (an unknown recipe field on old code, say)
                    print(f"  {arm:22s} FAILED: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                    results["arms"][arm] = {"error": f"{type(exc).__name__}: {exc}"[:2000],
                                            "traceback": traceback.format_exc()[-3000:]}
                    write_json(out, results)
                    continue
                runs.setdefault(arm, []).append(row)
                results["arms"] = _best(runs, results["arms"])
                results["agreement"] = agreement(results["arms"])
                results["wall_s"] = round(time.perf_counter() - t_start, 2)
                write_json(out, results)
                comp = f"  compile {row['compile_s']:.1f} s" if row.get("compile_s") else ""
                print(f"  {arm:22s} {row['ms_per_step']:7.2f} ms/step (repeat {repeat + 1})  "
                      f"{row['syncs_per_step']:4.1f} syncs/step{comp}", flush=True)
    stop.set()
    results["targets"] = targets(results["arms"])
    results["wall_s"] = round(time.perf_counter() - t_start, 2)
    write_json(out, results)
    print_table(results)
    print(f"wrote {out}")
    return 0


def print_table(results: dict) -> None:
    """The arms' figures, the loss agreement and the targets, as a table on stdout."""
    print(f"{'arm':24s} {'ms/step':>8s} {'x vanilla':>9s} {'syncs/step':>10s} {'x floor':>8s}")
    for arm, row in results["arms"].items():
        if "error" in row:
            print(f"{arm:24s} error: {row['error'][:100]}")
            continue
        ratio = row.get("ratio_vs_vanilla")
        print(f"{arm:24s} {row['ms_per_step']:8.2f} {'' if ratio is None else f'{ratio:9.2f}'} "
              f"{row['syncs_per_step']:10.2f}" + (f" {row['ratio_vs_floor']:8.2f}" if "ratio_vs_floor" in row else "")
              + ("  (changes results)" if row["changes_results"] else ""))
    for check in results.get("agreement", []):
        print(f"  losses {check['arm']} vs {check['reference']} ({check['expected']}, {check['steps']} steps): "
              f"max abs diff {check['max_abs_diff']:.2e} -> {'ok' if check['ok'] else 'DIFFERENT'}")
    print("targets:", json.dumps(results["targets"], indent=1))


def _best(runs: dict[str, list[dict]], previous: dict) -> dict:
    """Per arm the fastest repeat (all repeats' medians kept), with its ratio to vanilla's fastest."""
    arms = {a: r for a, r in previous.items() if "error" in r}
    for arm, rows in runs.items():
        best = dict(min(rows, key=lambda r: r["ms_per_step"]))
        best["repeats_ms_per_step"] = [round(r["ms_per_step"], 3) for r in rows]
        compile_s = [r["compile_s"] for r in rows if r.get("compile_s") is not None]
        if compile_s:  # the repeat that compiled (later ones reuse the process's compiled graphs)
            best["compile_s"] = max(compile_s)
        arms[arm] = best
    ref = arms.get("vanilla", {}).get("ms_per_step")
    floor = arms.get("floor", {}).get("ms_per_step")
    for arm, row in arms.items():
        if ref and arm != "vanilla" and "ms_per_step" in row:
            row["ratio_vs_vanilla"] = row["ms_per_step"] / ref
        if floor and arm != "floor" and "ms_per_step" in row:
            row["ratio_vs_floor"] = row["ms_per_step"] / floor
    return arms


def targets(arms: dict) -> dict:
    """Issue 15's CPU-proxy target: tailtune's host ms/step at most half the vanilla Trainer's,
    judged for the default path and for the best arm whose results equal the default's."""
    ref = arms.get("vanilla", {}).get("ms_per_step")
    if not ref:
        return {}
    out = {}
    same = [a for a in arms if a != "vanilla" and a not in CHANGES_RESULTS and "ms_per_step" in arms[a]
            and a in ("tailtune", "buckets", "compile", "compile-model", "compile-step", *CUDA_ONLY)]
    for arm in same:
        ratio = arms[arm]["ms_per_step"] / ref
        out[f"{arm}: host ms/step <= 0.5x vanilla"] = {"ratio": round(ratio, 3), "met": ratio <= 0.5}
    if "ms_per_step" in arms.get("floor", {}):  # not a target: where the eager model itself stands
        out["floor (bare loop, not a target)"] = {"ratio": round(arms["floor"]["ms_per_step"] / ref, 3)}
    return out


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
