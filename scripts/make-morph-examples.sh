#!/usr/bin/env bash
# Re-creates the README's animation examples (docs/examples/) with the embedded model:
#   bash scripts/make-morph-examples.sh [path/to/unclip]   (default .build/release/unclip)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
unclip="${1:-$here/.build/release/unclip}"
out="$here/docs/examples"
mkdir -p "$out"
# a text diff: a purple circle turned towards "a blue circle"
"$unclip" generate "a small purple circle" -o "$out/textdiff-source.png" --seed 910200000 -q
"$unclip" textdiff "$out/textdiff-source.png" --from "a small purple circle" --to "a small blue circle" --frames 8 \
    --fps 4 --bounce -o "$out/textdiff.png" --seed 1 -q
# a shape text diff: a red square turned towards "a large red circle" (validation case 1 of morph_bench.py)
"$unclip" generate "a large red square" -o "$out/textdiff-shape-source.png" --seed 910200032 -q
"$unclip" textdiff "$out/textdiff-shape-source.png" --from "a large red square" --to "a large red circle" --frames 8 \
    --fps 4 --bounce -o "$out/textdiff-shape.png" --seed 910200063 -q
# an interpolation between two generated scenes (inverted latents: the end frames are the inputs)
"$unclip" generate "a red circle" -o "$out/interpolate-a.png" --seed 1 -q
"$unclip" generate "a large blue square" -o "$out/interpolate-b.png" --seed 2 -q
"$unclip" interpolate "$out/interpolate-a.png" "$out/interpolate-b.png" --frames 8 --fps 4 --bounce \
    -o "$out/interpolate.png" --seed 1 -q
# between two prompts, through the prior
"$unclip" interpolate --from-prompt "a green triangle" --to-prompt "a yellow square" --frames 8 --fps 4 --bounce \
    -o "$out/interpolate-prompts.png" --seed 3 -q
ls "$out"
