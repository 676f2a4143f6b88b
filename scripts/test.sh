#!/usr/bin/env bash
# Installs tailtune with its test dependencies, lints, and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TAILTUNE_HYPOTHESIS="${TAILTUNE_HYPOTHESIS:-gate}"  # property tests draw fixed examples (tests/conftest.py)
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
