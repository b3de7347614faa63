#!/usr/bin/env python3
"""Runs diffusers' UnCLIPPipeline on a hub-layout model directory with recorded noise and saves the noise file,
per-module inputs/outputs and every stage's result, for the Swift parity tests.

    weights-tools/.venv/bin/python weights-tools/reference/make_pipeline_fixtures.py \
        Tests/UnCLIPTests/Fixtures/tiny-karlo Tests/UnCLIPTests/Fixtures/tiny-karlo-run

writes <out>.noise.safetensors (the noise-file contract: prior.latents, prior.noise.{i}, decoder.latents,
decoder.noise.{i}, super_res.latents, super_res.noise.{i}) and <out>.expected.safetensors (NCHW, F32).
The pipeline is built from components (from_pretrained of the hub layout is broken in diffusers >= 0.38).
"""
import argparse
import functools
import json
import os

import torch
from safetensors.torch import save_file

import diffusers.pipelines.deprecated.unclip.pipeline_unclip as pipeline_module
import diffusers.schedulers.scheduling_unclip as scheduler_module
import diffusers.pipelines.deprecated.unclip.pipeline_unclip_image_variation as variation_module
from diffusers import (PriorTransformer, UNet2DConditionModel, UNet2DModel, UnCLIPImageVariationPipeline, UnCLIPPipeline,
                       UnCLIPScheduler)
from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
from transformers import CLIPTextModelWithProjection, CLIPTokenizer

PROMPT = "a red circle on top of a blue square"
# Bumped whenever what this script records changes; the Swift tests refuse fixtures of another version.
FIXTURE_VERSION = "2"
SEED = 1234


def load(model_dir):
    j = lambda *p: os.path.join(model_dir, *p)
    tok = CLIPTokenizer(j("tokenizer", "vocab.json"), j("tokenizer", "merges.txt"), pad_token="!", model_max_length=77)
    return UnCLIPPipeline(
        prior=PriorTransformer.from_pretrained(j("prior")),
        decoder=UNet2DConditionModel.from_pretrained(j("decoder")),
        text_encoder=CLIPTextModelWithProjection.from_pretrained(j("text_encoder")),
        tokenizer=tok,
        text_proj=UnCLIPTextProjModel.from_pretrained(j("text_proj")),
        super_res_first=UNet2DModel.from_pretrained(j("super_res_first")),
        super_res_last=UNet2DModel.from_pretrained(j("super_res_last")),
        prior_scheduler=UnCLIPScheduler.from_pretrained(j("prior_scheduler")),
        decoder_scheduler=UnCLIPScheduler.from_pretrained(j("decoder_scheduler")),
        super_res_scheduler=UnCLIPScheduler.from_pretrained(j("super_res_scheduler")),
    )


def record_draws(*modules):
    """Wraps randn_tensor in `modules` (and the scheduler module) so every draw is also appended to the returned
    list; the returned function puts the originals back."""
    draws = []
    originals = [(m, m.randn_tensor) for m in (*modules, scheduler_module)]
    original = originals[0][1]

    def recording(shape, **kw):
        t = original(shape, **kw)
        draws.append(t.detach().clone())
        return t
    for m, _ in originals:
        m.randn_tensor = recording

    def restore():
        for m, f in originals:
            m.randn_tensor = f
    return draws, restore


def record_steps(scheduler):
    """Wraps scheduler.step so each step's prev_sample is appended to the returned list."""
    outputs = []
    step = scheduler.step

    def wrapped(*a, **kw):
        out = step(*a, **kw)
        outputs.append(out.prev_sample.detach().clone().float())
        return out
    scheduler.step = wrapped
    return outputs


def input_image(path):
    """A fixed 48x40 RGB test image (shapes on a gradient), written as PNG; PIL reads it back as the pipeline's input."""
    from PIL import Image, ImageDraw
    img = Image.new("RGB", (48, 40))
    px = img.load()
    for y in range(40):
        for x in range(48):
            px[x, y] = (x * 5, y * 6, 128 + (x - y) * 2)
    d = ImageDraw.Draw(img)
    d.ellipse((6, 8, 22, 24), fill=(220, 50, 50))
    d.rectangle((26, 14, 42, 30), fill=(50, 90, 220))
    img.save(path)
    return Image.open(path).convert("RGB")


def run_variation(model_dir, out_prefix, decoder_steps, super_res_steps):
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection
    base = load(model_dir)
    pipe = UnCLIPImageVariationPipeline(
        decoder=base.decoder, text_encoder=base.text_encoder, tokenizer=base.tokenizer, text_proj=base.text_proj,
        feature_extractor=CLIPImageProcessor.from_pretrained(os.path.join(model_dir, "feature_extractor")),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(os.path.join(model_dir, "image_encoder")),
        super_res_first=base.super_res_first, super_res_last=base.super_res_last,
        decoder_scheduler=base.decoder_scheduler, super_res_scheduler=base.super_res_scheduler)
    image = input_image(out_prefix + ".input.png")
    draws, restore = record_draws(variation_module)
    expected = {}
    enc = pipe.image_encoder.forward

    def image_encoder(*a, **kw):
        out = enc(*a, **kw)
        expected["image_encoder.in.pixel_values"] = (a[0] if a else kw["pixel_values"]).detach().clone().float()
        expected["image_encoder.image_embeds"] = out.image_embeds.detach().clone().float()
        return out
    pipe.image_encoder.forward = image_encoder
    sr_outputs = record_steps(pipe.super_res_scheduler)
    with torch.no_grad():
        images = pipe(image, generator=torch.Generator().manual_seed(SEED), output_type="np",
                      decoder_num_inference_steps=decoder_steps, super_res_num_inference_steps=super_res_steps).images
    restore()
    expected["super_res.image"] = sr_outputs[-1]
    expected["image.uint8"] = torch.from_numpy((images * 255).round().astype("uint8")).float()
    names = ["decoder.latents"] + [f"decoder.noise.{i}" for i in range(decoder_steps - 1)]
    names += ["super_res.latents"] + [f"super_res.noise.{i}" for i in range(super_res_steps - 1)]
    assert len(names) == len(draws), (len(names), len(draws))
    meta = {"decoder_steps": str(decoder_steps), "super_res_steps": str(super_res_steps), "decoder_guidance": "8.0",
            "seed": str(SEED), "torch": torch.__version__, "fixture_version": FIXTURE_VERSION}
    save_file({n: d.float().contiguous() for n, d in zip(names, draws)}, out_prefix + ".noise.safetensors", metadata=meta)
    save_file({k: v.contiguous() for k, v in expected.items()}, out_prefix + ".expected.safetensors", metadata=meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out_prefix")
    ap.add_argument("--prior-steps", type=int, default=25)
    ap.add_argument("--decoder-steps", type=int, default=25)
    ap.add_argument("--super-res-steps", type=int, default=7)
    ap.add_argument("--decoder-guidance", type=float, default=8.0, help="diffusers' default 8.0 unless given")
    ap.add_argument("--final-only", action="store_true",
                    help="keep only the stage results (text.embeds, prior.image_embeds, decoder.image, super_res.image, "
                         "image.uint8), not per-module intermediates, and skip the variations run (a small fixture "
                         "of a bigger model)")
    args = ap.parse_args()
    pipe = load(args.model_dir)
    expected = {}

    # Every random draw, in order (pipeline latents and scheduler step noise).
    draws, restore = record_draws(pipeline_module)

    # The first call of each module: its inputs and output.
    def first_call(module, name, keys):
        orig = module.forward

        def wrapped(*a, **kw):
            out = orig(*a, **kw)
            if name + ".out" not in expected:
                kw = {**dict(zip(keys, a)), **kw}
                for k in keys:
                    v = kw.get(k)
                    if v is not None:
                        expected[f"{name}.in.{k}"] = torch.as_tensor(v).float().reshape(-1) if torch.as_tensor(v).ndim == 0 else torch.as_tensor(v).float()
                o = out[0] if isinstance(out, tuple) else (out.sample if hasattr(out, "sample") else out.predicted_image_embedding)
                expected[name + ".out"] = o.detach().float()
            return out
        module.forward = wrapped

    first_call(pipe.prior, "prior", ["hidden_states", "timestep", "proj_embedding", "encoder_hidden_states", "attention_mask"])
    first_call(pipe.decoder, "decoder", ["sample", "timestep", "encoder_hidden_states", "class_labels", "attention_mask"])
    first_call(pipe.super_res_first, "super_res_first", ["sample", "timestep"])
    first_call(pipe.super_res_last, "super_res_last", ["sample", "timestep"])

    te_calls = []
    te_forward = pipe.text_encoder.forward

    def te(*a, **kw):
        out = te_forward(*a, **kw)
        te_calls.append((a[0] if a else kw["input_ids"], out.text_embeds.detach(), out.last_hidden_state.detach()))
        return out
    pipe.text_encoder.forward = te

    post = pipe.prior.post_process_latents

    def post_process(x):
        y = post(x)
        expected["prior.image_embeds"] = y.detach().float()
        return y
    pipe.prior.post_process_latents = post_process

    tp_forward = pipe.text_proj.forward

    def tp(**kw):
        hidden, additive = tp_forward(**kw)
        expected["text_proj.in.image_embeddings"] = kw["image_embeddings"].detach().float()
        expected["text_proj.out.hidden"] = hidden.detach().float()
        expected["text_proj.out.additive"] = additive.detach().float()
        return hidden, additive
    pipe.text_proj.forward = tp

    interp = pipeline_module.F.interpolate

    # functools.wraps keeps F.interpolate's signature visible: the pipeline passes antialias=True only when
    # inspect.signature(F.interpolate) lists it.
    @functools.wraps(interp)
    def interpolate(x, *a, **kw):
        y = interp(x, *a, **kw)
        if kw.get("mode") == "bicubic":  # the pipeline's upscale (F is torch's module: the UNets call it too)
            expected["decoder.image"] = x.detach().float()
            expected["super_res.upscaled"] = y.detach().float()
        return y
    pipeline_module.F.interpolate = interpolate

    sr_outputs = record_steps(pipe.super_res_scheduler)

    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        images = pipe(PROMPT, generator=gen, output_type="np", prior_num_inference_steps=args.prior_steps,
                      decoder_num_inference_steps=args.decoder_steps, super_res_num_inference_steps=args.super_res_steps,
                      decoder_guidance_scale=args.decoder_guidance).images

    # Text encoder: call 0 is the prompt, call 1 the unconditional "".
    (cond_ids, cond_emb, cond_hid), (uncond_ids, uncond_emb, uncond_hid) = te_calls[0], te_calls[1]
    expected["tokens.cond"] = cond_ids.float()
    expected["tokens.uncond"] = uncond_ids.float()
    expected["text.embeds"] = cond_emb.float()
    expected["text.hidden"] = cond_hid.float()
    expected["text.uncond_embeds"] = uncond_emb.float()
    expected["text.uncond_hidden"] = uncond_hid.float()
    expected["super_res.image"] = sr_outputs[-1]
    expected["image.uint8"] = torch.from_numpy((images * 255).round().astype("uint8")).float()  # numpy_to_pil's rounding

    # Name the draws: prior latents, prior noise ×(steps−1), decoder latents, …
    names = ["prior.latents"] + [f"prior.noise.{i}" for i in range(args.prior_steps - 1)]
    names += ["decoder.latents"] + [f"decoder.noise.{i}" for i in range(args.decoder_steps - 1)]
    names += ["super_res.latents"] + [f"super_res.noise.{i}" for i in range(args.super_res_steps - 1)]
    assert len(names) == len(draws), (len(names), len(draws))
    noise = {n: d.float().contiguous() for n, d in zip(names, draws)}
    meta = {"prompt": PROMPT, "seed": str(SEED), "prior_steps": str(args.prior_steps), "decoder_steps": str(args.decoder_steps),
            "super_res_steps": str(args.super_res_steps), "prior_guidance": "4.0", "decoder_guidance": str(args.decoder_guidance),
            "diffusers": pipeline_module.__name__, "torch": torch.__version__, "fixture_version": FIXTURE_VERSION,
            "command": "weights-tools/.venv/bin/python weights-tools/reference/make_pipeline_fixtures.py " + " ".join([args.model_dir, args.out_prefix])}
    if args.final_only:
        expected = {k: v for k, v in expected.items()
                    if k in ("text.embeds", "prior.image_embeds", "decoder.image", "super_res.image", "image.uint8")}
        meta["command"] += " --final-only" + (f" --decoder-guidance {args.decoder_guidance}" if args.decoder_guidance != 8.0 else "")
    save_file(noise, args.out_prefix + ".noise.safetensors", metadata=meta)
    save_file({k: v.detach().clone().contiguous() for k, v in expected.items()}, args.out_prefix + ".expected.safetensors", metadata=meta)
    print(json.dumps({k: list(v.shape) for k, v in expected.items()}, indent=0))
    if os.path.isdir(os.path.join(args.model_dir, "image_encoder")) and not args.final_only:
        restore()
        pipeline_module.F.interpolate = interp
        run_variation(args.model_dir, args.out_prefix + "-vary", args.decoder_steps, args.super_res_steps)


if __name__ == "__main__":
    main()
