"""Ternary weights, BitNet b1.58 style: w_q = clip(round(w / mean|w|), -1, 1) * mean|w|.

Which weights go ternary is decided here, once, for training, packing, inspection and export.
Kept in higher precision (in the packed file: 8 bits with a scale per row when large, else
float16), and why:
- encoder.stem.0: the first conv sees raw pixels and holds only 144 weights (ternarized alone
  after training, it takes the float student from 51.6% to 7.8% exact);
- encoder.head, acoustic.mel_out, acoustic.dur_out, vocoder.head: output projections, whose
  errors reach the letter or phoneme scores, mel, durations and STFT phase directly (the usual BitNet
  exceptions; together ~260k weights, 11% of the full student);
- encoder.last.attn.qkv, encoder.last.attn.out, encoder.widen: the attention of the last,
  twice as wide block and the projection into it (166k weights, 7% of the student). Each
  ternarized alone after training costs the float student 12.3 (qkv), 5.6 and 5.6 points, among
  the costliest, and unlike the stem's, fine-tuning does not win them back: from the same float
  student and schedule, keeping the three in 8 bits read 1.3-1.7 points better on every tier
  of 4,000 fresh renders, for 135 KB (bench/results/high_precision_fresh.json);
- speaker (all of it, 143k weights in 8 bits): at 64 wide it is too narrow for ternary weights.
  Fine-tuned 4,000 steps ternary from the float speaker, it said 57.8% of OOV words and 60.6%
  of training words exactly from their true letters, against 69.1% and 76.6% in float;
- depthwise convs, norms, biases, embeddings and positions: few weights, large effect.
A name covers the module's submodules.
The stem's other three convs (44.5k weights) stay ternary: after training they are among the
costliest to ternarize per weight (bench/bench_sensitivity.py), but quantization-aware
fine-tuning recovers them: keeping them in 8 bits read no better (--qat in that benchmark).
"""

from __future__ import annotations

import torch
from torch import nn

HIGH_PRECISION = frozenset({"encoder.stem.0", "encoder.widen", "encoder.last.attn.qkv", "encoder.last.attn.out",
                            "encoder.head", "speaker", "acoustic.mel_out", "acoustic.dur_out", "vocoder.head"})


def ternary_names(module: nn.Module, prefix: str = "") -> list[str]:
    """Names of the weights that are ternary in `module` (an ITS, or one of its parts named by
    `prefix`, e.g. "encoder."), in state-dict order."""
    names = []
    for name, m in module.named_modules():
        full = prefix + name
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and not is_high_precision(full):
            if getattr(m, "groups", 1) == 1:
                names.append(f"{name}.weight")
    return names


def is_high_precision(module: str) -> bool:
    """Whether the module named `module` (in an ITS) keeps its weights out of ternary."""
    return any(module == name or module.startswith(name + ".") for name in HIGH_PRECISION)


def quantize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes in {-1, 0, 1} as int8, per-tensor scale mean|w| as a float32 scalar)."""
    scale = w.detach().abs().mean().clamp(min=1e-8).float()
    return (w.detach() / scale).round().clamp(-1, 1).to(torch.int8), scale


def split_ternary(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, scale) of a tensor that already holds ternary values {-s, 0, s} (an unpacked
    model); `quantize` would not do: the mean |w| of such a tensor is below s."""
    scale = w.detach().abs().max().clamp(min=1e-8).float()
    codes = (w.detach() / scale).round().clamp(-1, 1)
    if not torch.allclose(codes * scale, w.detach().float(), rtol=1e-3, atol=1e-6 * float(scale)):
        raise ValueError("tensor is not ternary")
    return codes.to(torch.int8), scale


def latent(w: torch.Tensor) -> torch.Tensor:
    """Float weights that `quantize` and `fake_ternary` map back to the ternary tensor w
    ({-s, 0, s}, an unpacked model), to continue training it: the nonzero weights divided by
    their share, so that the mean |w| is s again and every code stays."""
    share = (w != 0).float().mean()
    return w / share if share > 0 else w


def fake_ternary(w: torch.Tensor) -> torch.Tensor:
    """Ternary weights in the forward pass, identity gradient (straight-through estimator)."""
    scale = w.abs().mean().clamp(min=1e-8)
    q = (w / scale).round().clamp(-1, 1) * scale
    return w + (q - w).detach()


def ternarize_(module: nn.Module, names: list[str]) -> nn.Module:
    """Replace the named weights by their ternary values in place (for evaluation)."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name in names:
            codes, scale = quantize(params[name])
            params[name].copy_(codes.float() * scale)
    return module
