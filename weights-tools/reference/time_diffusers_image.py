#!/usr/bin/env python3
"""One whole text → image with diffusers' UnCLIPPipeline (default steps 25/25/7), for `unclip-bench image` to print
next to the engine's: the wall time, the time in each model (forward calls timed), the time to build the modules
and the peak RSS.

    weights-tools/.venv/bin/python weights-tools/reference/time_diffusers_image.py <hub-model-dir> \
        --dtype float32|bfloat16 --threads 2 --seed 1 --prompt "a red circle on top of a blue square"

bfloat16: every module cast with .to(torch.bfloat16); the pipeline's antialiased bicubic upscale has no bf16 CPU
kernel, so that one call runs in float32 and casts back. Prints one JSON object on stdout.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from make_pipeline_fixtures import load  # noqa: E402
from time_diffusers import peak_rss_mb  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prompt", default="a red circle on top of a blue square")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    t0 = time.perf_counter()
    pipe = load(args.model_dir).to(dtype)
    build = time.perf_counter() - t0
    seconds = {}

    def timed(name, module):
        forward = module.forward

        def wrapper(*a, **kw):
            t = time.perf_counter()
            out = forward(*a, **kw)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t
            return out
        module.forward = wrapper
    for name in ["text_encoder", "prior", "text_proj", "decoder", "super_res_first", "super_res_last"]:
        timed(name, getattr(pipe, name))
    if dtype != torch.float32:
        import diffusers.pipelines.deprecated.unclip.pipeline_unclip as pu
        interpolate = F.interpolate

        class FloatInterpolate:
            def __getattr__(self, k):
                return getattr(F, k)

            @staticmethod
            def interpolate(x, *a, **kw):
                return interpolate(x.float(), *a, **kw).to(x.dtype)
        pu.F = FloatInterpolate()
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        pipe(args.prompt, generator=g, output_type="np")
    wall = time.perf_counter() - t0
    print(json.dumps({"torch": torch.__version__, "dtype": args.dtype, "threads": args.threads, "seconds": wall,
                      "build_seconds": build, "model_seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
