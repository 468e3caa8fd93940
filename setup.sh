#!/usr/bin/env bash
# Sets the assistant up from a fresh clone and runs the main job: builds the
# index (about 2-3 minutes on 2 cores, once) and answers a sample question.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# The CPU build of torch first: an unpinned torch from the registry pulls a 5 GB CUDA build.
.venv/bin/pip install --quiet "torch==2.13.0+cpu" 2>/dev/null || .venv/bin/pip install --quiet "torch==2.13.0"
.venv/bin/pip install --quiet -e ".[test]"

.venv/bin/assistant index
.venv/bin/assistant ask "${1:-What does AdamP change in the optimizer step?}"
