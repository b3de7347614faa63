#!/usr/bin/env bash
# Drives the web page of `unclip serve` in headless Chromium (Debian's chromium and chromium-driver, through selenium
# from PyPI, pinned, in the clients' venv): types a prompt, generates, waits for the images and the live progress,
# paints a mask on the first image with the brush, applies the edit, and saves a screenshot.
#   bash scripts/check-webpage.sh [path/to/unclip] [screenshot.png]   (defaults: .build/debug/unclip, a temporary file)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
unclip="${1:-$here/.build/debug/unclip}"
shot="${2:-}"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
fi
venv="$here/weights-tools/.venv-clients"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import selenium" 2>/dev/null || "$venv/bin/pip" install -q selenium==4.38.0 >&2
exec "$venv/bin/python" "$here/scripts/webpage_check.py" "$unclip" "$shot"
