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
