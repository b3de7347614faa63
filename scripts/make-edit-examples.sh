#!/usr/bin/env bash
# Re-creates the README's edit and mural examples (docs/examples/) with the embedded model:
#   bash scripts/make-edit-examples.sh [path/to/unclip]   (default .build/release/unclip)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
unclip="${1:-$here/.build/release/unclip}"
out="$here/docs/examples"
mkdir -p "$out"
# before: a one-object scene; the mask: its left half transparent (stdlib-only PNG writer)
"$unclip" generate "a blue square" -o "$out/edit-before.png" --seed 12 -q
python3 - "$out/edit-mask.png" <<'PY'
import struct, sys, zlib
w = h = 64
rows = b"".join(b"\0" + b"".join(b"\0\0\0\0" if x < 28 else b"\xff\xff\xff\xff" for x in range(w)) for _ in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
"$unclip" edit "$out/edit-before.png" "a red circle to the left of a blue square" --mask "$out/edit-mask.png" \
    -o "$out/edit-after.png" --seed 3 -q
# a mural: four extensions of the edited image, each seeing the last
cp "$out/edit-after.png" "$out/mural-0.png"
"$unclip" extend "$out/mural-0.png" "a yellow triangle to the right of a blue square" --right 32 -o "$out/mural-1.png" --seed 1 -q
"$unclip" extend "$out/mural-1.png" "a green circle" --right 32 -o "$out/mural-2.png" --seed 2 -q
"$unclip" extend "$out/mural-2.png" "a purple square below a red circle" --down 32 -o "$out/mural-3.png" --seed 3 -q
"$unclip" extend "$out/mural-3.png" "an orange triangle" --left 32 -o "$out/mural-4.png" --seed 4 -q
ls "$out"
