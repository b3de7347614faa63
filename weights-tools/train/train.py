#!/usr/bin/env python3
"""Trains the embedded default model (issue 5) stage by stage on the captioned-shapes world (world.py), with
fixed seeds, resumable checkpoints and a CSV log per stage.

    weights-tools/.venv/bin/python weights-tools/train/train.py clip --out /work/scratch/train --minutes 30

Stages (run in order; each resumes from its last checkpoint in <out>/<stage>/):
  clip   CLIPTextModelWithProjection + CLIPVisionModelWithProjection, contrastive (InfoNCE with multi-positive
         targets: identical captions in a batch are all positives), learnable temperature.
  prior  PriorTransformer (Karlo's options, prediction_type "sample") on the frozen CLIP: x0 = the image embedding
         standardised by clip_mean/clip_std (measured on the world, stored in the prior), squaredcos_cap_v2 noise,
         MSE on x0; the text conditioning is the empty prompt's 10% of the time (classifier-free guidance).
  decoder  UNet2DConditionModel with Karlo's block types at 32x32 + UnCLIPTextProjModel, conditioned on the frozen
         CLIP's image embedding of the 64x64 image (downsampled 2x by area for the decoder): ε-prediction MSE; the
         variance channels (learned_range) are held at the midpoint by an MSE to 0 for now (no VLB term yet);
         unCLIP's dropout: image embedding → the learned CFG embedding 10%, caption → "" 50%.
  superres UNet2DModel (super_res_first/last share it for now) 32→64: input = [x_t, the 32x32 image upscaled by
         PyTorch's antialiased bicubic, as the pipeline does], ε-prediction MSE.
  export   the hub layout (model_index.json, every component's config and safetensors, schedulers as Karlo's,
         tokenizer files, feature_extractor) under <out>/hub, ready for `unclip-weights convert`.
Not yet: a VLB term for the decoder's variance channels, noise augmentation of the super-res input, separate
super_res_last training, the evaluator loop over engine-generated images, the loss plot.
"""
import argparse
import csv
import math
import os
import random
import sys
import time

import numpy as np
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
    imgs = torch.stack([torch.from_numpy(np.array(render(s, CANVAS))).permute(2, 0, 1) for s in scenes]).float() / 255
    captions = [s["caption"] for s in scenes]
    enc = tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    return (imgs - MEAN) / STD, enc.input_ids, enc.attention_mask.bool(), captions


def drop_captions(ids, mask, empty, p):
    """unCLIP's caption dropout: each row becomes the empty prompt with probability p (its ids and mask)."""
    drop = (torch.rand(len(ids)) < p)[:, None]
    return (torch.where(drop, empty.input_ids.expand(len(ids), -1), ids),
            torch.where(drop, empty.attention_mask.bool().expand(len(ids), -1), mask))


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
        pixels, ids, _, captions = batch(rng, batch_size, tok)
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


PRIOR = dict(num_attention_heads=4, attention_head_dim=16, num_layers=4, embedding_dim=64, num_embeddings=77,
             additional_embeddings=4, dropout=0.0)


def alphas_cumprod(n=1000):
    # squaredcos_cap_v2 (diffusers betas_for_alpha_bar), as UnCLIPScheduler
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = torch.tensor([min(1 - f((i + 1) / n) / f(i / n), 0.999) for i in range(n)], dtype=torch.float32)
    return torch.cumprod(1 - betas, 0)


def load_clip(out):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection
    state = torch.load(os.path.join(out, "clip", "checkpoint.pt"), weights_only=False)
    text = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_TEXT))
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VISION))
    text.load_state_dict(state["text"])
    vision.load_state_dict(state["vision"])
    return text.eval().requires_grad_(False), vision.eval().requires_grad_(False)


def train_prior(out, minutes, batch_size, lr, cfg_dropout=0.1):
    from diffusers import PriorTransformer
    d = os.path.join(out, "prior")
    os.makedirs(d, exist_ok=True)
    text, vision = load_clip(out)
    tok = tokenizer()
    rng = random.Random(SEED + 1)
    torch.manual_seed(SEED + 1)
    prior = PriorTransformer(**PRIOR)
    ckpt = os.path.join(d, "checkpoint.pt")
    opt = torch.optim.AdamW(prior.parameters(), lr=lr, weight_decay=0.01)
    step, seconds = resumable(ckpt, {"prior": prior}, opt, rng)
    if step == 0:
        # clip_mean / clip_std of the world's image embeddings (4,096 images), the prior's normalisation buffers
        with torch.no_grad():
            embs = torch.cat([vision(pixel_values=batch(rng, 256, tok)[0]).image_embeds for _ in range(16)])
        prior.clip_mean.data.copy_(embs.mean(0, keepdim=True))
        prior.clip_std.data.copy_(embs.std(0, keepdim=True))
    ac = alphas_cumprod()
    empty = tok([""], padding="max_length", max_length=77, return_tensors="pt")

    def loss():
        pixels, ids, mask, _ = batch(rng, batch_size, tok)
        ids, mask = drop_captions(ids, mask, empty, cfg_dropout)
        with torch.no_grad():
            t_out = text(input_ids=ids)
            x0 = (vision(pixel_values=pixels).image_embeds - prior.clip_mean) / prior.clip_std
        t = torch.randint(0, 1000, (batch_size,))
        a = ac[t][:, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn_like(x0)
        pred = prior(xt, timestep=t, proj_embedding=t_out.text_embeds, encoder_hidden_states=t_out.last_hidden_state,
                     attention_mask=mask).predicted_image_embedding
        return F.mse_loss(pred, x0)

    run_steps("prior", minutes, dict(log=Log(os.path.join(d, "log.csv")), ckpt=ckpt, modules={"prior": prior}, rng=rng,
                                     step=step, seconds=seconds, lr=lr), loss, opt, every=200)


DECODER = dict(sample_size=CANVAS // 2, in_channels=3, out_channels=6, layers_per_block=1, block_out_channels=(64, 128, 192),
               down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"),
               up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
               mid_block_type="UNetMidBlock2DSimpleCrossAttn", attention_head_dim=32, cross_attention_dim=128,
               class_embed_type="identity", resnet_time_scale_shift="scale_shift", norm_num_groups=32, norm_eps=1e-5)
TEXT_PROJ = dict(clip_extra_context_tokens=4, clip_embeddings_dim=64, time_embed_dim=4 * 64, cross_attention_dim=128)


def resumable(path, modules, opt, rng):
    """Loads a stage checkpoint when there is one: returns (step, seconds)."""
    if not os.path.exists(path):
        return 0, 0.0
    state = torch.load(path, weights_only=False)
    for k, m in modules.items():
        m.load_state_dict(state[k])
    opt.load_state_dict(state["opt"])
    rng.setstate(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    print(f"resumed {os.path.basename(os.path.dirname(path))} at step {state['step']}")
    return state["step"], state["seconds"]


def save(path, modules, opt, rng, step, seconds):
    torch.save({**{k: m.state_dict() for k, m in modules.items()}, "opt": opt.state_dict(), "step": step, "seconds": seconds,
                "rng": rng.getstate(), "torch_rng": torch.get_rng_state()}, path + ".tmp")
    os.replace(path + ".tmp", path)


def run_steps(stage, minutes, state, compute_loss, opt, every, clip=None):
    """The loop every diffusion stage shares: steps until the stage has run `minutes` in all (across resumes),
    logging every 10 steps and checkpointing every `every`. state = dict(log, ckpt, modules, rng, step, seconds, lr);
    compute_loss() draws a batch and returns the loss; `clip` are parameters whose gradient norm is clipped to 1."""
    start = time.time()
    step, seconds = state["step"], state["seconds"]
    elapsed = lambda: seconds + time.time() - start
    while elapsed() < minutes * 60:
        loss = compute_loss()
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(clip, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            state["log"].row(step, round(elapsed(), 1), round(loss.item(), 4), "", state["lr"])
            print(f"{stage} step {step} loss {loss.item():.4f}", flush=True)
        if step % every == 0:
            save(state["ckpt"], state["modules"], opt, state["rng"], step, elapsed())
    save(state["ckpt"], state["modules"], opt, state["rng"], step, elapsed())
    print(f"{stage}: {step} steps")


def train_decoder(out, minutes, batch_size, lr, drop_image=0.1, drop_text=0.5):
    from diffusers import UNet2DConditionModel
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
    d = os.path.join(out, "decoder")
    os.makedirs(d, exist_ok=True)
    text, vision = load_clip(out)
    tok = tokenizer()
    rng = random.Random(SEED + 2)
    torch.manual_seed(SEED + 2)
    unet, proj = UNet2DConditionModel(**DECODER), UnCLIPTextProjModel(**TEXT_PROJ)
    with torch.no_grad():  # diffusers zero-initialises the learned CFG embedding; start it small and random
        proj.learned_classifier_free_guidance_embeddings.normal_(0, 0.02)
    modules = {"unet": unet, "text_proj": proj}
    opt = torch.optim.AdamW(list(unet.parameters()) + list(proj.parameters()), lr=lr, weight_decay=0.01)
    ckpt = os.path.join(d, "checkpoint.pt")
    step, seconds = resumable(ckpt, modules, opt, rng)
    ac = alphas_cumprod()
    empty = tok([""], padding="max_length", max_length=77, return_tensors="pt")

    def loss():
        pixels, ids, mask, _ = batch(rng, batch_size, tok)
        ids, mask = drop_captions(ids, mask, empty, drop_text)
        with torch.no_grad():
            t_out = text(input_ids=ids)
            img_emb = vision(pixel_values=pixels).image_embeds
        di = (torch.rand(batch_size) < drop_image)[:, None]
        img_emb = torch.where(di, proj.learned_classifier_free_guidance_embeddings[None, :].expand(batch_size, -1), img_emb)
        hidden, additive = proj(image_embeddings=img_emb, prompt_embeds=t_out.text_embeds,
                                text_encoder_hidden_states=t_out.last_hidden_state, do_classifier_free_guidance=False)
        x0 = F.avg_pool2d(pixels * STD + MEAN, 2) * 2 - 1                            # the 32x32 image in [-1, 1]
        t = torch.randint(0, 1000, (batch_size,))
        a = ac[t][:, None, None, None]
        eps = torch.randn_like(x0)
        out6 = unet(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, encoder_hidden_states=hidden, class_labels=additive,
                    attention_mask=F.pad(mask, (4, 0), value=True)).sample
        return F.mse_loss(out6[:, :3], eps) + 1e-3 * out6[:, 3:].pow(2).mean()

    run_steps("decoder", minutes, dict(log=Log(os.path.join(d, "log.csv")), ckpt=ckpt, modules=modules, rng=rng,
                                       step=step, seconds=seconds, lr=lr), loss, opt, every=100, clip=list(unet.parameters()))


SUPER_RES = dict(sample_size=CANVAS, in_channels=6, out_channels=3, layers_per_block=1, block_out_channels=(32, 64),
                 down_block_types=("ResnetDownsampleBlock2D",) * 2, up_block_types=("ResnetUpsampleBlock2D",) * 2,
                 add_attention=False, norm_num_groups=32, norm_eps=1e-5, resnet_time_scale_shift="default")


def train_superres(out, minutes, batch_size, lr):
    from diffusers import UNet2DModel
    d = os.path.join(out, "superres")
    os.makedirs(d, exist_ok=True)
    tok = tokenizer()
    rng = random.Random(SEED + 3)
    torch.manual_seed(SEED + 3)
    unet = UNet2DModel(**SUPER_RES)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.01)
    ckpt = os.path.join(d, "checkpoint.pt")
    step, seconds = resumable(ckpt, {"unet": unet}, opt, rng)
    ac = alphas_cumprod()

    def loss():
        pixels = batch(rng, batch_size, tok)[0]
        x0 = (pixels * STD + MEAN) * 2 - 1                                             # [-1, 1], 64x64
        low = F.avg_pool2d(x0, 2)
        up = F.interpolate(low, size=[CANVAS, CANVAS], mode="bicubic", align_corners=False, antialias=True)
        t = torch.randint(0, 1000, (batch_size,))
        a = ac[t][:, None, None, None]
        eps = torch.randn_like(x0)
        pred = unet(torch.cat([a.sqrt() * x0 + (1 - a).sqrt() * eps, up], 1), t).sample
        return F.mse_loss(pred, eps)

    run_steps("superres", minutes, dict(log=Log(os.path.join(d, "log.csv")), ckpt=ckpt, modules={"unet": unet}, rng=rng,
                                        step=step, seconds=seconds, lr=lr), loss, opt, every=100)


def export(out):
    """Every stage's latest checkpoint → <out>/hub in Karlo's layout (plus the image encoder for variations)."""
    import json
    import shutil
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel, UnCLIPScheduler
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
    from transformers import CLIPImageProcessor
    hub = os.path.join(out, "hub")
    text, vision = load_clip(out)
    text.save_pretrained(os.path.join(hub, "text_encoder"))
    vision.save_pretrained(os.path.join(hub, "image_encoder"))
    CLIPImageProcessor(size={"shortest_edge": CANVAS}, crop_size={"height": CANVAS, "width": CANVAS}).save_pretrained(
        os.path.join(hub, "feature_extractor"))
    prior = PriorTransformer(**PRIOR)
    prior.load_state_dict(torch.load(os.path.join(out, "prior", "checkpoint.pt"), weights_only=False)["prior"])
    prior.save_pretrained(os.path.join(hub, "prior"))
    dec = torch.load(os.path.join(out, "decoder", "checkpoint.pt"), weights_only=False)
    unet, proj = UNet2DConditionModel(**DECODER), UnCLIPTextProjModel(**TEXT_PROJ)
    unet.load_state_dict(dec["unet"])
    proj.load_state_dict(dec["text_proj"])
    unet.save_pretrained(os.path.join(hub, "decoder"))
    proj.save_pretrained(os.path.join(hub, "text_proj"))
    sr = UNet2DModel(**SUPER_RES)
    sr.load_state_dict(torch.load(os.path.join(out, "superres", "checkpoint.pt"), weights_only=False)["unet"])
    for name in ("super_res_first", "super_res_last"):
        sr.save_pretrained(os.path.join(hub, name))
    # Karlo's scheduler configs (design/KARLO.md)
    UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", clip_sample_range=5.0).save_pretrained(os.path.join(hub, "prior_scheduler"))
    UnCLIPScheduler(variance_type="learned_range", prediction_type="epsilon").save_pretrained(os.path.join(hub, "decoder_scheduler"))
    UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="epsilon").save_pretrained(os.path.join(hub, "super_res_scheduler"))
    os.makedirs(os.path.join(hub, "tokenizer"), exist_ok=True)
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOKENIZER_DIR, f), os.path.join(hub, "tokenizer", f))
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
    from make_tiny_karlo import karlo_model_index
    index = karlo_model_index()
    index["image_encoder"] = ["transformers", "CLIPVisionModelWithProjection"]
    index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    with open(os.path.join(hub, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
    print(f"exported {hub}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["clip", "prior", "decoder", "superres", "export"])
    ap.add_argument("--out", required=True, help="checkpoints and logs (keep outside the repository)")
    ap.add_argument("--minutes", type=float, default=20, help="wall-time budget of this run (the stage resumes)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.stage == "clip":
        train_clip(args.out, args.minutes, args.batch, args.lr)
    elif args.stage == "prior":
        train_prior(args.out, args.minutes, args.batch, args.lr)
    elif args.stage == "decoder":
        train_decoder(args.out, args.minutes, args.batch, args.lr)
    elif args.stage == "superres":
        train_superres(args.out, args.minutes, args.batch, args.lr)
    else:
        export(args.out)


if __name__ == "__main__":
    main()
