#!/usr/bin/env bash
# Installs tailtune and runs its main command on the embedded demo data: `tailtune fit --demo`
# (Rotten Tomatoes fresh/rotten/plot, all-MiniLM-L6-v2, a 10-minute CPU budget; the planner sizes
# the fine-tuning to the budget). Running it again shows the finished fit (or continues a killed one);
# extra options are passed on (e.g. --budget 20m --restart).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/tailtune fit --demo -o runs/demo-fit "$@"
