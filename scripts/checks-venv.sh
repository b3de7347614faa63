#!/usr/bin/env bash
# The venv the scripted checks use (PyPI, pinned): sd-parsers (an AUTOMATIC1111 metadata reader) and Pillow (an
# independent PNG/APNG decoder). Made on first use; prints its python.
#   py="$(bash scripts/checks-venv.sh)"
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$here/weights-tools/.venv-sdparsers"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q sd-parsers==0.6 pillow==13.0.0 >&2
fi
echo "$venv/bin/python"
