"""Simulates the engine's int8 rule inside diffusers' UnCLIPPipeline to try activation schemes before writing kernels:
weights per output channel ±127, activations per row (a token, or a convolution's im2col patch) either symmetric ±127
(what the kernels did first) or asymmetric u8 with a zero point, the range widened to contain 0 (what they do now);
quantizable layers as Converter.quantizable (k ≥ 32, n·k ≥ 1024) in every component but the prior (as the shipped
embedded model). Prints each scheme's final-image PSNR against the f32 pipeline on eval_engine's prompts (same seeds).

    weights-tools/.venv/bin/python weights-tools/reference/simulate_int8.py <hub-dir> 60

Measured on the first version of the embedded model's f32 checkpoint (2 threads here, ~4 min per scheme per 24
prompts): 60 prompts, symmetric 29.1 dB mean / 28.4 median (the engine's q8 file then: 29.2 / 28.3 on 200),
asymmetric 30.3 / 29.5; 24 prompts, symmetric 27.7 / 26.6, asymmetric 26.9 / 23.6 (with or without widening the
range to 0: identical). The engine on 200 prompts of that model: symmetric 29.2, asymmetric 27.8 — final-image PSNR
after 57 sampling steps is mostly chaos at these sample sizes (README, "int8 against f32").
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import numpy as np, torch, torch.nn.functional as F
from eval_engine import prompts
torch.set_num_threads(2)
hub = sys.argv[1]; n = int(sys.argv[2])
from make_pipeline_fixtures import load  # the oracle's pipeline built from components (this folder)
pipe = load(hub)
pipe.set_progress_bar_config(disable=True)
MODE = {"q": None}
def rows(a):
    if MODE["q"] == "sym":
        s = a.abs().amax(-1, keepdim=True).clamp(min=1e-30) / 127
        return torch.round(a / s).clamp(-127, 127) * s
    lo, hi = a.amin(-1, keepdim=True).clamp(max=0), a.amax(-1, keepdim=True).clamp(min=0)
    s = ((hi - lo) / 255).clamp(min=1e-30); z = torch.round(-lo / s)
    return (torch.round(a / s + z).clamp(0, 255) - z) * s
def wq(w):
    w2 = w.reshape(w.shape[0], -1); s = w2.abs().amax(1, keepdim=True).clamp(min=1e-30) / 127
    return (torch.round(w2 / s).clamp(-127, 127) * s).reshape(w.shape)
def quantizable(w):
    k = int(np.prod(w.shape[1:])); return w.ndim in (2, 4) and k >= 32 and w.shape[0] * k >= 1024
lin_fwd, conv_fwd = torch.nn.Linear.forward, torch.nn.Conv2d.forward
def qlin(self, x):
    if MODE["q"] is None or not getattr(self, "_q", False): return lin_fwd(self, x)
    return F.linear(rows(x), self._wq, self.bias)
def qconv(self, x):
    if MODE["q"] is None or not getattr(self, "_q", False): return conv_fwd(self, x)
    B, C, H, W = x.shape
    u = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride).transpose(1, 2)  # B, L, CKK
    y = rows(u) @ self._wq.reshape(self.out_channels, -1).t()
    Ho = (H + 2 * self.padding[0] - self.kernel_size[0]) // self.stride[0] + 1
    Wo = (W + 2 * self.padding[1] - self.kernel_size[1]) // self.stride[1] + 1
    y = y.transpose(1, 2).reshape(B, self.out_channels, Ho, Wo)
    return y + self.bias.view(1, -1, 1, 1) if self.bias is not None else y
torch.nn.Linear.forward, torch.nn.Conv2d.forward = qlin, qconv
for comp in (pipe.text_encoder, pipe.text_proj, pipe.decoder, pipe.super_res_first, pipe.super_res_last):
    for m in comp.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and quantizable(m.weight):
            m._q, m._wq = True, wq(m.weight.data)
ps = prompts(n)
out = {}
for mode in (None, "sym", "asym"):
    MODE["q"] = mode
    with torch.no_grad():
        out[mode] = np.stack([np.asarray(im, float) for im in pipe(prompt=ps, decoder_guidance_scale=4.0, generator=torch.Generator().manual_seed(0)).images])
    if mode:
        mse = ((out[mode] - out[None]) ** 2).reshape(n, -1).mean(1)
        p = 10 * np.log10(255 ** 2 / np.maximum(mse, 1e-12))
        print(mode, "PSNR vs f32: mean", round(float(p.mean()), 2), "median", round(float(np.median(p)), 2), flush=True)
