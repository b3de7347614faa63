#!/usr/bin/env python3
"""Full-size Karlo-shaped checkpoints with random weights, in the hub layout (for conversion and pipeline
benchmarks; never committed: ~13.7 GB of fp32 safetensors).

Configs are kakaobrain/karlo-v1-alpha's (docs/karlo-inference.md). The models are built on PyTorch's meta device, so
only the tensor names and shapes come from diffusers/transformers; the values are N(0, 0.02²) drawn one tensor
at a time from a fixed seed. One component is held in memory at a time (the prior, ~4.1 GB, is the largest).

    weights-tools/.venv/bin/python weights-tools/reference/make_full_random_karlo.py /path/to/karlo-random
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from make_tiny_karlo import karlo_model_index, write_tokenizer  # noqa: E402


def models():
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel
    ch = (320, 640, 960, 1280)
    yield "text_encoder", "model.safetensors", lambda: CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=1))
    yield "prior", None, lambda: PriorTransformer(num_attention_heads=32, attention_head_dim=64, num_layers=20,
                                                  embedding_dim=768, num_embeddings=77, additional_embeddings=4)
    yield "text_proj", None, lambda: UnCLIPTextProjModel(clip_extra_context_tokens=4, clip_embeddings_dim=768,
                                                         time_embed_dim=1280, cross_attention_dim=1536)
    yield "decoder", None, lambda: UNet2DConditionModel(
        sample_size=64, in_channels=3, out_channels=6, layers_per_block=3, block_out_channels=ch,
        down_block_types=("ResnetDownsampleBlock2D",) + ("SimpleCrossAttnDownBlock2D",) * 3,
        up_block_types=("SimpleCrossAttnUpBlock2D",) * 3 + ("ResnetUpsampleBlock2D",),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", attention_head_dim=64, cross_attention_dim=1536,
        class_embed_type="identity", resnet_time_scale_shift="scale_shift", norm_num_groups=32, norm_eps=1e-5)
    for name in ("super_res_first", "super_res_last"):
        yield name, None, lambda: UNet2DModel(
            sample_size=256, in_channels=6, out_channels=3, layers_per_block=3, block_out_channels=ch,
            down_block_types=("ResnetDownsampleBlock2D",) * 4, up_block_types=("ResnetUpsampleBlock2D",) * 4,
            add_attention=False, norm_num_groups=32, norm_eps=1e-5, resnet_time_scale_shift="default")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    args = ap.parse_args()
    from diffusers import UnCLIPScheduler
    g = torch.Generator().manual_seed(20261126)
    total = 0
    for name, fname, make in models():
        with torch.device("meta"):
            m = make()
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            cfg = dict(m.config) if hasattr(m.config, "items") else m.config.to_dict()
            if not hasattr(m.config, "to_dict"):
                cfg = {"_class_name": type(m).__name__, "_diffusers_version": "0.42.1", **cfg}
            json.dump(cfg, f, indent=2, default=list)
        sd = {k: torch.randn(v.shape, generator=g) * 0.02 for k, v in m.state_dict().items()}
        n = sum(v.numel() for v in sd.values())
        total += n
        save_file(sd, os.path.join(d, fname or "diffusion_pytorch_model.safetensors"))
        del sd
        print(f"{name}: {n / 1e6:.2f}M parameters", flush=True)
    for name, kw in {"prior_scheduler": dict(variance_type="fixed_small_log", prediction_type="sample", clip_sample_range=5.0),
                     "decoder_scheduler": dict(variance_type="learned_range", prediction_type="epsilon"),
                     "super_res_scheduler": dict(variance_type="fixed_small_log", prediction_type="epsilon")}.items():
        UnCLIPScheduler(**kw).save_pretrained(os.path.join(args.out, name))
    write_tokenizer(os.path.join(args.out, "tokenizer"))
    index = karlo_model_index()
    with open(os.path.join(args.out, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
    print(f"total: {total / 1e9:.3f}B parameters in {args.out}")


if __name__ == "__main__":
    main()
