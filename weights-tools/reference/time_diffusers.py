#!/usr/bin/env python3
"""Seconds per step of each unCLIP stage in diffusers/PyTorch, for `unclip-bench pipeline` to print next to the
engine's (same shapes: batch 2 with guidance for the prior and decoder, 1 for super-resolution).

    weights-tools/.venv/bin/python weights-tools/reference/time_diffusers.py <hub-model-dir> --threads 2 --repeats 2

Prints one JSON object: {"torch": version, "threads": n, "seconds": {"text_encoder": s, "prior_step": s,
"decoder_step": s, "super_res_step": s}, "peak_rss_mb": n}.
"""
import argparse
import json
import os
import time

import torch


def peak_rss_mb():
    """VmHWM of this process (ru_maxrss would include a parent's peak: Linux carries it across fork/exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def best_of(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel
    from transformers import CLIPTextModelWithProjection
    j = lambda *p: os.path.join(args.model_dir, *p)
    out = {}
    with torch.no_grad():
        te = CLIPTextModelWithProjection.from_pretrained(j("text_encoder")).eval()
        ids = torch.zeros(2, 77, dtype=torch.long)
        out["text_encoder"] = best_of(lambda: te(ids), args.repeats)
        d = te.config.hidden_size
        del te
        prior = PriorTransformer.from_pretrained(j("prior")).eval()
        e = prior.config.embedding_dim
        x, pe, hid = torch.randn(2, e), torch.randn(2, e), torch.randn(2, 77, d)
        mask = torch.ones(2, 77, dtype=torch.bool)
        out["prior_step"] = best_of(lambda: prior(x, timestep=500, proj_embedding=pe, encoder_hidden_states=hid, attention_mask=mask), args.repeats)
        del prior
        dec = UNet2DConditionModel.from_pretrained(j("decoder")).eval()
        s, cross = dec.config.sample_size, dec.config.cross_attention_dim
        temb = dec.time_embedding.linear_2.out_features
        sample, ctx = torch.randn(2, 3, s, s), torch.randn(2, 81, cross)
        cls, m = torch.randn(2, temb), torch.ones(2, 81, dtype=torch.bool)
        out["decoder_step"] = best_of(lambda: dec(sample, 500, encoder_hidden_states=ctx, class_labels=cls, attention_mask=m), args.repeats)
        del dec
        sr = UNet2DModel.from_pretrained(j("super_res_first")).eval()
        s = sr.config.sample_size
        out["super_res_step"] = best_of(lambda: sr(torch.randn(1, 6, s, s), 500), max(1, args.repeats - 1))
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "seconds": out,
                      "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
