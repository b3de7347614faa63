#!/usr/bin/env bash
# Checks the animated PNGs `unclip textdiff` writes with an independent decoder (Pillow, pinned, in the checks'
# venv): the frame count (with --bounce: there and back), every frame's pixels equal to the --frames-dir PNG of
# the same frame, the frame duration and the loop count. The embedded model, few steps.
#   bash scripts/check-apng.sh [path/to/unclip]   (default: .build/debug/unclip, as `swift test` builds it)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
unclip="${1:-$here/.build/debug/unclip}"
py="$(bash "$here/scripts/checks-venv.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$unclip" generate "a red circle" -o "$work/a.png" --seed 3 --prior-steps 4 --decoder-steps 6 --super-res-steps 2 -q >/dev/null
"$unclip" textdiff "$work/a.png" --from "a red circle" --to "a blue circle" --frames 4 --fps 5 --loop 3 --bounce \
    --decoder-steps 6 --super-res-steps 2 --inversion-iterations 2 -o "$work/d.png" --frames-dir "$work/frames" -q >/dev/null
"$py" - "$work/d.png" "$work/frames" <<'PY'
import sys
from PIL import Image
apng, frames = sys.argv[1], sys.argv[2]
im = Image.open(apng)
order = [0, 1, 2, 3, 2, 1]                      # --frames 4 --bounce
assert im.format == "PNG" and im.is_animated, (im.format, im.is_animated)
assert im.n_frames == len(order), f"n_frames {im.n_frames}, want {len(order)}"
assert im.info.get("loop") == 3, im.info.get("loop")
for k, f in enumerate(order):
    im.seek(k)
    got, want = im.convert("RGB"), Image.open(f"{frames}/frame-{f:04d}.png").convert("RGB")
    assert got.size == want.size and got.tobytes() == want.tobytes(), f"APNG frame {k} differs from frame-{f:04d}.png"
    assert im.info.get("duration") == 200, f"frame {k}: duration {im.info.get('duration')} ms, want 200"
print(f"Pillow reads our APNG: {im.n_frames} frames equal to the frame PNGs, 200 ms each, loop 3")
PY
