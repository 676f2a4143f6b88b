"""Names of the files in a run directory (the contract of DESIGN.md and docs/architecture.md)."""

from __future__ import annotations

RECIPE = "recipe.yaml"
TASK = "task.json"
HISTORY = "history.jsonl"
MODEL_DIR = "model"
POSTPROCESS = "postprocess.json"
EVAL = "eval.json"
REPORT = "report.html"
CHECKPOINTS_DIR = "checkpoints"
PREDICTIONS_DIR = "predictions"  # predictions/<split>.npz: logits (N, K) and targets, written by train/evaluate
RESOLVED = "resolved.json"  # what the recipe resolved to: loss parts with every argument, class weights, sampler
LINT = "lint.json"  # the recipe lint's findings at the start of training

#: history.jsonl's train metrics are computed on at most this many training examples (a fixed, seeded sample)
TRAIN_EVAL_MAX = 2000
