#!/usr/bin/env python3
"""Scores generated images against their prompts in the captioned-shapes world (world.py): objects are found by
palette colour and connected components, shapes classified from geometry, sizes and relations checked.

    python evaluate.py results.json          # [{"prompt": ..., "image": "path.png"}, ...] → summary on stdout

Categories: single-object prompts (colour and shape right, size too when named), two-object prompts (both objects
and the relation right), and prompts containing a held-out combination (purple triangle / orange circle).
"""
import json
import re
import sys
from collections import deque

import numpy as np
from PIL import Image

from world import COLORS, HELD_OUT, RELATIONS, SHAPES, relation_holds

# A pixel belongs to a palette colour when it is closer to it than to the background and every other colour, and
# within this RGB distance (generated images are not exact).
MAX_DISTANCE = 70.0
MIN_AREA_FRACTION = 0.01   # components smaller than 1% of the canvas are noise
SMALL_LARGE_SPLIT = 0.32   # bounding-box side / canvas between the two size ranges (0.28 … 0.36)

NP = r"(?:an?) (?:(small|large) )?(" + "|".join(COLORS) + r") (" + "|".join(SHAPES) + r")"
REL = "|".join(sorted(map(re.escape, RELATIONS), key=len, reverse=True))
SINGLE = re.compile(rf"^{NP}$")
PAIR = re.compile(rf"^{NP} ({REL}) {NP}$")


def parse(prompt):
    m = PAIR.match(prompt.strip().lower())
    if m:
        s1, c1, h1, rel, s2, c2, h2 = m.groups()
        return [dict(size=s1, color=c1, shape=h1), dict(size=s2, color=c2, shape=h2)], rel
    m = SINGLE.match(prompt.strip().lower())
    if m:
        s, c, h = m.groups()
        return [dict(size=s, color=c, shape=h)], None
    raise ValueError(f"not a world caption: {prompt!r}")


def components(mask):
    """4-connected components of a boolean mask: list of (ys, xs) arrays."""
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    h, w = mask.shape
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        q, ys, xs = deque([(y0, x0)]), [], []
        seen[y0, x0] = True
        while q:
            y, x = q.popleft()
            ys.append(y)
            xs.append(x)
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    q.append((ny, nx))
        out.append((np.array(ys), np.array(xs)))
    return out


def classify(ys, xs):
    """circle, square or triangle from the fill ratio of the bounding box and where the mass sits."""
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    fill = len(ys) / float(h * w)
    if fill > 0.9:
        return "square"
    # an upright triangle has most of its mass in the lower half; a circle is symmetric
    lower = np.mean(ys > (ys.min() + ys.max()) / 2.0)
    if fill < 0.65 or lower > 0.62:
        return "triangle"
    return "circle"


def detect(image):
    px = np.asarray(image.convert("RGB"), dtype=np.float32)
    canvas = px.shape[1]
    names = list(COLORS)
    palette = np.array([COLORS[n] for n in names] + [(240, 240, 240)], dtype=np.float32)
    dist = np.linalg.norm(px[:, :, None, :] - palette[None, None, :, :], axis=-1)   # H, W, 7
    nearest = dist.argmin(-1)
    close = dist.min(-1) <= MAX_DISTANCE
    found = []
    for i, name in enumerate(names):
        for ys, xs in components((nearest == i) & close):
            if len(ys) < MIN_AREA_FRACTION * canvas * canvas:
                continue
            side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) / canvas
            found.append(dict(color=name, shape=classify(ys, xs), size="small" if side < SMALL_LARGE_SPLIT else "large",
                              center=(xs.mean(), ys.mean()), area=len(ys)))
    return found


def matches(obj, want):
    return obj["color"] == want["color"] and obj["shape"] == want["shape"] and (want["size"] is None or obj["size"] == want["size"])


def score(prompt, image):
    wants, relation = parse(prompt)
    found = detect(image)
    held_out = any((w["color"], w["shape"]) in HELD_OUT for w in wants)
    kind = "single" if relation is None else "two"
    if relation is None:
        ok = any(matches(f, wants[0]) for f in found)
    else:
        ok = False
        for a in (f for f in found if matches(f, wants[0])):
            for b in (f for f in found if matches(f, wants[1]) and f is not a):
                ok = ok or relation_holds(a, b, relation)
    return dict(prompt=prompt, kind=kind, held_out=held_out, correct=bool(ok), found=[(f["size"], f["color"], f["shape"]) for f in found])


def summarize(scores):
    def acc(rows):
        return {"n": len(rows), "accuracy": (sum(r["correct"] for r in rows) / len(rows)) if rows else None}
    return {"single": acc([s for s in scores if s["kind"] == "single" and not s["held_out"]]),
            "two_object": acc([s for s in scores if s["kind"] == "two" and not s["held_out"]]),
            "held_out": acc([s for s in scores if s["held_out"]]),
            "all": acc(scores)}


if __name__ == "__main__":
    rows = json.load(open(sys.argv[1]))
    scores = [score(r["prompt"], Image.open(r["image"])) for r in rows]
    print(json.dumps({"summary": summarize(scores), "scores": scores}, indent=1))
