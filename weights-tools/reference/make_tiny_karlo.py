#!/usr/bin/env python3
"""Tiny random-weight checkpoints of the Karlo (unCLIP) architecture in the hub layout.

Same classes and block types as kakaobrain/karlo-v1-alpha (docs/karlo-inference.md): CLIPTextModelWithProjection with
the real CLIP BPE vocabulary, PriorTransformer (prd token, 4 extra embeddings), UnCLIPTextProjModel,
UNet2DConditionModel decoder (ResnetDownsampleBlock2D / SimpleCrossAttn*, scale_shift resnets, learned-range
output with 6 channels), UNet2DModel super_res_first/last (default resnets, no mid attention), UnCLIPScheduler x3;
with --variations also CLIPVisionModelWithProjection + CLIPImageProcessor. Only the sizes are small.

Re-create the committed fixture with:
    weights-tools/setup_venv.sh --reference && \
    weights-tools/.venv/bin/python weights-tools/reference/make_tiny_karlo.py Tests/UnCLIPTests/Fixtures/tiny-karlo

The CLIP BPE file comes from the open-clip-torch wheel (pinned below), fetched from PyPI by pip.
"""
import argparse
import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import torch

OPEN_CLIP_WHEEL = "open-clip-torch==3.3.0"
SEED = 20261126


def bpe_file():
    """bpe_simple_vocab_16e6.txt.gz from the open-clip-torch wheel (downloaded without installing it)."""
    d = os.path.join(tempfile.gettempdir(), "unclip-open-clip-wheel")
    wheels = glob.glob(os.path.join(d, "open_clip_torch-*.whl"))
    if not wheels:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", d, OPEN_CLIP_WHEEL])
        wheels = glob.glob(os.path.join(d, "open_clip_torch-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        return z.read("open_clip/bpe_simple_vocab_16e6.txt.gz")


def bytes_to_unicode():
    # The byte ↔ printable-unicode table of GPT-2/CLIP BPE.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_tokenizer(out):
    lines = gzip.decompress(bpe_file()).decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]                    # 48,894 merges, as OpenAI CLIP's tokenizer
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    # The hub's tokenizer_config for Karlo's CLIPTokenizer (pad "!" = id 0, 77 tokens).
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
                   "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                   "pad_token": "!"}, f, indent=2)


def build(cfg):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection
    from diffusers import PriorTransformer, UNet2DConditionModel, UNet2DModel, UnCLIPScheduler
    from diffusers.pipelines.deprecated.unclip.text_proj import UnCLIPTextProjModel

    torch.manual_seed(SEED)
    e, d = cfg["embed_dim"], cfg["text_hidden"]
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77, projection_dim=e, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=1))
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=8, num_layers=2, embedding_dim=e,
                             num_embeddings=77, additional_embeddings=4, dropout=0.0)
    ch = cfg["decoder_channels"]
    temb = 4 * ch[0]
    cross = cfg["cross_attention_dim"]
    text_proj = UnCLIPTextProjModel(clip_extra_context_tokens=4, clip_embeddings_dim=e, time_embed_dim=temb,
                                    cross_attention_dim=cross)
    decoder = UNet2DConditionModel(
        sample_size=cfg["decoder_size"], in_channels=3, out_channels=6, layers_per_block=cfg["layers"],
        block_out_channels=ch, down_block_types=("ResnetDownsampleBlock2D",) + ("SimpleCrossAttnDownBlock2D",) * (len(ch) - 1),
        up_block_types=("SimpleCrossAttnUpBlock2D",) * (len(ch) - 1) + ("ResnetUpsampleBlock2D",),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", attention_head_dim=cfg.get("head_dim", 8), cross_attention_dim=cross,
        class_embed_type="identity", resnet_time_scale_shift="scale_shift", norm_num_groups=8, norm_eps=1e-5)
    sr = cfg["super_res_channels"]

    def super_res():
        return UNet2DModel(
            sample_size=cfg["decoder_size"] * cfg["super_res_factor"], in_channels=6, out_channels=3,
            layers_per_block=cfg["layers"], block_out_channels=sr, down_block_types=("ResnetDownsampleBlock2D",) * len(sr),
            up_block_types=("ResnetUpsampleBlock2D",) * len(sr), add_attention=False, norm_num_groups=8, norm_eps=1e-5,
            resnet_time_scale_shift="default")

    schedulers = {
        "prior_scheduler": UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", clip_sample_range=5.0),
        "decoder_scheduler": UnCLIPScheduler(variance_type="learned_range", prediction_type="epsilon", clip_sample_range=1.0),
        "super_res_scheduler": UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="epsilon", clip_sample_range=1.0),
    }
    models = {"text_encoder": text_encoder, "prior": prior, "text_proj": text_proj, "decoder": decoder,
              "super_res_first": super_res(), "super_res_last": super_res()}
    if cfg.get("vision"):
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
        v = cfg["vision"]
        models["image_encoder"] = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=v["hidden"], intermediate_size=2 * v["hidden"], num_hidden_layers=2, num_attention_heads=2,
            image_size=v["image_size"], patch_size=v["patch_size"], projection_dim=e, hidden_act="quick_gelu",
            layer_norm_eps=1e-5))
    # Non-zero everything (diffusers zero-initialises some output layers, which would hide wiring mistakes).
    with torch.no_grad():
        for m in models.values():
            for p in m.parameters():
                if p.abs().sum() == 0:
                    p.normal_(0, 0.05)
    return models, schedulers


def karlo_model_index():
    """kakaobrain/karlo-v1-alpha's model_index.json (text_proj listed under "unclip", as the hub has it)."""
    return {"_class_name": "UnCLIPPipeline", "_diffusers_version": "0.42.1",
            "decoder": ["diffusers", "UNet2DConditionModel"], "decoder_scheduler": ["diffusers", "UnCLIPScheduler"],
            "prior": ["diffusers", "PriorTransformer"], "prior_scheduler": ["diffusers", "UnCLIPScheduler"],
            "super_res_first": ["diffusers", "UNet2DModel"], "super_res_last": ["diffusers", "UNet2DModel"],
            "super_res_scheduler": ["diffusers", "UnCLIPScheduler"],
            "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
            "text_proj": ["unclip", "UnCLIPTextProjModel"], "tokenizer": ["transformers", "CLIPTokenizer"]}


def write_hub(out, models, schedulers, cfg):
    write_tokenizer(os.path.join(out, "tokenizer"))
    if cfg.get("vision"):
        # CLIPImageProcessor with OpenAI's mean/std (Karlo's image-variations feature_extractor), scaled down.
        from transformers import CLIPImageProcessor
        size = cfg["vision"]["image_size"]
        CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(
            os.path.join(out, "feature_extractor"))
    for name, m in models.items():
        m.save_pretrained(os.path.join(out, name), safe_serialization=True)
    for name, s in schedulers.items():
        s.save_pretrained(os.path.join(out, name))
    index = karlo_model_index()
    if "image_encoder" in models:
        index["image_encoder"] = ["transformers", "CLIPVisionModelWithProjection"]
        index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)


CONFIGS = {
    # decoder 8x8, super-res 4x, two levels, image encoder for variations
    "tiny-karlo": dict(embed_dim=16, text_hidden=16, cross_attention_dim=32, decoder_channels=(16, 32), layers=1,
                       decoder_size=8, super_res_channels=(8, 16), super_res_factor=4,
                       vision=dict(hidden=16, image_size=32, patch_size=8)),
    # decoder 16x16, super-res 2x, three levels, two resnets per level, other widths and head counts
    "tiny-karlo-16": dict(embed_dim=8, text_hidden=8, cross_attention_dim=16, decoder_channels=(16, 24, 32), layers=2,
                          decoder_size=16, super_res_channels=(8, 16, 24), super_res_factor=2, head_dim=4),
    # decoder 32x32, super-res 2x
    "tiny-karlo-32": dict(embed_dim=8, text_hidden=8, cross_attention_dim=24, decoder_channels=(8, 16), layers=1,
                          decoder_size=32, super_res_channels=(8, 8), super_res_factor=2),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output directory (its last component names the config: %s)" % ", ".join(CONFIGS))
    args = ap.parse_args()
    cfg = CONFIGS[os.path.basename(os.path.normpath(args.out))]
    models, schedulers = build(cfg)
    write_hub(args.out, models, schedulers, cfg)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {args.out} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
