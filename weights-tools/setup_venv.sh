#!/usr/bin/env bash
# Creates weights-tools/.venv with the pinned packages of requirements-kernels.txt (idempotent).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then python3 -m venv "$here/.venv"; fi
"$here/.venv/bin/pip" install -q -r "$here/requirements-kernels.txt"
echo "$here/.venv/bin/python"
