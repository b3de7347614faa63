#!/usr/bin/env python3
r"""Inpainting / outpainting benchmark on the captioned-shapes world (issue 11): `unclip edit` and `unclip extend`
run from the command line on scenes the engine itself generated, scored by evaluate.py's rules.

    weights-tools/.venv/bin/python weights-tools/train/edit_bench.py --out /tmp/edit-bench            # 150 cases
    weights-tools/.venv/bin/python weights-tools/train/edit_bench.py --cases 12 --stream validation --out /tmp/eb \
        --engine-args="--resamples 2" --cache /tmp/eb-cache              # tuning: validation stream, sources cached
    weights-tools/.venv/bin/python weights-tools/train/edit_bench.py --self-test   # scoring helpers vs evaluate.py

Flags: --engine PATH (default <repo>/.build/release/unclip), -m/--model (default: the engine's embedded model),
--cases N (150), --stream eval|validation, --engine-args (edit and extend; write it with '=' since its value starts
with '-'), --edit-args, --extend-args, --generate-args (all repeatable), --source-tries (8), --cache DIR, --grid N,
--no-untouched, --only CATEGORY.

Cases come from their own fixed stream (--stream eval: seed 9001, the reported figures; --stream validation: seed
9002, for choosing engine settings), case i drawn from its own generator, so --cases 12 is the first 12 of the 150.
Case i is, by i mod 3:

  add      a one-object scene generated from a single-object caption (world.py's grammar); the mask is the strip
           along one side that stays >= 3 px clear of the object's bounding box (at most half the canvas, at least
           20 px); the prompt names the original object and a new one in the relation that puts the new one in the
           strip ("a red circle to the left of a blue square" or "a blue square to the right of a red circle").
           Success: the evaluator accepts the two-object prompt, the original object's centroid moved <= 3 px, no
           kept pixel changed.
  remove   (even cases of the middle third) a two-object scene (two different colours); the mask is one object's
           bounding box dilated by 3 px (it must stay clear of the other object); prompt: the remaining object's
           single-object caption. Success: the evaluator accepts it, the removed colour is gone from the masked
           region (fewer of its pixels there than the evaluator's noise floor, 1% of the 64x64 canvas), no kept pixel
           changed.
  replace  (odd cases of the middle third) a one-object scene; mask as for remove; prompt: an object of another
           colour (any shape). Success: the evaluator accepts it, the new object's bounding-box centre is within
           4 px of the old one's (box centres, not mass centroids: a triangle's centroid sits lower than a square's
           in the same box), the old colour is gone from the masked region, no kept pixel changed.
  extend   a one-object 64x64 scene grown by 32 px on one side (96x64 or 64x96) with a two-object prompt whose
           relation puts the new object in the new area. Success: the evaluator accepts the result, the original
           object's centroid (at its new offset) moved <= 3 px, the original pixels are byte-identical at their offset.

Sources are regenerated with the next seed (at most --source-tries) until the evaluator finds the caption's
object(s) and nothing else, and the mask geometry fits. "strict" success also requires that the result holds
exactly the prompt's objects (evaluate.py accepts extra objects).

Seam measure (issue 11's): the mean |dR|+|dG|+|dB| over 4-neighbour pixel pairs across the border of the
regenerated region, divided by the same mean over pairs inside it, pooled over cases (sums of steps / counts of
pairs; also the median of per-case ratios). Reported for the edits and for untouched images with the same masks: a
plain `unclip generate` of the edit's prompt with the edit's seed (for extend: the half of a 64x64 image on the
extension side), and for add/remove/replace also the source image itself. Target: edits <= 1.5x untouched
("edit_over_untouched"). That ratio depends on what the region holds (a removed object leaves flat background
inside, so any border step looks large; an untouched image's region often holds an object edge), so a second,
local one is reported beside it: border mean / mean over the pairs parallel to the border pairs one pixel to either
side ("local_ratio", ~1 on untouched images; "edit_over_untouched_local").

Timing: the wall clock of every CLI call (sources and untouched references are plain generations), cached calls
excluded; the machine's load average at the end is recorded (other work on the machine inflates it).

Scoring: evaluate.py's detection (palette distance 70, 4-connected components >= 1% of the canvas, shape from
geometry, relation from centroids), except that the object scale is the model's 64-px canvas: evaluate.detect takes
the image *width* as the canvas, so on a 96x64 image it raises the noise floor to 1% of 96^2 and calls every large
object small. detect_objects() below is evaluate.detect with the canvas fixed (identical on 64x64 images: checked on
every 64x64 result and by --self-test). Prompts carry no size words, so sizes are not judged.

Writes <out>/summary.json (rates per category, seam ratios, timings, counts, seeds, the exact command lines),
<out>/cases.jsonl (one record per case), <out>/grid.png (the first --grid cases: before / mask / after) and the
images under <out>/cases/.
"""
import argparse
import hashlib
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import evaluate  # noqa: E402
from evaluate import MAX_DISTANCE, MIN_AREA_FRACTION, SMALL_LARGE_SPLIT, classify, components, parse  # noqa: E402
from world import BACKGROUND, COLORS, SHAPES, allowed, noun_phrase, relation_holds, render, sample_scene  # noqa: E402

EVAL_SEED = 9001         # the reported benchmark's stream
VALIDATION_SEED = 9002   # a second stream, for choosing engine settings
CANVAS = 64              # the model's image size: the scale objects are drawn and judged at
CATEGORIES = ("add", "remove", "replace", "extend")

BOX_MARGIN = 3           # px between an object's bounding box and a mask edge (soft edges, halos)
MIN_STRIP = 20           # the narrowest free strip an add case masks (a small object is 13–18 px)
EXTEND_BY = 32
CENTROID_TOLERANCE = 3.0   # px the original object may move (add, extend)
REPLACE_TOLERANCE = 4.0    # px between the old and the new object's bounding-box centres (replace)
LEFTOVER_PIXELS = MIN_AREA_FRACTION * CANVAS * CANVAS   # the evaluator's noise floor (41 px)

# side of the new object relative to the original → phrases "NEW <phrase> ORIGINAL" / "ORIGINAL <phrase> NEW"
SIDE_PHRASES = {"left": ("to the left of", "left of"), "right": ("to the right of", "right of"),
                "up": ("on top of", "above"), "down": ("below", "under")}
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
SIDES = ("left", "right", "up", "down")


# ---------------------------------------------------------------------------------------------------------------
# scoring: evaluate.py's rules at the model's scale

_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[n] for n in _NAMES] + [BACKGROUND], dtype=np.float32)


def palette_labels(image):
    """Per pixel: the index of its palette colour in COLORS' order, or -1 (background or too far from any), by
    evaluate.detect's rule."""
    px = np.asarray(image.convert("RGB"), dtype=np.float32)
    dist = np.linalg.norm(px[:, :, None, :] - _PALETTE[None, None, :, :], axis=-1)
    nearest, close = dist.argmin(-1), dist.min(-1) <= MAX_DISTANCE
    return np.where(close & (nearest < len(_NAMES)), nearest, -1)


def detect_objects(image, canvas=CANVAS):
    """evaluate.detect with the canvas (noise floor, size split) fixed instead of the image width; also returns each
    object's pixels and bounding box (x0, y0, x1, y1), x1/y1 exclusive."""
    labels = palette_labels(image)
    found = []
    for i, name in enumerate(_NAMES):
        for ys, xs in components(labels == i):
            if len(ys) < MIN_AREA_FRACTION * canvas * canvas:
                continue
            side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) / canvas
            found.append(dict(color=name, shape=classify(ys, xs), size="small" if side < SMALL_LARGE_SPLIT else "large",
                              center=(float(xs.mean()), float(ys.mean())), area=int(len(ys)),
                              box=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), ys=ys, xs=xs))
    return found


def score_at(prompt, image, canvas=CANVAS):
    """evaluate.score on detect_objects(canvas): (correct, found)."""
    wants, relation = parse(prompt)
    found = detect_objects(image, canvas)
    if relation is None:
        ok = any(evaluate.matches(f, wants[0]) for f in found)
    else:
        ok = any(relation_holds(a, b, relation) for a in found if evaluate.matches(a, wants[0])
                 for b in found if b is not a and evaluate.matches(b, wants[1]))
    return bool(ok), found


def public(found):
    return [dict(color=f["color"], shape=f["shape"], size=f["size"], center=[round(c, 2) for c in f["center"]],
                 area=f["area"], box=list(f["box"])) for f in found]


def box_center(box):
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def dist(p, q):
    return float(np.hypot(p[0] - q[0], p[1] - q[1]))


def nearest_match(found, color, shape, point, key="center"):
    """The found object of this colour and shape nearest `point` (its centroid, or key='box' its box centre)."""
    cands = [f for f in found if f["color"] == color and f["shape"] == shape]
    if not cands:
        return None, None
    where = (lambda f: f["center"]) if key == "center" else (lambda f: box_center(f["box"]))
    best = min(cands, key=lambda f: dist(where(f), point))
    return best, dist(where(best), point)


def colour_pixels_in(image, region, color):
    """Pixels of the regenerated region that evaluate.detect's rule gives this palette colour."""
    return int(((palette_labels(image) == _NAMES.index(color)) & region).sum())


# ---------------------------------------------------------------------------------------------------------------
# masks, invariants, seams

def box_region(shape_hw, box, margin):
    h, w = shape_hw
    r = np.zeros((h, w), dtype=bool)
    r[max(0, box[1] - margin):min(h, box[3] + margin), max(0, box[0] - margin):min(w, box[2] + margin)] = True
    return r


def strip_region(shape_hw, side, width):
    h, w = shape_hw
    r = np.zeros((h, w), dtype=bool)
    if side == "left":
        r[:, :width] = True
    elif side == "right":
        r[:, w - width:] = True
    elif side == "up":
        r[:width, :] = True
    else:
        r[h - width:, :] = True
    return r


def write_mask(region, path):
    """RGBA, the image's size: alpha 0 (and white) where the engine regenerates, opaque black elsewhere, so the
    file means the same in --mask-mode alpha and luminance."""
    m = np.zeros(region.shape + (4,), dtype=np.uint8)
    m[..., :3] = np.where(region[..., None], 255, 0)
    m[..., 3] = np.where(region, 0, 255)
    Image.fromarray(m, "RGBA").save(path)


def kept_violations(before, after, offset, region):
    """Pixels outside `region` (on the result's canvas) that differ from the source's at `offset`: (count, note)."""
    a = np.asarray(before)
    b = np.asarray(after)
    if a.ndim != b.ndim or (a.ndim == 3 and a.shape[2] != b.shape[2]):
        note = f"mode {before.mode} -> {after.mode}"
        a, b = np.asarray(before.convert("RGB")), np.asarray(after.convert("RGB"))
    else:
        note = None
    h, w = region.shape
    if b.shape[:2] != (h, w):
        return int((~region).sum()), f"size {after.size[0]}x{after.size[1]}, expected {w}x{h}"
    ox, oy = offset
    sub = b[oy:oy + a.shape[0], ox:ox + a.shape[1]]
    keep = ~region[oy:oy + a.shape[0], ox:ox + a.shape[1]]
    differ = (sub != a).reshape(a.shape[0], a.shape[1], -1).any(-1)
    return int((differ & keep).sum()), note


def seam_stats(image, region):
    """Sums and counts of |dR|+|dG|+|dB| over 4-neighbour pairs across the region's border ("border"), inside it
    ("inside": the issue's measure is border mean / inside mean), and the pairs parallel to border pairs one pixel
    to either side of the border, not themselves across it ("beside": border mean / beside mean is a local contrast
    that does not depend on what the region holds, ≈ 1 where there is no seam)."""
    px = np.asarray(image.convert("RGB"), dtype=np.int32)
    out = dict(border_sum=0, border_n=0, inside_sum=0, inside_n=0, beside_sum=0, beside_n=0)
    for axis in (1, 0):
        d = np.abs(np.diff(px, axis=axis)).sum(-1)
        ra, rb = (region[:, 1:], region[:, :-1]) if axis == 1 else (region[1:], region[:-1])
        border, inside = ra != rb, ra & rb
        beside = np.zeros_like(border)
        if axis == 1:
            beside[:, :-1] |= border[:, 1:]
            beside[:, 1:] |= border[:, :-1]
        else:
            beside[:-1] |= border[1:]
            beside[1:] |= border[:-1]
        beside &= ~border
        for name, sel in (("border", border), ("inside", inside), ("beside", beside)):
            out[name + "_sum"] += int(d[sel].sum())
            out[name + "_n"] += int(sel.sum())
    mean = {k: (out[k + "_sum"] / out[k + "_n"]) if out[k + "_n"] else None for k in ("border", "inside", "beside")}
    out.update(border_mean=mean["border"], inside_mean=mean["inside"], beside_mean=mean["beside"])
    out["ratio"] = (mean["border"] / mean["inside"]) if (mean["border"] is not None and mean["inside"]) else None
    out["local_ratio"] = (mean["border"] / mean["beside"]) if (mean["border"] is not None and mean["beside"]) else None
    return out


def pooled_ratio(stats, denominator="inside"):
    stats = [s for s in stats if s]
    bn, dn = sum(s["border_n"] for s in stats), sum(s[denominator + "_n"] for s in stats)
    if not bn or not dn:
        return None
    b, i = sum(s["border_sum"] for s in stats) / bn, sum(s[denominator + "_sum"] for s in stats) / dn
    return (b / i) if i else None


def seam_summary(stats):
    ratios = [s["ratio"] for s in stats if s and s["ratio"] is not None]
    local = [s["local_ratio"] for s in stats if s and s["local_ratio"] is not None]
    return {"n": len([s for s in stats if s]), "pooled_ratio": pooled_ratio(stats),
            "median_ratio": statistics.median(ratios) if ratios else None,
            "pooled_local_ratio": pooled_ratio(stats, "beside"),
            "median_local_ratio": statistics.median(local) if local else None}


def seam_compare(edit_stats, untouched_stats):
    e, u = seam_summary(edit_stats), seam_summary(untouched_stats)
    q = lambda a, b: (a / b) if (a and b) else None   # noqa: E731
    return {"edit": e, "untouched_generation": u, "edit_over_untouched": q(e["pooled_ratio"], u["pooled_ratio"]),
            "edit_over_untouched_local": q(e["pooled_local_ratio"], u["pooled_local_ratio"])}


# ---------------------------------------------------------------------------------------------------------------
# the engine

class EngineError(RuntimeError):
    pass


class Engine:
    def __init__(self, path, model, generate_args, edit_args, extend_args, cache):
        self.path, self.model, self.cache = path, model, cache
        self.generate_args, self.edit_args, self.extend_args = generate_args, edit_args, extend_args
        self.calls = []   # (kind, seconds, cached)
        self.failures = {}
        self.model_key = None
        if cache:
            os.makedirs(cache, exist_ok=True)
            m = model or os.path.join(REPO, "models", "unclip-shapes64-q8.gguf")
            st = os.stat(m)
            self.model_key = [os.path.realpath(m), st.st_size, int(st.st_mtime)]

    def _m(self):
        return ["-m", self.model] if self.model else []

    def _run(self, kind, argv, out):
        t = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        printed = p.stdout.strip().splitlines()
        if p.returncode != 0 or not os.path.exists(out):
            self.failures[kind] = self.failures.get(kind, 0) + 1
            raise EngineError(f"{shlex.join(argv)}: exit {p.returncode}: {p.stderr.strip()[-600:]}")
        if not printed or os.path.realpath(printed[-1]) != os.path.realpath(out):
            self.failures[kind] = self.failures.get(kind, 0) + 1
            raise EngineError(f"{shlex.join(argv)}: printed {p.stdout.strip()!r}, not the written path {out}")
        self.calls.append((kind, seconds, False))   # timings of successful calls only
        return seconds

    def generate_argv(self, prompt, seed, out):
        return [self.path, "generate", prompt, "-o", out, "--seed", str(seed), "-q"] + self._m() + self.generate_args

    def generate(self, prompt, seed, out):
        argv = self.generate_argv(prompt, seed, out)
        key = None
        if self.cache:
            key = hashlib.sha256(json.dumps([self.model_key, prompt, seed, self.generate_args]).encode()).hexdigest()
            hit = os.path.join(self.cache, key + ".png")
            if os.path.exists(hit):
                shutil.copyfile(hit, out)
                self.calls.append(("generate", 0.0, True))
                return argv, None
        seconds = self._run("generate", argv, out)
        if key:
            shutil.copyfile(out, os.path.join(self.cache, key + ".png"))
        return argv, seconds

    def edit_argv(self, image, mask, prompt, seed, out):
        return ([self.path, "edit", image, "--mask", mask, prompt, "-o", out, "--seed", str(seed), "-q"] + self._m()
                + self.edit_args)

    def edit(self, image, mask, prompt, seed, out):
        argv = self.edit_argv(image, mask, prompt, seed, out)
        return argv, self._run("edit", argv, out)

    def extend_argv(self, image, prompt, side, n, seed, out):
        return ([self.path, "extend", image, prompt, f"--{side}", str(n), "-o", out, "--seed", str(seed), "-q"]
                + self._m() + self.extend_args)

    def extend(self, image, prompt, side, n, seed, out):
        argv = self.extend_argv(image, prompt, side, n, seed, out)
        return argv, self._run("extend", argv, out)


# ---------------------------------------------------------------------------------------------------------------
# cases

def category_of(i):
    k = i % 3
    if k == 0:
        return "add"
    if k == 2:
        return "extend"
    return "remove" if (i // 3) % 2 == 0 else "replace"


def np_phrase(color, shape):
    return noun_phrase({"color": color, "shape": shape}, False)


def new_object(rng, avoid_pair=None, avoid_color=None):
    while True:
        color, shape = rng.choice(sorted(COLORS)), rng.choice(SHAPES)
        if not allowed(color, shape, False) or (color, shape) == avoid_pair or color == avoid_color:
            continue
        return color, shape


def pair_prompt(rng, orig, new, side):
    """A two-object caption whose relation puts `new` on `side` of `orig`, in either order."""
    o, n = np_phrase(orig["color"], orig["shape"]), np_phrase(*new)
    if rng.random() < 0.5:
        return f"{n} {rng.choice(SIDE_PHRASES[side])} {o}"
    return f"{o} {rng.choice(SIDE_PHRASES[OPPOSITE[side]])} {n}"


def one_object_caption(rng):
    return sample_scene(rng, CANVAS, two_objects=False)["caption"]


def two_object_caption(rng):
    while True:
        scene = sample_scene(rng, CANVAS, two_objects=True)
        a, b = scene["objects"]
        if a["color"] != b["color"]:
            return scene["caption"]


class Bench:
    def __init__(self, args, engine):
        self.args, self.engine = args, engine
        self.stream_seed = VALIDATION_SEED if args.stream == "validation" else EVAL_SEED
        self.dir = os.path.join(args.out, "cases")
        os.makedirs(self.dir, exist_ok=True)

    def seeds(self, i):
        base = self.stream_seed * 100000 + i * 16   # tries use base+0…, the edit base+15 (cases never share seeds)
        return base, base + 15

    def path(self, i, name):
        return os.path.join(self.dir, f"{i:04d}-{name}.png")

    def source(self, i, caption, n_objects, accept):
        """Generate `caption` with seeds base, base+1, … until the evaluator finds its objects and nothing else
        and accept(found) gives a plan (not None). Returns (path, seed, found, plan, tries, commands)."""
        base, _ = self.seeds(i)
        out, tmp, commands = self.path(i, "source"), self.path(i, "source-try"), []
        for t in range(self.args.source_tries):
            argv, _ = self.engine.generate(caption, base + t, tmp)
            commands.append(shlex.join(argv))
            img = Image.open(tmp)
            img.load()
            ok, found = score_at(caption, img)
            if ok and len(found) == n_objects:
                plan = accept(found)
                if plan is not None:
                    os.replace(tmp, out)
                    return out, base + t, found, plan, t + 1, commands
        if os.path.exists(tmp):
            os.remove(tmp)
        return None, None, None, None, self.args.source_tries, commands

    def run_case(self, i):
        cat = category_of(i)
        rng = random.Random(f"edit-bench-{self.stream_seed}-{i}")
        rec = dict(case=i, category=cat, stream=self.args.stream)
        try:
            getattr(self, "case_" + cat)(i, rng, rec)
        except EngineError as e:
            rec.update(success=False, strict=False, error=str(e))
            print(f"case {i} ({cat}): {e}", file=sys.stderr)
        return rec

    # -- add ------------------------------------------------------------------------------------------------
    def case_add(self, i, rng, rec):
        caption = one_object_caption(rng)

        def accept(found):
            x0, y0, x1, y1 = found[0]["box"]
            free = {"left": x0 - BOX_MARGIN, "right": CANVAS - x1 - BOX_MARGIN,
                    "up": y0 - BOX_MARGIN, "down": CANVAS - y1 - BOX_MARGIN}
            sides = [s for s in SIDES if free[s] >= MIN_STRIP]
            if not sides:
                return None
            side = rng.choice(sides)
            return side, min(free[side], CANVAS // 2)

        src, seed, found, plan, tries, cmds = self.source(i, caption, 1, accept)
        rec.update(source_caption=caption, source_tries=tries, source_commands=cmds)
        if src is None:
            rec.update(success=None, strict=None, error="no usable source")
            return
        orig = found[0]
        side, width = plan
        new = new_object(rng, avoid_pair=(orig["color"], orig["shape"]))
        prompt = pair_prompt(rng, orig, new, side)
        region = strip_region((CANVAS, CANVAS), side, width)
        rec.update(source=src, source_seed=seed, source_objects=public(found), side=side, strip=width,
                   new_object=list(new), prompt=prompt)
        self.edit_and_score(i, rec, src, region, prompt, orig)

    # -- remove ---------------------------------------------------------------------------------------------
    def case_remove(self, i, rng, rec):
        caption = two_object_caption(rng)
        wants, _ = parse(caption)
        drop = rng.randrange(2)

        def accept(found):
            by_want = []
            for w in wants:
                m = [f for f in found if evaluate.matches(f, w)]
                if len(m) != 1:
                    return None
                by_want.append(m[0])
            if by_want[0] is by_want[1]:
                return None
            gone, kept = by_want[drop], by_want[1 - drop]
            region = box_region((CANVAS, CANVAS), gone["box"], BOX_MARGIN)
            if box_region((CANVAS, CANVAS), kept["box"], 1)[region].any():   # the kept object (+1 px) must stay outside
                return None
            return gone, kept, region

        src, seed, found, plan, tries, cmds = self.source(i, caption, 2, accept)
        rec.update(source_caption=caption, source_tries=tries, source_commands=cmds)
        if src is None:
            rec.update(success=None, strict=None, error="no usable source")
            return
        gone, kept, region = plan
        prompt = np_phrase(kept["color"], kept["shape"])
        rec.update(source=src, source_seed=seed, source_objects=public(found), removed=[gone["color"], gone["shape"]],
                   prompt=prompt)
        self.edit_and_score(i, rec, src, region, prompt, kept, gone=gone)

    # -- replace --------------------------------------------------------------------------------------------
    def case_replace(self, i, rng, rec):
        caption = one_object_caption(rng)
        src, seed, found, _, tries, cmds = self.source(i, caption, 1, lambda found: True)
        rec.update(source_caption=caption, source_tries=tries, source_commands=cmds)
        if src is None:
            rec.update(success=None, strict=None, error="no usable source")
            return
        old = found[0]
        new = new_object(rng, avoid_color=old["color"])
        prompt = np_phrase(*new)
        region = box_region((CANVAS, CANVAS), old["box"], BOX_MARGIN)
        rec.update(source=src, source_seed=seed, source_objects=public(found), new_object=list(new), prompt=prompt)
        self.edit_and_score(i, rec, src, region, prompt, None, gone=old, replace_with=new)

    def edit_and_score(self, i, rec, src, region, prompt, keep_obj, gone=None, replace_with=None):
        _, edit_seed = self.seeds(i)
        mask, after_path = self.path(i, "mask"), self.path(i, "after")
        write_mask(region, mask)
        rec.update(mask=mask, regenerated_pixels=int(region.sum()), edit_seed=edit_seed)
        argv, seconds = self.engine.edit(src, mask, prompt, edit_seed, after_path)
        rec.update(command=shlex.join(argv), seconds=seconds, after=after_path)
        before, after = Image.open(src), Image.open(after_path)
        before.load()
        after.load()
        viol, note = kept_violations(before, after, (0, 0), region)
        rec.update(kept_violations=viol, invariant_note=note)
        size_ok = after.size == before.size
        ok, found = score_at(prompt, after) if size_ok else (False, [])
        rec.update(evaluator_correct=ok, found=public(found))
        if size_ok:   # evaluate.py itself on the 64×64 result: must agree
            ev = evaluate.score(prompt, after.convert("RGB"))["correct"]
            if ev != ok:
                raise AssertionError(f"case {i}: detect_objects disagrees with evaluate.py on a 64x64 image")
        checks = [ok, viol == 0]
        if keep_obj is not None and rec["category"] == "add":
            m, shift = nearest_match(found, keep_obj["color"], keep_obj["shape"], keep_obj["center"])
            rec["original_shift"] = shift
            checks.append(shift is not None and shift <= CENTROID_TOLERANCE)
        if gone is not None and size_ok:
            left = colour_pixels_in(after, region, gone["color"])
            rec["leftover_pixels"] = left
            checks.append(left < LEFTOVER_PIXELS)
        if replace_with is not None:
            m, d = nearest_match(found, replace_with[0], replace_with[1], box_center(gone["box"]), key="box")
            rec["replace_box_distance"] = d
            checks.append(d is not None and d <= REPLACE_TOLERANCE)
        rec["success"] = bool(all(checks))
        rec["strict"] = bool(rec["success"] and len(found) == len(parse(prompt)[0]))
        if size_ok:
            rec["seam_edit"] = seam_stats(after, region)
        rec["seam_source"] = seam_stats(before, region)
        self.untouched(i, rec, prompt, edit_seed, region)

    # -- extend ---------------------------------------------------------------------------------------------
    def case_extend(self, i, rng, rec):
        caption = one_object_caption(rng)
        src, seed, found, _, tries, cmds = self.source(i, caption, 1, lambda found: True)
        rec.update(source_caption=caption, source_tries=tries, source_commands=cmds)
        if src is None:
            rec.update(success=None, strict=None, error="no usable source")
            return
        orig = found[0]
        side = rng.choice(SIDES)
        new = new_object(rng, avoid_pair=(orig["color"], orig["shape"]))
        prompt = pair_prompt(rng, orig, new, side)
        w, h = (CANVAS + EXTEND_BY, CANVAS) if side in ("left", "right") else (CANVAS, CANVAS + EXTEND_BY)
        offset = (EXTEND_BY if side == "left" else 0, EXTEND_BY if side == "up" else 0)
        region = strip_region((h, w), side, EXTEND_BY)
        _, edit_seed = self.seeds(i)
        after_path = self.path(i, "after")
        rec.update(source=src, source_seed=seed, source_objects=public(found), side=side, new_object=list(new),
                   prompt=prompt, edit_seed=edit_seed, size=[w, h], offset=list(offset))
        argv, seconds = self.engine.extend(src, prompt, side, EXTEND_BY, edit_seed, after_path)
        rec.update(command=shlex.join(argv), seconds=seconds, after=after_path)
        before, after = Image.open(src), Image.open(after_path)
        before.load()
        after.load()
        viol, note = kept_violations(before, after, offset, region)
        rec.update(kept_violations=viol, invariant_note=note)
        size_ok = after.size == (w, h)
        ok, found2 = score_at(prompt, after) if size_ok else (False, [])
        rec.update(evaluator_correct=ok, found=public(found2),
                   evaluate_py_correct=evaluate.score(prompt, after.convert("RGB"))["correct"] if size_ok else None)
        moved = (orig["center"][0] + offset[0], orig["center"][1] + offset[1])
        m, shift = nearest_match(found2, orig["color"], orig["shape"], moved)
        rec["original_shift"] = shift
        nm, _ = nearest_match(found2, new[0], new[1], (w / 2, h / 2))
        rec["new_object_in_new_area"] = bool(nm is not None and region[min(h - 1, int(round(nm["center"][1]))),
                                                                         min(w - 1, int(round(nm["center"][0])))])
        rec["success"] = bool(ok and viol == 0 and shift is not None and shift <= CENTROID_TOLERANCE)
        rec["strict"] = bool(rec["success"] and len(found2) == 2)
        if size_ok:
            rec["seam_edit"] = seam_stats(after, region)
        self.untouched(i, rec, prompt, edit_seed, strip_region((CANVAS, CANVAS), side, CANVAS // 2))

    def untouched(self, i, rec, prompt, seed, region):
        """The seam ratio of a plain generation of the same prompt and seed, with the same mask geometry."""
        if self.args.no_untouched:
            return
        path = self.path(i, "untouched")
        argv, _ = self.engine.generate(prompt, seed, path)
        rec.update(untouched=path, untouched_command=shlex.join(argv), seam_untouched=seam_stats(Image.open(path), region))


# ---------------------------------------------------------------------------------------------------------------
# summary and grid

def timing(calls, failures, kind):
    s = [sec for k, sec, cached in calls if k == kind and not cached]
    out = {"n": len(s), "cached": sum(1 for k, _, c in calls if k == kind and c), "failed": failures.get(kind, 0)}
    if s:
        out.update(mean_s=statistics.mean(s), median_s=statistics.median(s), min_s=min(s), max_s=max(s))
    return out


def summarize_cases(records, engine, args, stream_seed, started, wall):
    out = {"categories": {}}
    for cat in CATEGORIES + ("remove_or_replace",):
        rows = [r for r in records if (r["category"] == cat or (cat == "remove_or_replace" and r["category"] in ("remove", "replace")))]
        scored = [r for r in rows if r.get("success") is not None]
        n = len(scored)
        c = {"cases": len(rows), "scored": n, "no_source": sum(1 for r in rows if r.get("error") == "no usable source"),
             "engine_errors": sum(1 for r in rows if r.get("error") and r["error"] != "no usable source"),
             "success": sum(r["success"] for r in scored), "success_rate": (sum(r["success"] for r in scored) / n) if n else None,
             "strict_success_rate": (sum(r["strict"] for r in scored) / n) if n else None,
             "evaluator_rate": (sum(bool(r.get("evaluator_correct")) for r in scored) / n) if n else None,
             "kept_pixel_violations": sum(r.get("kept_violations", 0) or 0 for r in scored),
             "cases_with_violations": sum(1 for r in scored if r.get("kept_violations")),
             "source_tries_mean": statistics.mean([r["source_tries"] for r in rows]) if rows else None}
        if cat in ("remove", "replace", "remove_or_replace"):
            c["leftover_colour_ok_rate"] = (sum(r.get("leftover_pixels", 1e9) < LEFTOVER_PIXELS for r in scored) / n) if n else None
        if cat in ("add", "extend"):
            c["original_kept_rate"] = (sum(r.get("original_shift") is not None and r["original_shift"] <= CENTROID_TOLERANCE
                                           for r in scored) / n) if n else None
        if cat == "replace":
            c["in_place_rate"] = (sum(r.get("replace_box_distance") is not None and r["replace_box_distance"] <= REPLACE_TOLERANCE
                                      for r in scored) / n) if n else None
        if cat == "extend":
            c["evaluate_py_as_is_rate"] = (sum(bool(r.get("evaluate_py_correct")) for r in scored) / n) if n else None
            c["new_object_in_new_area_rate"] = (sum(bool(r.get("new_object_in_new_area")) for r in scored) / n) if n else None
        c["seam"] = seam_compare([r.get("seam_edit") for r in scored], [r.get("seam_untouched") for r in scored])
        if cat != "extend":
            c["seam"]["source_image"] = seam_summary([r.get("seam_source") for r in scored])
        secs = [r["seconds"] for r in scored if r.get("seconds") is not None]
        c["seconds_per_edit"] = {"mean": statistics.mean(secs), "median": statistics.median(secs)} if secs else None
        out["categories"][cat] = c
    scored = [r for r in records if r.get("success") is not None]
    out["seam_all"] = seam_compare([r.get("seam_edit") for r in scored], [r.get("seam_untouched") for r in scored])
    out["seam_all"]["target_max"] = 1.5
    out["kept_pixel_violations_total"] = sum(r.get("kept_violations", 0) or 0 for r in scored)
    out["targets"] = {"add": 0.85, "remove_or_replace": 0.85, "extend": 0.75, "seam_edit_over_untouched": 1.5}
    out["timing"] = {k: timing(engine.calls, engine.failures, k) for k in ("generate", "edit", "extend")}
    model_file = args.model or os.path.join(REPO, "models", "unclip-shapes64-q8.gguf")
    return {
        "stream": args.stream, "stream_seed": stream_seed, "cases": len(records),
        "case_seeds": "case i: its own random.Random('edit-bench-<stream seed>-<i>'); engine seeds: source tries "
                      "<stream seed>*100000 + 16i + t, edit/extend and the untouched generation <stream seed>*100000 + 16i + 15",
        "engine": args.engine, "engine_sha256": sha256_file(args.engine) if os.path.isfile(args.engine) else None,
        "model": args.model or "(embedded)",
        "model_sha256": sha256_file(model_file) if os.path.exists(model_file) else None,
        "engine_args": engine.edit_args, "extend_args": engine.extend_args, "generate_args": engine.generate_args,
        "commands": {"generate": shlex.join(engine.generate_argv("<caption>", "<seed>", "<out.png>")),
                     "edit": shlex.join(engine.edit_argv("<source.png>", "<mask.png>", "<prompt>", "<seed>", "<out.png>")),
                     "extend": shlex.join(engine.extend_argv("<source.png>", "<prompt>", "<side>", EXTEND_BY, "<seed>", "<out.png>")),
                     "benchmark": shlex.join([sys.executable] + sys.argv)},
        "settings": {"box_margin_px": BOX_MARGIN, "min_strip_px": MIN_STRIP, "extend_px": EXTEND_BY,
                     "centroid_tolerance_px": CENTROID_TOLERANCE, "replace_box_centre_tolerance_px": REPLACE_TOLERANCE,
                     "leftover_pixels_below": LEFTOVER_PIXELS, "source_tries": args.source_tries, "scoring_canvas": CANVAS},
        "started": started, "wall_s": wall, "loadavg_at_end": list(os.getloadavg()),
        "summary": out}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mask_view(before, region, offset):
    """The source on the result's canvas with the regenerated region hatched in magenta."""
    h, w = region.shape
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    canvas.paste(before.convert("RGB"), offset)
    px = np.asarray(canvas).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    hatch = ((xx + yy) // 3) % 2 == 0
    tint = np.where(hatch[..., None], np.array([255, 0, 255], np.float32), np.array([255, 255, 255], np.float32))
    px = np.where(region[..., None], 0.35 * px + 0.65 * tint, px)
    return Image.fromarray(px.astype(np.uint8))


def grid(records, path, n, scale=2):
    shown = [r for r in records if r.get("source") and r.get("after") and os.path.exists(r["after"])][:n]
    if not shown:
        return
    box = (CANVAS + EXTEND_BY) * scale + 8
    block, text_h, per_row = 3 * box, 30, 2
    rows = (len(shown) + per_row - 1) // per_row
    img = Image.new("RGB", (per_row * block + (per_row - 1) * 16, rows * (box + text_h)), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for k, r in enumerate(shown):
        x, y = (k % per_row) * (block + 16), (k // per_row) * (box + text_h)
        before = Image.open(r["source"]).convert("RGB")
        after = Image.open(r["after"]).convert("RGB")
        if r["category"] == "extend":
            w, h = r["size"]
            region, offset = strip_region((h, w), r["side"], EXTEND_BY), tuple(r["offset"])
        else:
            mk = np.asarray(Image.open(r["mask"]).convert("RGBA"))
            region, offset = mk[..., 3] == 0, (0, 0)
        for j, tile in enumerate((before, mask_view(before, region, offset), after)):
            t = tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST)
            img.paste(t, (x + j * box + 4, y + 4))
        ok = r.get("success")
        label = f"#{r['case']} {r['category']} {'ok' if ok else 'x'}: "
        color = (0, 120, 0) if ok else (160, 0, 0)
        d.text((x + 4, y + box - 2), (label + r["prompt"])[:95], fill=color)
        extra = []
        if r.get("kept_violations"):
            extra.append(f"{r['kept_violations']} kept px changed")
        if r.get("seam_edit") and r["seam_edit"].get("ratio") is not None:
            extra.append(f"seam {r['seam_edit']['ratio']:.2f}")
        if r.get("seconds") is not None:
            extra.append(f"{r['seconds']:.1f} s")
        d.text((x + 4, y + box + 12), "  ".join(extra), fill=(60, 60, 60))
    img.save(path)


# ---------------------------------------------------------------------------------------------------------------
# self-test: the scoring helpers against evaluate.py on exact renders (no engine needed)

def self_test():
    rng = random.Random(5)
    for _ in range(300):
        scene = sample_scene(rng, CANVAS, held_out=rng.random() < 0.3)
        img = render(scene, CANVAS)
        mine = [(f["color"], f["shape"], f["size"], f["center"], f["area"]) for f in detect_objects(img)]
        theirs = [(f["color"], f["shape"], f["size"], (float(f["center"][0]), float(f["center"][1])), f["area"])
                  for f in evaluate.detect(img)]
        assert mine == theirs, (scene["caption"], mine, theirs)
        assert score_at(scene["caption"], img)[0] == evaluate.score(scene["caption"], img)["correct"] is True
    # non-square: a 64×64 render pasted into a 96×64 / 64×96 canvas keeps its caption at the 64-px scale
    wrong_as_is = 0
    for k in range(200):
        scene = sample_scene(rng, CANVAS)
        tile = render(scene, CANVAS)
        side = SIDES[k % 4]
        w, h = (96, 64) if side in ("left", "right") else (64, 96)
        big = Image.new("RGB", (w, h), BACKGROUND)
        big.paste(tile, (32 if side == "left" else 0, 32 if side == "up" else 0))
        assert score_at(scene["caption"], big)[0], scene["caption"]
        wrong_as_is += not evaluate.score(scene["caption"], big)["correct"]
    # the invariant and seam helpers
    a = Image.fromarray(np.full((64, 64, 3), 240, np.uint8))
    r = strip_region((64, 64), "right", 32)
    b = np.asarray(a).copy()
    b[:, 40:] = 0
    b[0, 0] = 1
    assert kept_violations(a, Image.fromarray(b), (0, 0), r) == (1, None)
    s = seam_stats(Image.fromarray(b), r)
    assert s["border_n"] == 64 and s["inside_n"] == 64 * 31 + 63 * 32 and s["beside_n"] == 128
    assert s["border_sum"] == 0 and s["inside_sum"] == 64 * 720 and s["beside_sum"] == 0
    c = np.asarray(a).copy()
    c[:, 32:] = 230                                    # a tone step exactly on the border: a seam
    s = seam_stats(Image.fromarray(c), r)
    assert s["border_sum"] == 64 * 30 and s["inside_sum"] == 0 and s["beside_sum"] == 0 and s["local_ratio"] is None
    ext = Image.new("RGB", (96, 64), (0, 0, 0))
    ext.paste(a, (32, 0))
    assert kept_violations(a, ext, (32, 0), strip_region((64, 96), "left", 32)) == (0, None)
    print(f"self-test ok (evaluate.py as is misjudges {wrong_as_is} of 200 exact renders on 96x64 / 64x96 canvases)")


# ---------------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output folder (made if missing)")
    ap.add_argument("--engine", default=os.path.join(REPO, ".build", "release", "unclip"), help="the unclip CLI")
    ap.add_argument("-m", "--model", help="model file (default: the engine's embedded model)")
    ap.add_argument("--cases", type=int, default=150)
    ap.add_argument("--stream", choices=("eval", "validation"), default="eval",
                    help=f"eval: seed {EVAL_SEED} (reported figures); validation: seed {VALIDATION_SEED} (tuning)")
    ap.add_argument("--engine-args", action="append", default=[],
                    help="extra flags for unclip edit AND extend, e.g. --engine-args='--resample 2' (repeatable)")
    ap.add_argument("--edit-args", action="append", default=[], help="extra flags for unclip edit only")
    ap.add_argument("--extend-args", action="append", default=[], help="extra flags for unclip extend only")
    ap.add_argument("--generate-args", action="append", default=[],
                    help="extra flags for unclip generate (sources and untouched references)")
    ap.add_argument("--source-tries", type=int, default=8, help="seeds tried per case for a usable source (default 8)")
    ap.add_argument("--cache", help="folder caching generated images (key: model file, prompt, seed, generate args; "
                                    "not the engine binary), so tuning runs regenerate only the edits")
    ap.add_argument("--no-untouched", action="store_true", help="skip the untouched generations (no seam baseline)")
    ap.add_argument("--grid", type=int, default=12, help="cases shown in grid.png (default 12)")
    ap.add_argument("--only", choices=CATEGORIES, action="append", help="run only these categories (debugging)")
    ap.add_argument("--self-test", action="store_true", help="check the scoring helpers against evaluate.py and exit")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    if not args.out:
        ap.error("--out is required")
    split = lambda items: [tok for item in items for tok in shlex.split(item)]   # noqa: E731
    engine = Engine(args.engine, args.model, split(args.generate_args),
                    split(args.engine_args) + split(args.edit_args), split(args.engine_args) + split(args.extend_args),
                    args.cache)
    bench = Bench(args, engine)
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    records = []
    with open(os.path.join(args.out, "cases.jsonl"), "w") as f:
        for i in range(args.cases):
            if args.only and category_of(i) not in args.only:
                continue
            rec = bench.run_case(i)
            records.append(rec)
            f.write(json.dumps(rec) + "\n")
            f.flush()
            state = {True: "ok", False: "x", None: "skipped"}[rec.get("success")]
            print(f"[{i + 1}/{args.cases}] {rec['category']:7s} {state:7s} {rec.get('prompt', rec.get('source_caption'))}",
                  file=sys.stderr)
    summary = summarize_cases(records, engine, args, bench.stream_seed, started, time.perf_counter() - t0)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    grid(records, os.path.join(args.out, "grid.png"), args.grid)
    brief = {cat: {k: c[k] for k in ("scored", "success_rate", "strict_success_rate", "kept_pixel_violations")}
             | {"seam_edit_over_untouched": c["seam"]["edit_over_untouched"],
                "seam_edit_over_untouched_local": c["seam"]["edit_over_untouched_local"]}
             for cat, c in summary["summary"]["categories"].items()}
    print(json.dumps({"categories": brief, "seam_all": summary["summary"]["seam_all"],
                      "timing": summary["summary"]["timing"]}, indent=1))


if __name__ == "__main__":
    main()
