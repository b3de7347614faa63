#!/usr/bin/env python3
"""Expected outputs of the kernel operators, computed by PyTorch, for the Swift kernel tests.

Re-create with:
    weights-tools/setup_venv.sh && weights-tools/.venv/bin/python weights-tools/reference/make_kernel_fixtures.py

Writes Tests/UnCLIPTests/Fixtures/kernels.json. Activations are stored NHWC (the engine's layout); PyTorch
computes in NCHW and the results are permuted back. Every input is drawn from a fixed seed.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

VERSION = 1
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "UnCLIPTests", "Fixtures", "kernels.json")

g = torch.Generator().manual_seed(20261126)


def randn(*shape, scale=1.0, shift=0.0):
    return torch.randn(*shape, generator=g, dtype=torch.float32) * scale + shift


def arr(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def nchw(t):
    return t.permute(0, 3, 1, 2).contiguous()


def timestep_embedding(t, dim):
    # diffusers.models.embeddings.get_timestep_embedding, flip_sin_to_cos=True, downscale_freq_shift=0,
    # scale=1, max_period=10000.
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(0, half, dtype=torch.float32)
    exponent = exponent / (half - 0)
    emb = torch.exp(exponent)
    emb = t[:, None].float() * emb[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


cases = {}

# GroupNorm: plain, with SiLU, with the scale-shift form; mean far from zero to exercise the statistics.
x = randn(2, 5, 3, 64, scale=2.0, shift=3.0)
gamma, beta = randn(64), randn(64)
s, b = randn(2, 64, scale=0.5), randn(2, 64)
y = F.group_norm(nchw(x), 32, gamma, beta, eps=1e-5)
cases["group_norm"] = {"x": arr(x), "gamma": arr(gamma), "beta": arr(beta), "groups": 32, "y": arr(nhwc(y))}
cases["group_norm_silu"] = {"y": arr(nhwc(F.silu(y)))}
ys = y * (1 + s[:, :, None, None]) + b[:, :, None, None]
cases["group_norm_scale_shift"] = {"scale": arr(s), "shift": arr(b), "y": arr(nhwc(ys))}

# LayerNorm
x = randn(7, 48, scale=3.0, shift=-1.0)
gamma, beta = randn(48), randn(48)
cases["layer_norm"] = {"x": arr(x), "gamma": arr(gamma), "beta": arr(beta),
                       "y": arr(F.layer_norm(x, (48,), gamma, beta, eps=1e-5))}

# Softmax over the last dimension
x = randn(5, 37, scale=4.0)
cases["softmax"] = {"x": arr(x), "y": arr(torch.softmax(x, dim=-1))}

# Activations
x = randn(300, scale=4.0)
cases["activations"] = {"x": arr(x), "silu": arr(F.silu(x)), "gelu": arr(F.gelu(x)),
                        "quick_gelu": arr(x * torch.sigmoid(1.702 * x))}

# Resampling: anti-aliased bicubic up (the 64→256 path, scaled down) and down (support widened by the scale)
x = randn(1, 8, 8, 3)
up = F.interpolate(nchw(x), size=(32, 32), mode="bicubic", align_corners=False, antialias=True)
x2 = randn(2, 16, 12, 3)
down = F.interpolate(nchw(x2), size=(5, 7), mode="bicubic", align_corners=False, antialias=True)
cases["resize_up"] = {"x": arr(x), "y": arr(nhwc(up))}
cases["resize_down"] = {"x": arr(x2), "y": arr(nhwc(down))}
x = randn(2, 6, 4, 5)
cases["avg_pool"] = {"x": arr(x), "y": arr(nhwc(F.avg_pool2d(nchw(x), 2)))}
cases["upsample_nearest"] = {"x": arr(x), "y": arr(nhwc(F.interpolate(nchw(x), scale_factor=2.0, mode="nearest")))}

# Timestep embedding
t = torch.tensor([0.0, 1.0, 42.0, 500.0, 999.0])
cases["timestep"] = {"t": arr(t), "dim320": arr(timestep_embedding(t, 320)), "dim33": arr(timestep_embedding(t, 33))}

# Convolution and linear through PyTorch (checks weight layouts, padding and stride)
x = randn(2, 7, 6, 5)
w, bias = randn(9, 5, 3, 3, scale=0.3), randn(9)
cases["conv3x3"] = {"x": arr(x), "w": arr(w), "b": arr(bias), "y": arr(nhwc(F.conv2d(nchw(x), w, bias, padding=1)))}
x = randn(1, 28, 28, 3)
w = randn(4, 3, 14, 14, scale=0.1)
cases["conv_patch14"] = {"x": arr(x), "w": arr(w), "y": arr(nhwc(F.conv2d(nchw(x), w, None, stride=14)))}
x = randn(3, 4, 37)
w, bias = randn(11, 37, scale=0.2), randn(11)
cases["linear"] = {"x": arr(x), "w": arr(w), "b": arr(bias), "y": arr(F.linear(x, w, bias))}

# Attention: the decoder's added-KV form (context keys first, then the image tokens) with a key-padding mask,
# and a causal one (CLIP text).
B, H, D, Lq, Lc = 2, 2, 64, 10, 7
q, kc, vc = randn(B, Lq, H * D), randn(B, Lc, H * D), randn(B, Lc, H * D)
ks, vs = randn(B, Lq, H * D), randn(B, Lq, H * D)
mask = torch.zeros(B, Lc + Lq)
mask[0, 5:7] = -10000.0
k = torch.cat([kc, ks], 1).view(B, -1, H, D).transpose(1, 2)
v = torch.cat([vc, vs], 1).view(B, -1, H, D).transpose(1, 2)
qh = q.view(B, Lq, H, D).transpose(1, 2)
o = F.scaled_dot_product_attention(qh, k, v, attn_mask=mask[:, None, None, :])
cases["attention_added_kv"] = {"q": arr(q), "k_ctx": arr(kc), "v_ctx": arr(vc), "k_self": arr(ks), "v_self": arr(vs),
                               "mask": arr(mask), "heads": H, "o": arr(o.transpose(1, 2).reshape(B, Lq, H * D))}
L = 9
q, k, v = randn(1, L, 3 * D), randn(1, L, 3 * D), randn(1, L, 3 * D)
sh = lambda t: t.view(1, L, 3, D).transpose(1, 2)
o = F.scaled_dot_product_attention(sh(q), sh(k), sh(v), is_causal=True)
cases["attention_causal"] = {"q": arr(q), "k": arr(k), "v": arr(v), "heads": 3,
                             "o": arr(o.transpose(1, 2).reshape(1, L, 3 * D))}

meta = {"version": VERSION, "torch": torch.__version__,
        "command": "weights-tools/setup_venv.sh && weights-tools/.venv/bin/python weights-tools/reference/make_kernel_fixtures.py"}
with open(OUT, "w") as f:
    json.dump({"meta": meta, "cases": cases}, f, separators=(",", ":"))
print(f"wrote {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes)")
