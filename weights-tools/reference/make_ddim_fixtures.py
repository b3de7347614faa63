#!/usr/bin/env python3
"""Runs the unCLIP decoder and super-res UNets of a hub-layout model under diffusers' DDIMScheduler and
DDIMInverseScheduler (with this script's own loops: UnCLIPPipeline passes prev_timestep, which DDIM does not take)
and saves every step, for the Swift DDIM / inversion parity tests.

    weights-tools/.venv/bin/python weights-tools/reference/make_ddim_fixtures.py \
        Tests/UnCLIPTests/Fixtures/tiny-karlo Tests/UnCLIPTests/Fixtures/tiny-karlo-ddim.safetensors

Conditioning (all runs): PROMPT through the pipeline's _encode_prompt (uncond first), image embedding
inputs.image_embeds = randn(1, E) with seed 4321, text_proj and the padded attention mask as the pipeline builds
them. Guidance g > 1: the pipeline's CFG on the ε channels (the variance channels are dropped); g = 1: the
conditional half only, batch 1. Schedulers: DDIM*.from_config(<the model's UnCLIP scheduler config>, **overrides);
each run's parameters and the resulting scheduler config are the JSON metadata "<run>.params".

Runs: a (eta 0, 6 steps, g 8, leading, offset 0, alpha→1; super-res 4 steps), b (eta 0.5, 6 steps, g 8, trailing,
recorded step noise; super-res eta 0.5, 3 steps, trailing, prediction_type "sample"), c (eta 0, 5 steps, g 1,
linspace, no clip_sample), d (eta 0, 4 steps, g 4, leading, steps_offset 1, alpha_prod[0] final), inv1 / inv8
(DDIMInverseScheduler of a.decoder.image over run a's 6-step leading schedule, g 1 / 8), inv1.regen (run a's DDIM
from inv1's x_T at g 1; its PSNR against a.decoder.image is the metadata "inv1.regen_psnr_db").

Tensors (F32, images NCHW), P = <run>.decoder or <run>.super_res:
  inputs.image_embeds [1, E]
  P.latents (x_T), P.timesteps (float), P.sample.<i> (prev_sample after step i), P.noise.<i> (run b: variance_noise)
  <run>.decoder.image (final sample clamped to [-1, 1]); a/b: <run>.super_res.image (final sample, unclamped),
  <run>.image.uint8 (round(clamp(x/2 + 1/2, 0, 1)·255), as numpy, but NCHW)
  inv1/inv8: <run>.decoder.timesteps, <run>.decoder.sample.<i>, <run>.decoder.latents_T; inv1.regen.image
"""
import argparse
import json
import math
import os
import sys

import diffusers
import torch
import torch.nn.functional as F
from diffusers import DDIMInverseScheduler, DDIMScheduler
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_pipeline_fixtures import PROMPT, load  # noqa: E402

FIXTURE_VERSION = "1"
EMBED_SEED = 4321


def conditioning(pipe, image_embeds):
    """(encoder_hidden_states, additive_clip_time_embeddings, attention mask), batch [uncond, cond], as the pipeline."""
    prompt_embeds, hidden, mask = pipe._encode_prompt(PROMPT, torch.device("cpu"), 1, do_classifier_free_guidance=True)
    hidden, additive = pipe.text_proj(image_embeddings=image_embeds, prompt_embeds=prompt_embeds,
                                      text_encoder_hidden_states=hidden, do_classifier_free_guidance=True)
    return hidden, additive, F.pad(mask, (pipe.text_proj.clip_extra_context_tokens, 0), value=True)


def decoder_eps(pipe, cond, guidance):
    """model(x, t, i) → the decoder's (guided) ε; guidance 1 runs only the conditional half, without CFG."""
    c = pipe.decoder.config.in_channels
    hidden, additive, mask = (v[1:] for v in cond) if guidance == 1 else cond

    def model(x, t, i):
        out = pipe.decoder(sample=x if guidance == 1 else torch.cat([x] * 2), timestep=t, encoder_hidden_states=hidden,
                           class_labels=additive, attention_mask=mask).sample
        if guidance == 1:
            return out[:, :c]
        uncond, text = (h[:, :c] for h in out.chunk(2))
        return uncond + guidance * (text - uncond)
    return model


def super_res_eps(pipe, upscaled, steps):
    """model(x, t, i): super_res_first on every step but the last, super_res_last on the last."""
    def model(x, t, i):
        unet = pipe.super_res_last if i == steps - 1 else pipe.super_res_first
        return unet(sample=torch.cat([x, upscaled], dim=1), timestep=t).sample
    return model


def describe(scheduler, **params):
    cfg = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}  # variance_type: carried over, unused
    print(type(scheduler).__name__, json.dumps(params), "\n  config:", json.dumps(cfg, default=str),
          "\n  timesteps:", scheduler.timesteps.tolist())
    return {**params, "scheduler": type(scheduler).__name__, "config": cfg, "timesteps": scheduler.timesteps.tolist()}


def ddim(out, prefix, config, overrides, steps, eta, model, shape=None, seed=None, latents=None, noise_seed=None):
    """The DDIM loop: x_T (seeded randn · init_noise_sigma, or `latents`), then scheduler.step per timestep, with
    explicit variance_noise seeded noise_seed + i when given. Records into `out` under `prefix`; returns (x_0, params)."""
    sched = DDIMScheduler.from_config(config, **overrides)
    sched.set_timesteps(steps)
    x = latents if latents is not None else torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * sched.init_noise_sigma
    out[prefix + ".latents"], out[prefix + ".timesteps"] = x, sched.timesteps.float()
    for i, t in enumerate(sched.timesteps):
        noise = None
        if noise_seed is not None:
            noise = out[f"{prefix}.noise.{i}"] = torch.randn(x.shape, generator=torch.Generator().manual_seed(noise_seed + i))
        x = out[f"{prefix}.sample.{i}"] = sched.step(model(x, t, i), t, x, eta=eta, variance_noise=noise).prev_sample
    return x, describe(sched, overrides=overrides, steps=steps, eta=eta, seed=seed, noise_seed=noise_seed)


def decode(out, run, pipe, cond, steps, eta, guidance, overrides, seed=None, latents=None, noise_seed=None):
    s = pipe.decoder.config.sample_size
    x, params = ddim(out, run + ".decoder", pipe.decoder_scheduler.config, overrides, steps, eta,
                     decoder_eps(pipe, cond, guidance), (1, pipe.decoder.config.in_channels, s, s), seed, latents, noise_seed)
    image = out[run + ".decoder.image"] = x.clamp(-1, 1)
    return image, {**params, "guidance": guidance}


def super_res(out, run, pipe, image_small, steps, eta, overrides, seed, noise_seed=None):
    s = pipe.super_res_first.config.sample_size
    upscaled = F.interpolate(image_small, size=[s, s], mode="bicubic", align_corners=False, antialias=True)
    x, params = ddim(out, run + ".super_res", pipe.super_res_scheduler.config, overrides, steps, eta,
                     super_res_eps(pipe, upscaled, steps), (1, pipe.super_res_first.config.in_channels // 2, s, s),
                     seed, noise_seed=noise_seed)
    out[run + ".super_res.image"] = x
    img = (x * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()  # the pipeline's numpy output, rounded as numpy_to_pil
    out[run + ".image.uint8"] = torch.from_numpy((img * 255).round().astype("uint8")).float().permute(0, 3, 1, 2)
    return params


def invert(out, run, pipe, cond, image, steps, guidance, overrides):
    """DDIMInverseScheduler from x_0 = image: the decoder's ε at each inverse timestep t, then step(ε, t, x)."""
    sched = DDIMInverseScheduler.from_config(pipe.decoder_scheduler.config, **overrides)
    sched.set_timesteps(steps)
    model, x = decoder_eps(pipe, cond, guidance), image
    out[run + ".decoder.timesteps"] = sched.timesteps.float()
    for i, t in enumerate(sched.timesteps):
        x = out[f"{run}.decoder.sample.{i}"] = sched.step(model(x, t, i), t, x).prev_sample
    out[run + ".decoder.latents_T"] = x
    return x, {**describe(sched, overrides=overrides, steps=steps), "guidance": guidance}


def psnr(x, y):
    """PSNR in dB of two [-1, 1] images mapped to [0, 255], unrounded."""
    mse = (((x.double() - y.double()) * 127.5) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out_file")
    args = ap.parse_args()
    pipe = load(args.model_dir)
    e = pipe.text_proj.config.clip_embeddings_dim
    out, params = {}, {}
    A = dict(timestep_spacing="leading", steps_offset=0, set_alpha_to_one=True)
    B = dict(timestep_spacing="trailing", set_alpha_to_one=False)
    with torch.no_grad():
        image_embeds = out["inputs.image_embeds"] = torch.randn(1, e, generator=torch.Generator().manual_seed(EMBED_SEED))
        cond = conditioning(pipe, image_embeds)

        a_image, dec = decode(out, "a", pipe, cond, 6, 0.0, 8.0, A, seed=11)
        params["a"] = {"decoder": dec, "super_res": super_res(out, "a", pipe, a_image, 4, 0.0, A, seed=12)}

        b_image, dec = decode(out, "b", pipe, cond, 6, 0.5, 8.0, B, seed=21, noise_seed=1000)
        params["b"] = {"decoder": dec, "super_res": super_res(out, "b", pipe, b_image, 3, 0.5, {**B, "prediction_type": "sample"},
                                                               seed=22, noise_seed=2000)}
        params["c"] = {"decoder": decode(out, "c", pipe, cond, 5, 0.0, 1.0,
                                         dict(timestep_spacing="linspace", clip_sample=False), seed=31)[1]}
        params["d"] = {"decoder": decode(out, "d", pipe, cond, 4, 0.0, 4.0,
                                         dict(timestep_spacing="leading", steps_offset=1, set_alpha_to_one=False), seed=41)[1]}

        inv = dict(timestep_spacing="leading", steps_offset=0, set_alpha_to_one=True)  # DDIMInverseScheduler's defaults
        x_T, params["inv1"] = invert(out, "inv1", pipe, cond, a_image, 6, 1.0, inv)
        params["inv8"] = invert(out, "inv8", pipe, cond, a_image, 6, 8.0, inv)[1]
        scratch = {}
        regen, params["inv1"]["regen"] = decode(scratch, "regen", pipe, cond, 6, 0.0, 1.0, A, latents=x_T)
        out["inv1.regen.image"] = regen
    regen_psnr = psnr(regen, a_image)
    print(f"inv1.regen PSNR vs a.decoder.image: {regen_psnr:.3f} dB")

    meta = {"fixture_version": FIXTURE_VERSION, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "prompt": PROMPT, "embed_seed": str(EMBED_SEED), "inv1.regen_psnr_db": f"{regen_psnr:.6f}",
            "command": "weights-tools/.venv/bin/python weights-tools/reference/make_ddim_fixtures.py "
                       + " ".join([args.model_dir, args.out_file])}
    meta.update({f"{run}.params": json.dumps(p, default=str) for run, p in params.items()})
    save_file({k: v.detach().float().clone().contiguous() for k, v in out.items()}, args.out_file, metadata=meta)
    print(json.dumps({k: list(v.shape) for k, v in out.items()}, indent=0))


if __name__ == "__main__":
    main()
