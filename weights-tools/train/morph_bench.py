#!/usr/bin/env python3
r"""Text-diff and interpolation benchmark on the captioned-shapes world: `unclip textdiff` and `unclip interpolate`
run from the command line on scenes the engine itself generated, scored by evaluate.py's rules (edit_bench.py's
detect_objects: the same detection at the model's 64-px scale).

    weights-tools/.venv/bin/python weights-tools/train/morph_bench.py --out /tmp/morph-bench     # 60 + 40 + 10 cases
    weights-tools/.venv/bin/python weights-tools/train/morph_bench.py --stream validation --cases-textdiff 12 \
        --cases-interp 8 --prompt-pairs 4 --textdiff-args="--max-theta 0.6" --cache /tmp/mb-cache --out /tmp/mb
    weights-tools/.venv/bin/python weights-tools/train/morph_bench.py --self-test   # the scoring helpers, no engine

Flags: --engine PATH (default <repo>/.build/release/unclip), -m/--model (default: the engine's embedded model),
--stream eval|validation, --frames N (8), --cases-textdiff N (60), --cases-interp N (40), --prompt-pairs N (10),
--latents inverted|fixed (inverted, always passed), --textdiff-args, --interpolate-args (both interpolate forms),
--generate-args (all repeatable; write them with '=' since the value starts with '-'), --source-tries (8, at most
15), --cache DIR, --grid N, --call-timeout S, --only textdiff|interpolate|prompts.

Streams: --stream eval (seed 9101) is the reported one, --stream validation (seed 9102) is for choosing engine
settings. Text-diff case i draws from its own random.Random('morph-bench-<seed>-<i>'), interpolation pair i from
random.Random('morph-bench-<seed>-interp-<i>'), prompt pair i from random.Random('morph-bench-<seed>-prompt-<i>')
(separate names so the three parts never share a draw), so smaller counts are prefixes of the full run. Engine seeds:
text-diff case i: base = <seed>*100000 + 32i, source tries base+t, textdiff base+31; interpolation pair i: base =
<seed>*100000 + 40000 + 32i, source a base+t, source b base+16+t, interpolate base+31; prompt pair i:
<seed>*100000 + 80000 + i.

Sources: a one-object caption from world.py's grammar (the size word present half the time), generated with the
next seed (at most --source-tries) until the evaluator finds exactly one object and it matches the caption.

Text diff (case i's kind by i mod 3: colour, shape, size). --from names the object the evaluator found in the source,
size word included ("a small red circle"; for every kind, so the from/to pair differs only in the changed
attribute); --to changes one attribute: another colour (same shape and size), another shape (same colour and size),
or the other size ("a small red circle" -> "a large red circle"). Held-out combinations (purple triangle, orange
circle) are never a target. Success: in the last frame the evaluator finds an object of the target's colour, shape
and size (so the unchanged attributes stayed), and that object is within 4 px of the source object's position, and
frame 0 reconstructs the source at >= 25 dB PSNR. Position is the mass centroid for the colour and size kinds and
the bounding-box centre for the shape kind (an upright triangle's centroid sits e/6 below a circle's in the same box:
up to 5 px for a large object, which is no move); the literal centroid-everywhere rate is reported beside it.
"strict" also requires exactly one object in the last frame. Target: success >= 80%.

Interpolation (pairs of one-object sources with different colour-shape pairs; `interpolate a b --latents inverted`):
  end frames   PSNR of frame 0 against a and of the last frame against b (target >= 25 dB at both ends).
  middle frame (index N//2) is a valid scene: the evaluator finds >= 1 object (a palette-colour 4-connected component
               of >= 1% of the canvas) and there is no mixed-colour blob: the "mixed" pixels -- farther than the
               evaluator's MAX_DISTANCE (70) from the background AND from every palette colour, i.e. pixels
               evaluate.py can place nowhere (a red-green blend (135,110,60) is one; note a red-blue blend lands
               within 70 of purple and is read as purple, not as mixed) -- number fewer than the evaluator's noise
               floor, 1% of the 64x64 canvas (< 40.96 px). Generated scenes have crisp edges: 74 engine outputs of
               earlier runs had 0-19 such pixels (the sources' counts are reported as "source_mixed_pixels").
               Target: >= 70% of pairs.
  smoothness   step k = mean |difference| over all pixels and channels (0-255) between frames k and k+1; a sequence
               is smooth when no step exceeds 3x the median step of that sequence (all-zero steps: smooth, static;
               a zero median under a non-zero step: not smooth, ratio unbounded). Share of smooth sequences and the
               worst max/median ratio are reported.
Prompt interpolation (--from-prompt/--to-prompt, through the prior; --prompt-pairs pairs): middle-frame validity and
smoothness as above, plus whether frame 0 / the last frame show the from / to caption (informational).

Every call's frames are read from --frames-dir (frame-0000.png ...; exactly N expected, 64x64, converted to RGB),
and independently the animated PNG at -o is opened with Pillow: its animation must have N frames (a separate default
image, if any, is skipped) whose pixels equal the frames-dir files; disagreements are counted as "apng_mismatch" in
the summary (the case is still scored from frames-dir). An engine failure (non-zero exit, a missing output, a
timeout, a missing or malformed frame) is recorded as that case's failure with the stderr tail; the run continues.

Timing: wall clock of every uncached CLI call; per-frame time = the call's wall / N. The load average at the end is
recorded (other work on the machine inflates the timings).

Writes <out>/summary.json (rates, targets, timings, counts, seeds, the exact command lines, engine and model
sha256), <out>/cases.jsonl (one record per case, "part" textdiff|interpolate|prompts), <out>/grid.png (the first
--grid cases of each part: source(s), then the frames) and the images under <out>/cases/.
"""
import argparse
import json
import math
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import edit_bench  # noqa: E402
from edit_bench import (CANVAS, Engine, EngineError, _PALETTE, box_center, detect_objects, dist,  # noqa: E402
                        public, score_at, sha256_file, timing)
from evaluate import MAX_DISTANCE, MIN_AREA_FRACTION, parse  # noqa: E402
from world import BACKGROUND, COLORS, SHAPES, SIZES, allowed, noun_phrase, render, sample_scene  # noqa: E402

EVAL_SEED = 9101         # the reported benchmark's stream
VALIDATION_SEED = 9102   # a second stream, for choosing engine settings
PARTS = ("textdiff", "interpolate", "prompts")
KINDS = ("colour", "shape", "size")

PSNR_TARGET = 25.0            # dB, frame 0 of textdiff, both ends of interpolate
PSNR_CAP = 100.0              # identical images (infinite PSNR) are recorded as this
POSITION_TOLERANCE = 4.0      # px the edited object may move (textdiff)
MIXED_FLOOR = MIN_AREA_FRACTION * CANVAS * CANVAS   # 40.96 px: the evaluator's noise floor
SMOOTH_FACTOR = 3.0           # no step above 3x the sequence's median step
TARGETS = {"textdiff_success": 0.80, "interpolate_end_psnr_db": PSNR_TARGET, "interpolate_middle_valid": 0.70}
SEED_STRIDE, INTERP_OFFSET, PROMPT_OFFSET = 32, 40000, 80000
MAX_SOURCE_TRIES = 15


class FrameError(RuntimeError):
    """The engine exited 0 but its frames are missing or malformed."""


# ---------------------------------------------------------------------------------------------------------------
# measures

def rgb_array(image):
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def psnr(a, b):
    """PSNR in dB of two 8-bit RGB images (peak 255): inf when identical, None when the sizes differ."""
    x, y = rgb_array(a).astype(np.float64), rgb_array(b).astype(np.float64)
    if x.shape != y.shape:
        return None
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def capped(v):
    return None if v is None else min(v, PSNR_CAP)


def mixed_pixels(image):
    """Pixels farther than MAX_DISTANCE from the background and from every palette colour (evaluate.py can place
    them nowhere): the boolean map."""
    px = rgb_array(image).astype(np.float32)
    d = np.linalg.norm(px[:, :, None, :] - _PALETTE[None, None, :, :], axis=-1)   # the palette + the background
    return d.min(-1) > MAX_DISTANCE


def scene_validity(image):
    """A valid scene: >= 1 detected object and fewer mixed pixels than the noise floor."""
    found = detect_objects(image)
    mixed = int(mixed_pixels(image).sum())
    return {"valid": bool(found) and mixed < MIXED_FLOOR, "objects": len(found), "mixed_pixels": mixed,
            "found": public(found)}


def step_changes(frames):
    """Mean |difference| (0-255, all pixels and channels) between consecutive frames."""
    arrs = [rgb_array(f).astype(np.float64) for f in frames]
    return [float(np.mean(np.abs(b - a))) for a, b in zip(arrs, arrs[1:])]


def smoothness(steps):
    """(smooth, max/median ratio or None when unbounded, static)."""
    if not steps:
        return True, None, True
    med, top = statistics.median(steps), max(steps)
    if top == 0:
        return True, 1.0, True
    if med == 0:
        return False, None, False
    ratio = top / med
    return ratio <= SMOOTH_FACTOR, ratio, False


def stats(values):
    v = [x for x in values if x is not None]
    if not v:
        return {"n": 0}
    return {"n": len(v), "mean": statistics.mean(v), "median": statistics.median(v), "min": min(v), "max": max(v)}


def rate(flags):
    flags = [bool(f) for f in flags if f is not None]
    return (sum(flags) / len(flags)) if flags else None


def finite(obj):
    """JSON-safe: non-finite floats become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------------------------
# frames and the APNG

def frame_paths(frames_dir, n):
    return [os.path.join(frames_dir, f"frame-{k:04d}.png") for k in range(n)]


def read_frames(frames_dir, n):
    """The N frames of --frames-dir as RGB images; (frames, notes). Raises FrameError when one is missing, unreadable
    or not 64x64."""
    frames, notes = [], []
    for k, p in enumerate(frame_paths(frames_dir, n)):
        if not os.path.exists(p):
            raise FrameError(f"{p}: missing (expected {n} frames)")
        try:
            im = Image.open(p)
            im.load()
        except Exception as e:   # noqa: BLE001 - a malformed file is the engine's failure
            raise FrameError(f"{p}: unreadable: {e}")
        if im.size != (CANVAS, CANVAS):
            raise FrameError(f"{p}: {im.size[0]}x{im.size[1]}, expected {CANVAS}x{CANVAS}")
        if im.mode != "RGB":
            notes.append(f"frame {k}: mode {im.mode}")
        frames.append(im.convert("RGB"))
    extra = os.path.join(frames_dir, f"frame-{n:04d}.png")
    if os.path.exists(extra):
        notes.append(f"more than {n} frames in {frames_dir}")
    return frames, notes


def apng_check(path, frames):
    """The animated PNG at `path` against the frames-dir frames: its animation frame count and which frames' pixels
    differ. Never raises."""
    out = {"n_frames": None, "default_image_separate": False, "frames_expected": len(frames), "count_ok": False,
           "pixel_mismatch_frames": [], "error": None}
    try:
        im = Image.open(path)
        n_total = getattr(im, "n_frames", 1)
        skip = 1 if im.info.get("default_image") else 0   # an IDAT default image that is not an animation frame
        out.update(n_frames=n_total - skip, default_image_separate=bool(skip))
        out["count_ok"] = out["n_frames"] == len(frames)
        for k in range(min(out["n_frames"], len(frames))):
            im.seek(k + skip)
            a = rgb_array(im)
            if a.shape != rgb_array(frames[k]).shape or not np.array_equal(a, rgb_array(frames[k])):
                out["pixel_mismatch_frames"].append(k)
    except Exception as e:   # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
    out["mismatch"] = bool(out["error"] or not out["count_ok"] or out["pixel_mismatch_frames"])
    return out


# ---------------------------------------------------------------------------------------------------------------
# the engine: edit_bench's (generate, its cache, timings, failures) plus the two frame commands

class MorphEngine(Engine):
    def __init__(self, path, model, generate_args, textdiff_args, interpolate_args, cache, latents, timeout):
        super().__init__(path, model, generate_args, [], [], cache)
        self.textdiff_args, self.interpolate_args = textdiff_args, interpolate_args
        self.latents, self.timeout = latents, timeout
        self.unprinted = {}   # kind -> calls whose stdout did not list the -o path (noted, not a failure)

    def textdiff_argv(self, image, src, dst, n, seed, out, frames_dir):
        return ([self.path, "textdiff", image, "--from", src, "--to", dst, "--frames", str(n), "-o", out,
                 "--frames-dir", frames_dir, "--seed", str(seed), "-q"] + self._m() + self.textdiff_args)

    def interpolate_argv(self, a, b, n, seed, out, frames_dir):
        return ([self.path, "interpolate", a, b, "--frames", str(n), "--latents", self.latents, "-o", out,
                 "--frames-dir", frames_dir, "--seed", str(seed), "-q"] + self._m() + self.interpolate_args)

    def interpolate_prompts_argv(self, p, q, n, seed, out, frames_dir):
        return ([self.path, "interpolate", "--from-prompt", p, "--to-prompt", q, "--frames", str(n), "-o", out,
                 "--frames-dir", frames_dir, "--seed", str(seed), "-q"] + self._m() + self.interpolate_args)

    def run_frames(self, kind, argv, out, frames_dir, n):
        """Run a frame command into a fresh frames_dir; (seconds, frames, notes, apng). Raises EngineError (exit,
        timeout, no output; the stderr tail in the message) or FrameError."""
        shutil.rmtree(frames_dir, ignore_errors=True)
        os.makedirs(frames_dir)
        if os.path.exists(out):
            os.remove(out)
        t = time.perf_counter()
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            self.failures[kind] = self.failures.get(kind, 0) + 1
            tail = (e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or ""))[-600:]
            raise EngineError(f"{shlex.join(argv)}: timed out after {self.timeout} s: {tail.strip()}")
        seconds = time.perf_counter() - t
        if p.returncode != 0 or not os.path.exists(out):
            self.failures[kind] = self.failures.get(kind, 0) + 1
            what = f"exit {p.returncode}" if p.returncode != 0 else f"exit 0 but no {out}"
            raise EngineError(f"{shlex.join(argv)}: {what}: {p.stderr.strip()[-600:]}")
        try:
            frames, notes = read_frames(frames_dir, n)
        except FrameError:
            self.failures[kind] = self.failures.get(kind, 0) + 1
            raise
        printed = [os.path.realpath(x) for x in p.stdout.strip().splitlines()]
        if os.path.realpath(out) not in printed:
            self.unprinted[kind] = self.unprinted.get(kind, 0) + 1
            notes.append(f"stdout did not list {out}")
        self.calls.append((kind, seconds, False))
        return seconds, frames, notes, apng_check(out, frames)


# ---------------------------------------------------------------------------------------------------------------
# cases

def one_object(rng, avoid=None):
    """A one-object scene's object and caption (world.py's grammar), its colour-shape pair not `avoid`."""
    while True:
        scene = sample_scene(rng, CANVAS, two_objects=False)
        o = scene["objects"][0]
        if (o["color"], o["shape"]) != avoid:
            return o, scene["caption"]


def textdiff_target(rng, kind, color, shape):
    """The drawn part of the target: another colour / shape (never a held-out pair); the size kind draws nothing."""
    if kind == "colour":
        return rng.choice([c for c in sorted(COLORS) if c != color and allowed(c, shape, False)]), shape
    if kind == "shape":
        return color, rng.choice([s for s in SHAPES if s != shape and allowed(color, s, False)])
    return color, shape


def textdiff_captions(kind, found_obj, target_cs):
    """(--from, --to, target attributes): both with size words; --from states the size the evaluator found."""
    src = {"color": found_obj["color"], "shape": found_obj["shape"], "size": found_obj["size"]}
    dst = {"color": target_cs[0], "shape": target_cs[1], "size": src["size"]}
    if kind == "size":
        dst["size"] = "large" if src["size"] == "small" else "small"
    return noun_phrase(src, True), noun_phrase(dst, True), dst


def score_textdiff(kind, source_img, source_obj, target, frames):
    """The text-diff success rule on a sequence of frames (pure; no engine)."""
    first, last = frames[0], frames[-1]
    found = detect_objects(last)
    p0 = psnr(first, source_img)
    cs = [f for f in found if f["color"] == target["color"] and f["shape"] == target["shape"]]
    full = [f for f in cs if f["size"] == target["size"]]
    key = (lambda f: box_center(f["box"])) if kind == "shape" else (lambda f: f["center"])
    ref = box_center(source_obj["box"]) if kind == "shape" else source_obj["center"]
    pool = full or cs
    best = min(pool, key=lambda f: dist(key(f), ref)) if pool else None
    shift = dist(key(best), ref) if best else None
    centroid_shift = dist(best["center"], source_obj["center"]) if best else None
    box_shift = dist(box_center(best["box"]), box_center(source_obj["box"])) if best else None
    # unchanged attributes: colour and shape checked by the match itself, size by `full`
    checks = {"target_colour_shape": bool(cs), "target_size": bool(full),
              "position": bool(full) and shift is not None and shift <= POSITION_TOLERANCE,
              "frame0_psnr": p0 is not None and p0 >= PSNR_TARGET}
    success = all(checks.values())
    literal = (checks["target_size"] and checks["frame0_psnr"] and
               any(dist(f["center"], source_obj["center"]) <= POSITION_TOLERANCE for f in full))
    # the first frame showing the target (informational)
    switch = next((k for k, f in enumerate(frames)
                   if any(o["color"] == target["color"] and o["shape"] == target["shape"] and o["size"] == target["size"]
                          for o in detect_objects(f))), None)
    return {"success": bool(success), "strict": bool(success and len(found) == 1), "checks": checks,
            "success_centroid_rule": bool(literal), "frame0_psnr": capped(p0), "position_shift": shift,
            "centroid_shift": centroid_shift, "box_centre_shift": box_shift, "found_last": public(found),
            "first_target_frame": switch}


def score_sequence(frames):
    """Middle-frame validity and smoothness of a sequence (pure)."""
    mid = len(frames) // 2
    steps = step_changes(frames)
    smooth, ratio, static = smoothness(steps)
    return {"middle_index": mid, "middle": scene_validity(frames[mid]), "steps": steps, "smooth": smooth,
            "step_ratio": ratio, "static": static}


class Bench:
    def __init__(self, args, engine):
        self.args, self.engine = args, engine
        self.stream_seed = VALIDATION_SEED if args.stream == "validation" else EVAL_SEED
        self.dir = os.path.join(args.out, "cases")
        os.makedirs(self.dir, exist_ok=True)
        self.n = args.frames

    def textdiff_base(self, i):
        return self.stream_seed * 100000 + SEED_STRIDE * i

    def interp_base(self, i):
        return self.stream_seed * 100000 + INTERP_OFFSET + SEED_STRIDE * i

    def prompt_seed(self, i):
        return self.stream_seed * 100000 + PROMPT_OFFSET + i

    def path(self, tag, name):
        return os.path.join(self.dir, f"{tag}-{name}")

    def source(self, tag, base, caption):
        """`caption` generated with seeds base, base+1, ... until the evaluator finds exactly one object and it matches.
        Returns (path, seed, found object, tries, commands); path None when no try was usable."""
        out, tmp, commands = self.path(tag, "source.png"), self.path(tag, "source-try.png"), []
        for t in range(self.args.source_tries):
            argv, _ = self.engine.generate(caption, base + t, tmp)
            commands.append(shlex.join(argv))
            img = Image.open(tmp)
            img.load()
            ok, found = score_at(caption, img)
            if ok and len(found) == 1:
                os.replace(tmp, out)
                return out, base + t, found[0], t + 1, commands
        if os.path.exists(tmp):
            os.remove(tmp)
        return None, None, None, self.args.source_tries, commands

    def run(self, part, i):
        rec = dict(part=part, case=i, stream=self.args.stream, frames=self.n)
        try:
            getattr(self, "case_" + part)(i, rec)
        except (EngineError, FrameError) as e:
            rec.update(success=False, strict=False, error=str(e),
                       error_kind="frames" if isinstance(e, FrameError) else "engine")
            print(f"{part} {i}: {e}", file=sys.stderr)
        except Exception as e:   # noqa: BLE001 - a bug here must not lose the run; counted as script_errors
            rec.update(success=False, strict=False, error=f"{type(e).__name__}: {e}", error_kind="script",
                       traceback=traceback.format_exc()[-2000:])
            print(f"{part} {i}: script error: {traceback.format_exc()}", file=sys.stderr)
        return rec

    def no_source(self, rec):
        rec.update(success=None, strict=None, error="no usable source", error_kind="no_source")

    # -- textdiff ---------------------------------------------------------------------------------------------
    def case_textdiff(self, i, rec):
        rng = random.Random(f"morph-bench-{self.stream_seed}-{i}")
        kind = KINDS[i % 3]
        obj, caption = one_object(rng)
        target_cs = textdiff_target(rng, kind, obj["color"], obj["shape"])
        tag, base = f"td-{i:04d}", self.textdiff_base(i)
        rec.update(kind=kind, source_caption=caption)
        src, seed, found, tries, cmds = self.source(tag, base, caption)
        rec.update(source_tries=tries, source_commands=cmds)
        if src is None:
            self.no_source(rec)
            return
        source_img = Image.open(src).convert("RGB")
        src_cap, dst_cap, target = textdiff_captions(kind, found, target_cs)
        out, fdir, tseed = self.path(tag, "diff.png"), self.path(tag, "frames"), base + SEED_STRIDE - 1
        rec.update(source=src, source_seed=seed, source_object=public([found])[0],
                   source_mixed_pixels=int(mixed_pixels(source_img).sum()),
                   from_caption=src_cap, to_caption=dst_cap, target=target, seed=tseed, output=out, frames_dir=fdir)
        argv = self.engine.textdiff_argv(src, src_cap, dst_cap, self.n, tseed, out, fdir)
        rec["command"] = shlex.join(argv)
        seconds, frames, notes, apng = self.engine.run_frames("textdiff", argv, out, fdir, self.n)
        rec.update(seconds=seconds, seconds_per_frame=seconds / self.n, notes=notes, apng=apng)
        rec.update(score_textdiff(kind, source_img, found, target, frames))
        ev = score_at(dst_cap, frames[-1])[0]
        rec["evaluator_to_caption"] = ev
        rec["steps"] = step_changes(frames)

    # -- interpolate (two images) ------------------------------------------------------------------------------
    def case_interpolate(self, i, rec):
        rng = random.Random(f"morph-bench-{self.stream_seed}-interp-{i}")
        oa, cap_a = one_object(rng)
        _, cap_b = one_object(rng, avoid=(oa["color"], oa["shape"]))
        tag, base = f"ip-{i:04d}", self.interp_base(i)
        rec.update(caption_a=cap_a, caption_b=cap_b)
        a, seed_a, fa, tries_a, cmds_a = self.source(tag + "a", base, cap_a)
        rec.update(source_tries=tries_a, source_commands=cmds_a)
        if a is None:
            self.no_source(rec)
            return
        b, seed_b, fb, tries_b, cmds_b = self.source(tag + "b", base + SEED_STRIDE // 2, cap_b)
        rec.update(source_tries=tries_a + tries_b, source_commands=cmds_a + cmds_b)
        if b is None:
            self.no_source(rec)
            return
        img_a, img_b = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
        out, fdir, iseed = self.path(tag, "morph.png"), self.path(tag, "frames"), base + SEED_STRIDE - 1
        rec.update(source_a=a, source_b=b, source_seed_a=seed_a, source_seed_b=seed_b,
                   source_objects=public([fa, fb]),
                   source_mixed_pixels=[int(mixed_pixels(img_a).sum()), int(mixed_pixels(img_b).sum())],
                   seed=iseed, output=out, frames_dir=fdir, latents=self.engine.latents)
        argv = self.engine.interpolate_argv(a, b, self.n, iseed, out, fdir)
        rec["command"] = shlex.join(argv)
        seconds, frames, notes, apng = self.engine.run_frames("interpolate", argv, out, fdir, self.n)
        rec.update(seconds=seconds, seconds_per_frame=seconds / self.n, notes=notes, apng=apng)
        pa, pb = capped(psnr(frames[0], img_a)), capped(psnr(frames[-1], img_b))
        rec.update(end_psnr=[pa, pb], ends_ok=bool(pa is not None and pb is not None and min(pa, pb) >= PSNR_TARGET))
        rec.update(score_sequence(frames))
        rec["success"] = bool(rec["ends_ok"] and rec["middle"]["valid"] and rec["smooth"])   # all three (informational)
        rec["strict"] = rec["success"]

    # -- interpolate (two prompts) -----------------------------------------------------------------------------
    def case_prompts(self, i, rec):
        rng = random.Random(f"morph-bench-{self.stream_seed}-prompt-{i}")
        oa, cap_a = one_object(rng)
        _, cap_b = one_object(rng, avoid=(oa["color"], oa["shape"]))
        tag, seed = f"pp-{i:04d}", self.prompt_seed(i)
        out, fdir = self.path(tag, "morph.png"), self.path(tag, "frames")
        rec.update(caption_a=cap_a, caption_b=cap_b, seed=seed, output=out, frames_dir=fdir)
        argv = self.engine.interpolate_prompts_argv(cap_a, cap_b, self.n, seed, out, fdir)
        rec["command"] = shlex.join(argv)
        seconds, frames, notes, apng = self.engine.run_frames("interpolate_prompts", argv, out, fdir, self.n)
        rec.update(seconds=seconds, seconds_per_frame=seconds / self.n, notes=notes, apng=apng)
        rec.update(first_shows_a=score_at(cap_a, frames[0])[0], last_shows_b=score_at(cap_b, frames[-1])[0])
        rec.update(score_sequence(frames))
        rec["success"] = bool(rec["middle"]["valid"] and rec["smooth"])
        rec["strict"] = bool(rec["success"] and rec["first_shows_a"] and rec["last_shows_b"])


# ---------------------------------------------------------------------------------------------------------------
# summary and grid

def common(rows):
    scored = [r for r in rows if r.get("success") is not None]
    errs = [r for r in rows if r.get("error_kind") in ("engine", "frames", "script")]
    per_frame = [r["seconds_per_frame"] for r in scored if r.get("seconds_per_frame") is not None]
    return scored, {"cases": len(rows), "scored": len(scored),
                    "no_source": sum(1 for r in rows if r.get("error_kind") == "no_source"),
                    "engine_errors": sum(1 for r in errs if r["error_kind"] == "engine"),
                    "frame_errors": sum(1 for r in errs if r["error_kind"] == "frames"),
                    "script_errors": sum(1 for r in errs if r["error_kind"] == "script"),
                    "source_tries_mean": statistics.mean([r["source_tries"] for r in rows if "source_tries" in r])
                    if any("source_tries" in r for r in rows) else None,
                    "seconds_per_frame": stats(per_frame),
                    "seconds_per_call": stats([r["seconds"] for r in scored if r.get("seconds") is not None])}


def sequence_summary(ran):
    ratios = [r.get("step_ratio") for r in ran]
    return {"middle_valid_rate": rate([r["middle"]["valid"] for r in ran]),
            "middle_has_object_rate": rate([r["middle"]["objects"] >= 1 for r in ran]),
            "middle_no_mixed_blob_rate": rate([r["middle"]["mixed_pixels"] < MIXED_FLOOR for r in ran]),
            "middle_mixed_pixels": stats([r["middle"]["mixed_pixels"] for r in ran]),
            "smooth_rate": rate([r["smooth"] for r in ran]),
            "static_sequences": sum(1 for r in ran if r.get("static")),
            "worst_step_ratio": max([x for x in ratios if x is not None], default=None),
            "unbounded_step_ratio": sum(1 for r in ran if r.get("step_ratio") is None and not r.get("static")),
            "mean_step": stats([statistics.mean(r["steps"]) for r in ran if r["steps"]])}


def apng_summary(rows):
    checked = [r["apng"] for r in rows if r.get("apng")]
    return {"checked": len(checked), "apng_mismatch": sum(1 for a in checked if a["mismatch"]),
            "frame_count_wrong": sum(1 for a in checked if not a["count_ok"]),
            "pixel_mismatch_frames": sum(len(a["pixel_mismatch_frames"]) for a in checked),
            "read_errors": sum(1 for a in checked if a["error"]),
            "default_image_separate": sum(1 for a in checked if a["default_image_separate"])}


def summarize(records, engine, args, stream_seed, started, wall):
    out = {}
    rows = [r for r in records if r["part"] == "textdiff"]
    if rows:
        scored, c = common(rows)
        ran = [r for r in scored if "checks" in r]
        c.update(success=sum(r["success"] for r in scored), success_rate=rate([r["success"] for r in scored]),
                 strict_success_rate=rate([r["strict"] for r in scored]),
                 success_rate_centroid_rule=rate([r.get("success_centroid_rule", False) for r in scored]),
                 target=TARGETS["textdiff_success"],
                 check_rates={k: rate([r["checks"][k] for r in ran]) for k in
                              ("target_colour_shape", "target_size", "position", "frame0_psnr")},
                 frame0_psnr_db=stats([r["frame0_psnr"] for r in ran]),
                 frame0_psnr_share_ge_target=rate([r["frame0_psnr"] is not None and r["frame0_psnr"] >= PSNR_TARGET
                                                   for r in ran]),
                 position_shift_px=stats([r["position_shift"] for r in ran]),
                 source_mixed_pixels=stats([r.get("source_mixed_pixels") for r in rows]),
                 kinds={})
        for kind in KINDS:
            k_rows = [r for r in scored if r.get("kind") == kind]
            c["kinds"][kind] = {"scored": len(k_rows), "success_rate": rate([r["success"] for r in k_rows]),
                                "strict_success_rate": rate([r["strict"] for r in k_rows]),
                                "no_source": sum(1 for r in rows if r.get("kind") == kind and r.get("error_kind") == "no_source")}
        c["apng"] = apng_summary(rows)
        out["textdiff"] = c
    rows = [r for r in records if r["part"] == "interpolate"]
    if rows:
        scored, c = common(rows)
        ran = [r for r in scored if "end_psnr" in r]
        ends = [p for r in ran for p in r["end_psnr"]]
        c.update(end_psnr_db=stats(ends), end_psnr_first=stats([r["end_psnr"][0] for r in ran]),
                 end_psnr_last=stats([r["end_psnr"][1] for r in ran]),
                 end_psnr_share_ge_target=rate([p is not None and p >= PSNR_TARGET for p in ends]),
                 both_ends_ok_rate=rate([r["ends_ok"] for r in scored if "ends_ok" in r] +
                                        [False for r in scored if "ends_ok" not in r]),
                 all_three_rate=rate([r["success"] for r in scored]),
                 source_mixed_pixels=stats([p for r in rows for p in r.get("source_mixed_pixels", [])]),
                 latents=engine.latents)
        c.update(sequence_summary(ran))
        if len(ran) < len(scored):   # failed calls count against the middle-frame and smoothness rates
            c["middle_valid_rate"] = sum(r["middle"]["valid"] for r in ran) / len(scored)
            c["smooth_rate"] = sum(r["smooth"] for r in ran) / len(scored)
            c["rates_count_failed_calls"] = True
        c["targets"] = {"end_psnr_db": PSNR_TARGET, "middle_valid_rate": TARGETS["interpolate_middle_valid"]}
        c["apng"] = apng_summary(rows)
        out["interpolate"] = c
    rows = [r for r in records if r["part"] == "prompts"]
    if rows:
        scored, c = common(rows)
        ran = [r for r in scored if "middle" in r]
        c.update(sequence_summary(ran))
        if len(ran) < len(scored):
            c["middle_valid_rate"] = sum(r["middle"]["valid"] for r in ran) / len(scored)
            c["smooth_rate"] = sum(r["smooth"] for r in ran) / len(scored)
            c["rates_count_failed_calls"] = True
        c.update(first_shows_from_rate=rate([r["first_shows_a"] for r in ran]),
                 last_shows_to_rate=rate([r["last_shows_b"] for r in ran]))
        c["apng"] = apng_summary(rows)
        out["prompts"] = c
    out["apng_mismatch"] = sum(v["apng"]["apng_mismatch"] for v in out.values() if isinstance(v, dict) and "apng" in v)
    out["stdout_without_output_path"] = engine.unprinted
    out["targets"] = TARGETS
    out["timing"] = {k: timing(engine.calls, engine.failures, k)
                     for k in ("generate", "textdiff", "interpolate", "interpolate_prompts")}
    model_file = args.model or os.path.join(REPO, "models", "unclip-shapes64-q8.gguf")
    n = args.frames
    return {
        "stream": args.stream, "stream_seed": stream_seed, "frames": n,
        "cases": {p: sum(1 for r in records if r["part"] == p) for p in PARTS},
        "case_seeds": f"textdiff case i: random.Random('morph-bench-<stream seed>-<i>'), engine seeds base = <stream seed>"
                      f"*100000 + {SEED_STRIDE}i, source tries base+t, textdiff base+{SEED_STRIDE - 1}; interpolate pair i: "
                      f"random.Random('morph-bench-<stream seed>-interp-<i>'), base = <stream seed>*100000 + {INTERP_OFFSET} "
                      f"+ {SEED_STRIDE}i, source a base+t, source b base+{SEED_STRIDE // 2}+t, interpolate base+{SEED_STRIDE - 1}; "
                      f"prompt pair i: random.Random('morph-bench-<stream seed>-prompt-<i>'), seed <stream seed>*100000 + "
                      f"{PROMPT_OFFSET} + i",
        "engine": args.engine, "engine_sha256": sha256_file(args.engine) if os.path.isfile(args.engine) else None,
        "model": args.model or "(embedded)",
        "model_sha256": sha256_file(model_file) if os.path.exists(model_file) else None,
        "generate_args": engine.generate_args, "textdiff_args": engine.textdiff_args,
        "interpolate_args": engine.interpolate_args,
        "commands": {"generate": shlex.join(engine.generate_argv("<caption>", "<seed>", "<out.png>")),
                     "textdiff": shlex.join(engine.textdiff_argv("<source.png>", "<from caption>", "<to caption>", n,
                                                                 "<seed>", "<diff.png>", "<frames-dir>")),
                     "interpolate": shlex.join(engine.interpolate_argv("<a.png>", "<b.png>", n, "<seed>", "<morph.png>",
                                                                       "<frames-dir>")),
                     "interpolate_prompts": shlex.join(engine.interpolate_prompts_argv("<from caption>", "<to caption>", n,
                                                                                       "<seed>", "<morph.png>", "<frames-dir>")),
                     "benchmark": shlex.join([sys.executable] + sys.argv)},
        "settings": {"psnr_target_db": PSNR_TARGET, "psnr_cap_db": PSNR_CAP, "position_tolerance_px": POSITION_TOLERANCE,
                     "position_measure": "centroid (colour, size kinds), bounding-box centre (shape kind)",
                     "mixed_pixel_distance": MAX_DISTANCE, "mixed_pixels_below": MIXED_FLOOR,
                     "smooth_max_over_median": SMOOTH_FACTOR, "middle_frame_index": n // 2,
                     "source_tries": args.source_tries, "scoring_canvas": CANVAS, "call_timeout_s": args.call_timeout},
        "started": started, "wall_s": wall, "loadavg_at_end": list(os.getloadavg()),
        "summary": out}


def grid(records, path, n_per_part, scale=2):
    rows = []
    for part in PARTS:
        rows += [r for r in records if r["part"] == part and r.get("frames_dir") and r.get("steps") is not None][:n_per_part]
    if not rows:
        return
    tile, pad, text_h = CANVAS * scale, 4, 26
    n = rows[0]["frames"]
    lead = 2   # source columns (textdiff: one; interpolate: a, b; prompts: none)
    width = (lead + n) * (tile + pad) + 16 + pad
    img = Image.new("RGB", (width, len(rows) * (tile + text_h + pad)), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for k, r in enumerate(rows):
        y = k * (tile + text_h + pad)
        sources = {"textdiff": [r.get("source")], "interpolate": [r.get("source_a"), r.get("source_b")],
                   "prompts": []}[r["part"]]
        for j, p in enumerate(sources):
            if p and os.path.exists(p):
                img.paste(Image.open(p).convert("RGB").resize((tile, tile), Image.NEAREST), (pad + j * (tile + pad), y))
        x0 = pad + lead * (tile + pad) + 16
        for j, fp in enumerate(frame_paths(r["frames_dir"], n)):
            if os.path.exists(fp):
                img.paste(Image.open(fp).convert("RGB").resize((tile, tile), Image.NEAREST), (x0 + j * (tile + pad), y))
        ok = r.get("success")
        if r["part"] == "textdiff":
            label = f"#{r['case']} textdiff/{r['kind']} {'ok' if ok else 'x'}: {r.get('from_caption')} -> {r.get('to_caption')}"
            f0, sh = r.get("frame0_psnr"), r.get("position_shift")
            extra = (f"frame0 {'-' if f0 is None else f'{f0:.1f}'} dB  shift {'-' if sh is None else f'{sh:.1f}'} px"
                     f"  first target frame {r.get('first_target_frame')}")
        else:
            label = f"#{r['case']} {r['part']} {'ok' if ok else 'x'}: {r.get('caption_a')} -> {r.get('caption_b')}"
            ratio = r.get("step_ratio")
            extra = (f"middle {'valid' if r['middle']['valid'] else 'INVALID'} ({r['middle']['objects']} obj, "
                     f"{r['middle']['mixed_pixels']} mixed px)  steps max/median {ratio if ratio is None else round(ratio, 2)}")
            if r.get("end_psnr"):
                extra += f"  ends {r['end_psnr'][0]:.1f}/{r['end_psnr'][1]:.1f} dB"
        d.text((pad, y + tile + 2), label[:150], fill=(0, 120, 0) if ok else (160, 0, 0))
        d.text((pad, y + tile + 13), extra[:150], fill=(60, 60, 60))
    img.save(path)


# ---------------------------------------------------------------------------------------------------------------
# self-test: the helpers on synthetic images (no engine)

def self_test():
    bg = Image.new("RGB", (CANVAS, CANVAS), BACKGROUND)
    # PSNR
    assert psnr(bg, bg.copy()) == math.inf and capped(psnr(bg, bg)) == PSNR_CAP
    one_off = Image.fromarray(rgb_array(bg) - 1)
    assert abs(psnr(bg, one_off) - 20 * math.log10(255)) < 1e-9
    assert psnr(bg, Image.new("RGB", (32, 32))) is None
    # smoothness
    assert smoothness([1, 1, 1, 1, 1, 1, 3]) == (True, 3.0, False)
    assert smoothness([1, 1, 1, 1, 1, 1, 3.01])[0] is False
    assert smoothness([0, 0, 0]) == (True, 1.0, True)
    assert smoothness([0, 0, 0, 2]) == (False, None, False)
    ramp = [Image.fromarray(np.full((CANVAS, CANVAS, 3), 100 + 10 * k, np.uint8)) for k in range(8)]
    assert step_changes(ramp) == [10.0] * 7 and smoothness(step_changes(ramp))[0]
    jump = ramp[:4] + [Image.fromarray(np.full((CANVAS, CANVAS, 3), 200 + 10 * k, np.uint8)) for k in range(4)]
    assert smoothness(step_changes(jump)) == (False, 7.0, False)
    # mixed-colour blobs: exact renders are clean; a red-green blend is mixed; the floor is 1% of the canvas
    rng = random.Random(3)
    for _ in range(100):
        scene = sample_scene(rng, CANVAS, two_objects=rng.random() < 0.5)
        img = render(scene, CANVAS)
        v = scene_validity(img)
        assert v["valid"] and v["mixed_pixels"] == 0 and v["objects"] == len(scene["objects"]), (scene["caption"], v)
    assert not scene_validity(bg)["valid"]                      # no object
    scene = {"objects": [{"color": "blue", "shape": "square", "box": (40, 40, 56, 56)}]}
    for side, valid in ((6, True), (7, False)):                 # 36 px < 40.96 <= 49 px
        a = rgb_array(render(scene, CANVAS)).copy()
        a[5:5 + side, 5:5 + side] = (135, 110, 60)
        v = scene_validity(Image.fromarray(a))
        assert v["mixed_pixels"] == side * side and v["valid"] is valid and v["objects"] == 1, (side, v)
    a = rgb_array(render(scene, CANVAS)).copy()
    a[5:12, 5:12] = np.array(COLORS["red"]) // 2 + np.array(COLORS["blue"]) // 2   # reads as purple, not mixed
    assert scene_validity(Image.fromarray(a))["mixed_pixels"] == 0
    # captions of the three kinds, the size case stating the found size
    for kind in KINDS:
        for color in COLORS:
            for shape in SHAPES:
                if not allowed(color, shape, False):
                    continue
                for size in SIZES:
                    tc = textdiff_target(random.Random(f"{kind}{color}{shape}"), kind, color, shape)
                    f, t, tgt = textdiff_captions(kind, {"color": color, "shape": shape, "size": size}, tc)
                    (pf,), (pt,) = parse(f)[0], parse(t)[0]
                    assert pf == {"color": color, "shape": shape, "size": size}, (f, pf)
                    assert pt == tgt and allowed(pt["color"], pt["shape"], False)
                    changed = {k for k in ("color", "shape", "size") if pf[k] != pt[k]}
                    assert changed == {{"colour": "color"}.get(kind, kind)}, (kind, f, t)
    # the text-diff rule on exact renders
    src = {"color": "red", "shape": "circle", "size": "large", "box": (10, 12, 36, 38)}
    src_img = render({"objects": [src]}, CANVAS)
    (found,) = detect_objects(src_img)

    def frames_to(objs):
        return [src_img] + [render({"objects": objs}, CANVAS)] * 7

    for kind, tgt_obj in (("colour", dict(src, color="blue")), ("shape", dict(src, shape="triangle")),
                          ("size", dict(src, size="small", box=(16, 18, 30, 32)))):
        target = {k: tgt_obj[k] for k in ("color", "shape", "size")}
        s = score_textdiff(kind, src_img, found, target, frames_to([tgt_obj]))
        assert s["success"] and s["strict"] and s["frame0_psnr"] == PSNR_CAP and s["first_target_frame"] == 1, (kind, s)
        moved = dict(tgt_obj, box=tuple(v + 5 for v in tgt_obj["box"]))   # 7.1 px
        assert not score_textdiff(kind, src_img, found, target, frames_to([moved]))["success"], kind
    s = score_textdiff("colour", src_img, found, {"color": "blue", "shape": "circle", "size": "large"},
                       frames_to([dict(src, color="blue", shape="square")]))
    assert not s["success"] and not s["checks"]["target_colour_shape"]          # the shape did not stay
    s = score_textdiff("colour", src_img, found, {"color": "blue", "shape": "circle", "size": "large"},
                       frames_to([dict(src, color="blue", box=(16, 18, 30, 32))]))
    assert not s["success"] and s["checks"]["target_colour_shape"] and not s["checks"]["target_size"]
    noisy = Image.fromarray(np.clip(rgb_array(src_img).astype(int) + np.random.default_rng(0).integers(-30, 31, (64, 64, 3)),
                                    0, 255).astype(np.uint8))                    # ~ 21 dB
    s = score_textdiff("colour", src_img, found, {"color": "blue", "shape": "circle", "size": "large"},
                       [noisy] + frames_to([dict(src, color="blue")])[1:])
    assert not s["success"] and not s["checks"]["frame0_psnr"] and s["frame0_psnr"] < PSNR_TARGET
    # the triangle's centroid sits lower than the circle's in the same box: the shape kind judges box centres
    tri = dict(src, shape="triangle")
    (ft,) = detect_objects(render({"objects": [tri]}, CANVAS))
    assert dist(ft["center"], found["center"]) > POSITION_TOLERANCE and dist(box_center(ft["box"]), box_center(found["box"])) < 1
    # frames-dir reading and the APNG check
    with tempfile.TemporaryDirectory() as tmp:
        frames = [render(sample_scene(random.Random(k), CANVAS), CANVAS) for k in range(5)]
        for k, f in enumerate(frames):
            f.save(os.path.join(tmp, f"frame-{k:04d}.png"))
        apng = os.path.join(tmp, "anim.png")
        frames[0].save(apng, save_all=True, append_images=frames[1:], duration=100, loop=0)
        got, notes = read_frames(tmp, 5)
        assert notes == [] and all(np.array_equal(rgb_array(a), rgb_array(b)) for a, b in zip(got, frames))
        chk = apng_check(apng, got)
        assert not chk["mismatch"] and chk["n_frames"] == 5, chk
        bad = rgb_array(got[3]).copy()
        bad[0, 0] = (0, 0, 0)
        chk = apng_check(apng, got[:3] + [Image.fromarray(bad)] + got[4:])
        assert chk["mismatch"] and chk["pixel_mismatch_frames"] == [3] and chk["count_ok"]
        chk = apng_check(apng, got + [got[0]])
        assert chk["mismatch"] and not chk["count_ok"]
        assert apng_check(os.path.join(tmp, "missing.png"), got)["error"]
        try:
            read_frames(tmp, 6)
            raise AssertionError("a missing frame must raise")
        except FrameError:
            pass
        assert read_frames(tmp, 4)[1] == [f"more than 4 frames in {tmp}"]
    # seeds: parts and cases never share an engine seed (for the largest counts main() allows)
    for stream in (EVAL_SEED, VALIDATION_SEED):
        td = {stream * 100000 + SEED_STRIDE * i + t for i in range(1250) for t in list(range(MAX_SOURCE_TRIES)) + [31]}
        ip = {stream * 100000 + INTERP_OFFSET + SEED_STRIDE * i + t for i in range(1250)
              for t in list(range(MAX_SOURCE_TRIES)) + list(range(16, 16 + MAX_SOURCE_TRIES)) + [31]}
        pp = {stream * 100000 + PROMPT_OFFSET + i for i in range(20000)}
        assert not (td & ip) and not (td & pp) and not (ip & pp)
    assert json.dumps(finite({"a": math.inf, "b": [math.nan, 1.0]}), allow_nan=False) == '{"a": null, "b": [null, 1.0]}'
    assert edit_bench.CANVAS == CANVAS
    print("self-test ok (PSNR, smoothness rule, mixed-colour blob rule, captions, text-diff rule, frames/APNG check, seeds)")


# ---------------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output folder (made if missing)")
    ap.add_argument("--engine", default=os.path.join(REPO, ".build", "release", "unclip"), help="the unclip CLI")
    ap.add_argument("-m", "--model", help="model file (default: the engine's embedded model)")
    ap.add_argument("--stream", choices=("eval", "validation"), default="eval",
                    help=f"eval: seed {EVAL_SEED} (reported figures); validation: seed {VALIDATION_SEED} (tuning)")
    ap.add_argument("--frames", type=int, default=8, help="frames per call (default 8; the middle frame is N//2)")
    ap.add_argument("--cases-textdiff", type=int, default=60)
    ap.add_argument("--cases-interp", type=int, default=40)
    ap.add_argument("--prompt-pairs", type=int, default=10, help="--from-prompt/--to-prompt pairs (default 10)")
    ap.add_argument("--latents", choices=("inverted", "fixed"), default="inverted",
                    help="unclip interpolate --latents for the image pairs (default inverted; always passed)")
    ap.add_argument("--textdiff-args", action="append", default=[],
                    help="extra flags for unclip textdiff, e.g. --textdiff-args='--max-theta 0.6' (repeatable)")
    ap.add_argument("--interpolate-args", action="append", default=[],
                    help="extra flags for unclip interpolate (image and prompt pairs)")
    ap.add_argument("--generate-args", action="append", default=[], help="extra flags for unclip generate (sources)")
    ap.add_argument("--source-tries", type=int, default=8,
                    help=f"seeds tried per source (default 8, at most {MAX_SOURCE_TRIES})")
    ap.add_argument("--cache", help="folder caching generated sources (key: model file, prompt, seed, generate args; "
                                    "not the engine binary), so tuning runs regenerate only the frames")
    ap.add_argument("--call-timeout", type=float, default=900.0, help="seconds per textdiff/interpolate call (900)")
    ap.add_argument("--grid", type=int, default=4, help="cases of each part shown in grid.png (default 4)")
    ap.add_argument("--only", choices=PARTS, action="append", help="run only these parts")
    ap.add_argument("--self-test", action="store_true", help="check the helpers on synthetic images and exit")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    if not args.out:
        ap.error("--out is required")
    if args.frames < 2:
        ap.error("--frames must be >= 2")
    if not 1 <= args.source_tries <= MAX_SOURCE_TRIES:
        ap.error(f"--source-tries must be in 1...{MAX_SOURCE_TRIES} (seeds are spaced for that many)")
    if max(args.cases_textdiff, args.cases_interp) > 1250 or args.prompt_pairs > 20000:
        ap.error("at most 1250 text-diff cases / interpolation pairs and 20000 prompt pairs (seed ranges)")
    if not (os.path.isfile(args.engine) and os.access(args.engine, os.X_OK)):
        ap.error(f"{args.engine}: not an executable file")
    os.makedirs(args.out, exist_ok=True)
    split = lambda items: [tok for item in items for tok in shlex.split(item)]   # noqa: E731
    engine = MorphEngine(args.engine, args.model, split(args.generate_args), split(args.textdiff_args),
                         split(args.interpolate_args), args.cache, args.latents, args.call_timeout)
    bench = Bench(args, engine)
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    counts = {"textdiff": args.cases_textdiff, "interpolate": args.cases_interp, "prompts": args.prompt_pairs}
    records = []
    with open(os.path.join(args.out, "cases.jsonl"), "w") as f:
        for part in PARTS:
            if args.only and part not in args.only:
                continue
            for i in range(counts[part]):
                rec = bench.run(part, i)
                records.append(rec)
                f.write(json.dumps(finite(rec)) + "\n")
                f.flush()
                state = {True: "ok", False: "x", None: "skipped"}[rec.get("success")]
                what = (f"{rec.get('kind')}: {rec.get('from_caption', rec.get('source_caption'))} -> {rec.get('to_caption')}"
                        if part == "textdiff" else f"{rec.get('caption_a')} -> {rec.get('caption_b')}")
                print(f"[{part} {i + 1}/{counts[part]}] {state:7s} {what}", file=sys.stderr)
    summary = finite(summarize(records, engine, args, bench.stream_seed, started, time.perf_counter() - t0))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, allow_nan=False)
    grid(records, os.path.join(args.out, "grid.png"), args.grid)
    s = summary["summary"]
    brief = {}
    if "textdiff" in s:
        t = s["textdiff"]
        brief["textdiff"] = {k: t[k] for k in ("scored", "success_rate", "strict_success_rate", "frame0_psnr_db",
                                               "seconds_per_frame", "engine_errors")} | \
            {"kinds": {k: v["success_rate"] for k, v in t["kinds"].items()}}
    if "interpolate" in s:
        t = s["interpolate"]
        brief["interpolate"] = {k: t[k] for k in ("scored", "end_psnr_db", "end_psnr_share_ge_target", "middle_valid_rate",
                                                  "smooth_rate", "worst_step_ratio", "seconds_per_frame", "engine_errors")}
    if "prompts" in s:
        t = s["prompts"]
        brief["prompts"] = {k: t[k] for k in ("scored", "middle_valid_rate", "smooth_rate", "worst_step_ratio",
                                              "engine_errors")}
    brief["apng_mismatch"] = s["apng_mismatch"]
    print(json.dumps(brief, indent=1))


if __name__ == "__main__":
    main()
