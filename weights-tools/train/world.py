#!/usr/bin/env python3
"""The captioned-shapes world of the embedded default model (issue 5): fixed rules, so any evaluator can read it.

Background RGB (240,240,240); filled circles, squares and upright triangles without outline, not overlapping,
fully inside the canvas; six exact palette colours; sizes "small" (object ≈ 20–28% of the canvas width) and
"large" (≈ 36–48%), the size word optional in captions; one object ("a red circle", "a large blue square") or two
with a relation that clearly holds (the centroid offset along the named axis is larger than along the other).
A purple triangle and an orange circle never appear in training (held out to measure composition).
Images are drawn without anti-aliasing, so every object pixel is exactly its palette colour.
"""
import random

from PIL import Image, ImageDraw

BACKGROUND = (240, 240, 240)
COLORS = {"red": (220, 50, 50), "green": (50, 170, 70), "blue": (50, 90, 220),
          "yellow": (235, 200, 40), "purple": (150, 70, 190), "orange": (240, 130, 30)}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": (0.20, 0.28), "large": (0.36, 0.48)}
HELD_OUT = {("purple", "triangle"), ("orange", "circle")}
# phrase → (axis, sign): the first object's centroid minus the second's, along the axis, has this sign
# (image y grows downwards, so "above" means a smaller y).
RELATIONS = {"on top of": ("y", -1), "above": ("y", -1), "below": ("y", 1), "under": ("y", 1),
             "to the left of": ("x", -1), "left of": ("x", -1), "to the right of": ("x", 1), "right of": ("x", 1)}


def article(next_word):
    return "an" if next_word[0] in "aeiou" else "a"


def noun_phrase(obj, with_size):
    words = ([obj["size"]] if with_size else []) + [obj["color"], obj["shape"]]
    return " ".join([article(words[0])] + words)


def allowed(color, shape, held_out):
    return held_out or (color, shape) not in HELD_OUT


def random_object(rng, canvas, held_out=False):
    while True:
        color, shape = rng.choice(sorted(COLORS)), rng.choice(SHAPES)
        if allowed(color, shape, held_out):
            break
    size = rng.choice(sorted(SIZES))
    lo, hi = SIZES[size]
    extent = max(3, round(rng.uniform(lo, hi) * canvas))
    return {"color": color, "shape": shape, "size": size, "extent": extent}


def boxes_overlap(a, b, gap=1):
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def place(rng, obj, canvas):
    e = obj["extent"]
    x0, y0 = rng.randint(0, canvas - e), rng.randint(0, canvas - e)
    obj["box"] = (x0, y0, x0 + e, y0 + e)
    # the centroid of the filled shape (an upright triangle's sits 2/3 of the way down)
    obj["center"] = (x0 + e / 2, y0 + (2 * e / 3 if obj["shape"] == "triangle" else e / 2))


def relation_holds(a, b, relation, margin=0.0):
    """The centroid offset along the relation's axis has the right sign and exceeds the offset along the other
    axis, both by `margin` pixels (training scenes use a margin so the relation clearly holds)."""
    axis, sign = RELATIONS[relation]
    dx, dy = a["center"][0] - b["center"][0], a["center"][1] - b["center"][1]
    along, other = (dy, dx) if axis == "y" else (dx, dy)
    return along * sign > margin and abs(along) > abs(other) + margin


def sample_scene(rng, canvas, two_objects=None, held_out=False):
    """A scene and its caption. held_out=True lets the held-out combinations appear (evaluation only)."""
    if two_objects is None:
        two_objects = rng.random() < 0.5
    with_size = rng.random() < 0.5
    if not two_objects:
        obj = random_object(rng, canvas, held_out)
        place(rng, obj, canvas)
        return {"objects": [obj], "caption": noun_phrase(obj, with_size)}
    relation = rng.choice(sorted(RELATIONS))
    for _ in range(1000):
        a, b = random_object(rng, canvas, held_out), random_object(rng, canvas, held_out)
        if (a["color"], a["shape"]) == (b["color"], b["shape"]):
            continue
        for _ in range(50):
            place(rng, a, canvas)
            place(rng, b, canvas)
            if not boxes_overlap(a["box"], b["box"]) and relation_holds(a, b, relation, margin=0.05 * canvas):
                caption = f"{noun_phrase(a, with_size)} {relation} {noun_phrase(b, with_size)}"
                return {"objects": [a, b], "caption": caption, "relation": relation}
    raise RuntimeError("could not place two objects")


def render(scene, canvas):
    img = Image.new("RGB", (canvas, canvas), BACKGROUND)
    d = ImageDraw.Draw(img)
    for o in scene["objects"]:
        x0, y0, x1, y1 = o["box"]
        c = COLORS[o["color"]]
        if o["shape"] == "square":
            d.rectangle((x0, y0, x1 - 1, y1 - 1), fill=c)
        elif o["shape"] == "circle":
            d.ellipse((x0, y0, x1 - 1, y1 - 1), fill=c)
        else:  # upright triangle: apex at the top centre
            d.polygon([((x0 + x1 - 1) / 2, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], fill=c)
    return img


if __name__ == "__main__":
    rng = random.Random(0)
    for _ in range(5):
        print(sample_scene(rng, 64)["caption"])
