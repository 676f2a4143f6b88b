#!/usr/bin/env bash
# Installs tailtune and runs the embedded demo (Rotten Tomatoes, 3 classes, all-MiniLM-L6-v2, CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/tailtune demo "$@"
