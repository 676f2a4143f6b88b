#!/usr/bin/env bash
# `tailtune fit` on a GPU in about 6 minutes: benchmarks/fit.py on tweeteval_emotion, mams_acsa and
# reuters21578_modapte with GPU budgets (90 s, 90 s, 150 s), the data and model from the GPU kit.
#
# Before (here, once): .venv/bin/python benchmarks/build_gpu_kit.py   (.whl/ and .gpukit/, ~52 MiB)
# On the GPU:          run(command="bash benchmarks/fit_gpu.sh", carry=[".whl", ".gpukit"], timeout_s=480)
# CPU dry run here:    OUT=/tmp/fit-gpu-smoke bash benchmarks/fit_gpu.sh --smoke
#
# Writes $OUT/fit_cuda.json (benchmarks/fit.py's JSON) and $OUT/fit_gpu.log. FIT_GPU_BUDGETS overrides
# the budgets (name=budget,...); --smoke runs one tiny fit on CPU (tiny budget, 1 epoch) to check the
# command, not the figures.
set -uo pipefail
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-/tmp/tailtune-fit-gpu-out}
mkdir -p "$OUT"
LOG="$OUT/fit_gpu.log"
: >"$LOG"
if [ -z "${PYTHON:-}" ]; then
  if [ "$SMOKE" = 1 ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
. "$ROOT/benchmarks/_kit_env.sh"
kit_env "$SMOKE" /tmp/tailtune-fit-site /tmp/tailtune-fit-data "$LOG" || exit 3
export TAILTUNE_CACHE=/tmp/tailtune-fit-cache

if [ "$SMOKE" = 1 ]; then
  ARGS=(--device cpu --datasets tweeteval_emotion --budget 4m --seeds 2 --max-epochs 1 --quiet
        --runs /tmp/tailtune-fit-gpu-smoke --out "$OUT/fit_smoke.json")
else
  ARGS=(--device cuda --datasets tweeteval_emotion mams_acsa reuters21578_modapte
        --budgets "${FIT_GPU_BUDGETS:-tweeteval_emotion=90s,mams_acsa=90s,reuters21578_modapte=150s}"
        --quiet --runs /tmp/tailtune-fit-gpu-runs --out "$OUT/fit_cuda.json")
fi
echo "[fit_gpu] $(date -u +%FT%TZ) $PYTHON benchmarks/fit.py ${ARGS[*]}" | tee -a "$LOG"
timeout -k 10 450 $PYTHON benchmarks/fit.py "${ARGS[@]}" 2>&1 | grep --line-buffered -v -E 'it/s\]|s/it\]|^\s*$' | tee -a "$LOG"
echo "[fit_gpu] rc ${PIPESTATUS[0]}" | tee -a "$LOG"
