#!/usr/bin/env bash
# Checks that a tool which reads AUTOMATIC1111 metadata reads our images: makes an image with the built `unclip`
# (the embedded model, few steps) and parses it with PyPI's sd-parsers (pinned, in its own venv).
#   bash scripts/check-a1111-metadata.sh [path/to/unclip]   (default: .build/debug/unclip, as `swift test` builds it)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
unclip="${1:-$here/.build/debug/unclip}"
py="$(bash "$here/scripts/checks-venv.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prompt="一个红色的圆, a red circle on top of a blue square"
"$unclip" generate "$prompt" -o "$work/a.png" --seed 7 --prior-steps 3 --decoder-steps 4 --super-res-steps 2 \
    --decoder-guidance 4.5 -q >/dev/null
PROMPT="$prompt" "$py" - "$work/a.png" <<'PY'
import os, sys
from sd_parsers import ParserManager
info = ParserManager().parse(sys.argv[1])
assert info is not None, "sd-parsers found no metadata"
s = info.samplers[0]
got = dict(generator=info.generator.name, prompt=s.prompts[0].value, sampler=s.name, steps=s.parameters.get("steps"),
           cfg=s.parameters.get("cfg_scale"), seed=s.parameters.get("seed"), model=s.model.name,
           size=info.metadata.get("Size"), prior=info.metadata.get("Prior steps"))
want = dict(generator="AUTOMATIC1111", prompt=os.environ["PROMPT"], sampler="UnCLIP", steps="4", cfg="4.5", seed="7",
            model="unclip-shapes64", size="64x64", prior="3")
bad = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
assert not bad, f"sd-parsers read {bad} (got, want)"
assert len(s.model.hash) == 10, s.model.hash
print("sd-parsers 0.6 reads our A1111 metadata (prompt, sampler, steps, CFG scale, seed, size, model, hash)")
PY
