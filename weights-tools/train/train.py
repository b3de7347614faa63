#!/usr/bin/env python3
"""Trains the embedded default model (issue 5) stage by stage on the captioned-shapes world (world.py), with
fixed seeds, resumable checkpoints and a CSV log per stage.

    weights-tools/.venv/bin/python weights-tools/train/train.py clip --out /work/scratch/train --minutes 30

Stages (run in order; each resumes from its last checkpoint in <out>/<stage>/):
  clip   CLIPTextModelWithProjection + CLIPVisionModelWithProjection, contrastive (InfoNCE with multi-positive
         targets: identical captions in a batch are all positives), learnable temperature.
Implemented so far: clip. The prior, decoder (classifier-free-guidance dropout) and super-resolution stages and the
hub-layout export come next (see the issue's notes in the session log).
"""
import argparse
import csv
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from world import render, sample_scene  # noqa: E402

SEED = 20261126
CANVAS = 64          # final image size; the decoder works at 32x32, super-resolution doubles it
TOKENIZER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "UnCLIPTests", "Fixtures", "tiny-karlo", "tokenizer")

CLIP_TEXT = dict(vocab_size=49408, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=2,
                 max_position_embeddings=77, projection_dim=64, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                 bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
CLIP_VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=2, image_size=CANVAS,
                   patch_size=8, projection_dim=64, hidden_act="quick_gelu", layer_norm_eps=1e-5)
# OpenAI CLIP's pixel mean/std (transformers OPENAI_CLIP_MEAN/STD), as CLIPImageProcessor normalises.
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def tokenizer():
    from transformers import CLIPTokenizer
    return CLIPTokenizer(os.path.join(TOKENIZER_DIR, "vocab.json"), os.path.join(TOKENIZER_DIR, "merges.txt"),
                         pad_token="!", model_max_length=77)


def batch(rng, n, tok):
    scenes = [sample_scene(rng, CANVAS) for _ in range(n)]
    imgs = torch.stack([torch.from_numpy(__import__("numpy").asarray(render(s, CANVAS))).permute(2, 0, 1) for s in scenes]).float() / 255
    captions = [s["caption"] for s in scenes]
    ids = tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    return (imgs - MEAN) / STD, ids, captions


class Log:
    def __init__(self, path):
        new = not os.path.exists(path)
        self.f = open(path, "a", newline="")
        self.w = csv.writer(self.f)
        if new:
            self.w.writerow(["step", "seconds", "loss", "accuracy", "lr"])

    def row(self, *v):
        self.w.writerow(v)
        self.f.flush()


def train_clip(out, minutes, batch_size, lr):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection
    d = os.path.join(out, "clip")
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(SEED)
    text = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_TEXT))
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VISION))
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    params = list(text.parameters()) + list(vision.parameters()) + [logit_scale]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    step, seconds = 0, 0.0
    ckpt = os.path.join(d, "checkpoint.pt")
    rng = random.Random(SEED)
    if os.path.exists(ckpt):
        state = torch.load(ckpt, weights_only=False)
        text.load_state_dict(state["text"])
        vision.load_state_dict(state["vision"])
        logit_scale.data.copy_(state["logit_scale"])
        opt.load_state_dict(state["opt"])
        step, seconds = state["step"], state["seconds"]
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed clip at step {step} ({seconds / 60:.1f} min)")
    log = Log(os.path.join(d, "log.csv"))
    tok = tokenizer()
    start = time.time()
    while (seconds + time.time() - start) < minutes * 60:
        pixels, ids, captions = batch(rng, batch_size, tok)
        img = F.normalize(vision(pixel_values=pixels).image_embeds, dim=-1)
        txt = F.normalize(text(input_ids=ids).text_embeds, dim=-1)
        logits = logit_scale.exp().clamp(max=100) * img @ txt.t()
        same = torch.tensor([[a == b for b in captions] for a in captions], dtype=torch.float32)
        targets = same / same.sum(1, keepdim=True)
        loss = (-(targets * logits.log_softmax(1)).sum(1).mean() - (targets * logits.t().log_softmax(1)).sum(1).mean()) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        acc = (same[torch.arange(len(captions)), logits.argmax(1)] > 0).float().mean().item()
        if step % 10 == 0:
            log.row(step, round(seconds + time.time() - start, 1), round(loss.item(), 4), round(acc, 3), lr)
            print(f"clip step {step} loss {loss.item():.3f} image→text acc {acc:.2f}", flush=True)
        if step % 200 == 0:
            torch.save({"text": text.state_dict(), "vision": vision.state_dict(), "logit_scale": logit_scale.data,
                        "opt": opt.state_dict(), "step": step, "seconds": seconds + time.time() - start,
                        "rng": rng.getstate(), "torch_rng": torch.get_rng_state()}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)
    torch.save({"text": text.state_dict(), "vision": vision.state_dict(), "logit_scale": logit_scale.data,
                "opt": opt.state_dict(), "step": step, "seconds": seconds + time.time() - start,
                "rng": rng.getstate(), "torch_rng": torch.get_rng_state()}, ckpt + ".tmp")
    os.replace(ckpt + ".tmp", ckpt)
    print(f"clip: {step} steps, {(seconds + time.time() - start) / 60:.1f} min")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["clip"])
    ap.add_argument("--out", required=True, help="checkpoints and logs (keep outside the repository)")
    ap.add_argument("--minutes", type=float, default=20, help="wall-time budget of this run (the stage resumes)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.stage == "clip":
        train_clip(args.out, args.minutes, args.batch, args.lr)


if __name__ == "__main__":
    main()
