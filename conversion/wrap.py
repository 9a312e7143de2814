"""The model as the Core ML and TFLite converters should see it."""

from __future__ import annotations

import copy

import torch
from torch import nn

from its_mobile.compress.int8 import INT8_MAX, dequantize_rows, is_large, quantize_rows
from its_mobile.compress.ternary import split_ternary
from its_mobile.model.its import OUTPUT_NAMES


class UnfoldableNorm(nn.Module):
    """LayerNorm computed as (x - mean) * (rsqrt(var + eps) * gamma) + beta.

    With nn.LayerNorm the TFLite converter folds gamma into the next Linear's weight
    (W' = W diag(gamma)), which then stops being ternary (qkv, fc1) or int8 (vocoder.head). Here gamma
    multiplies a runtime tensor first, so nothing folds into W. One extra multiply per norm."""

    def __init__(self, norm: nn.LayerNorm):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - x.mean(-1, keepdim=True)
        var = (d * d).mean(-1, keepdim=True)
        return d * (torch.rsqrt(var + self.norm.eps) * self.norm.weight) + self.norm.bias


class ExportITS(nn.Module):
    """ITS.forward for a converter. `keep_ternary`: every LayerNorm is an UnfoldableNorm, so that
    the ternary and int8-stored weights after them keep their values; `named`: outputs as a dict (litert-torch names the signature after it)."""

    def __init__(self, its: nn.Module, keep_ternary: bool = True, named: bool = False):
        super().__init__()
        self.its = copy.deepcopy(its) if keep_ternary else its
        self.named = named
        if keep_ternary:
            for mod in list(self.its.modules()):
                for cname, child in list(mod.named_children()):
                    if isinstance(child, nn.LayerNorm):
                        setattr(mod, cname, UnfoldableNorm(child))

    def forward(self, pixels: torch.Tensor):
        out = self.its(pixels)
        return dict(zip(OUTPUT_NAMES, out)) if self.named else out


def ternary_stats(model: nn.Module, names: list[str]) -> dict[str, dict]:
    """name -> {numel, scale, shape, counts of codes -1/0/1} of every ternary weight."""
    params = dict(model.named_parameters())
    out = {}
    for n in names:
        codes, scale = split_ternary(params[n])
        out[n] = {"numel": codes.numel(), "scale": float(scale), "shape": tuple(codes.shape),
                  "counts": tuple(int((codes == c).sum()) for c in (-1, 0, 1))}
    return out


def _int8_exact(w: torch.Tensor) -> bool:
    """w is exactly what its own int8 codes decode to (as a packed checkpoint's int8 weights are),
    and every row has a code +-127, so that a converter's max |row| / 127 is the row's scale."""
    codes, scale = quantize_rows(w)
    rows = codes.reshape(codes.shape[0], -1)
    return torch.equal(dequantize_rows(codes, scale), w.detach()) and bool((rows.abs().amax(1) == INT8_MAX).all())


def int8_names(model: nn.Module, ternary_names: list[str]) -> list[str]:
    """The high-precision weights that the packed artifacts store as int8 with a scale per
    output row, losing nothing: of dense layers, large (the small ones are not worth it), and
    _int8_exact."""
    ternary, out = set(ternary_names), []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and getattr(m, "groups", 1) == 1 \
                and f"{name}.weight" not in ternary and is_large(m.weight) and _int8_exact(m.weight):
            out.append(f"{name}.weight")
    return out
