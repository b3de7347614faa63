#!/usr/bin/env bash
# Checks `unclip serve` with the clients people already use, from PyPI (pinned, in their own venv): the official
# `openai` Python SDK (generations with url and b64_json, edits with a mask and with the image's own alpha,
# variations, the error classes it maps our statuses to: BadRequestError, AuthenticationError, NotFoundError,
# RateLimitError) and `webuiapi` (AUTOMATIC1111's txt2img, img2img with a mask, progress, models), plus what no
# client library exercises: job events (SSE), a client that goes away (its job is cancelled), a full queue (429 with
# Retry-After), an oversize body (413), and SIGTERM (queued jobs answered 503, the running one finishes, the store
# folder is removed), and a load check (scripts/load_server.py). The embedded model.
#   bash scripts/check-server.sh [path/to/unclip]   (default: .build/debug/unclip)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
unclip="${1:-$here/.build/debug/unclip}"
venv="$here/weights-tools/.venv-clients"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q openai==3.57.0 webuiapi==0.9.17 pillow==13.0.0 requests==2.32.5 >&2
fi
"$venv/bin/python" "$here/scripts/server_clients.py" "$unclip"
# load: 20 requests from 8 clients on a queue of 4 (429s on the way, every answer the client's own), then sequential
# requests with RSS before and after (30 here to keep CI short; the README's figures are from 100 on a release build)
"$venv/bin/python" "$here/scripts/load_server.py" "$unclip" --requests 20 --clients 8 --queue 4 --sequential "${UNCLIP_LOAD_SEQUENTIAL:-30}"
