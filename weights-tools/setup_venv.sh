#!/usr/bin/env bash
# Creates weights-tools/.venv with pinned packages from PyPI (idempotent):
#   setup_venv.sh              torch (CPU build) + numpy, for the kernel fixtures
#   setup_venv.sh --reference  also diffusers, transformers, safetensors, … for the model/pipeline oracle
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then python3 -m venv "$here/.venv"; fi
"$here/.venv/bin/pip" install -q -r "$here/requirements-kernels.txt"
if [ "${1:-}" = "--reference" ]; then "$here/.venv/bin/pip" install -q -r "$here/requirements-reference.txt"; fi
echo "$here/.venv/bin/python"
