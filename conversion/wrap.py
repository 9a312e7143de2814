"""The model as the Core ML and TFLite converters should see it."""

from __future__ import annotations

import copy

import torch
from torch import nn

from its_mobile.compress.ternary import split_ternary
from its_mobile.model.encoder import Block
from its_mobile.model.its import OUTPUT_NAMES
from its_mobile.model.vocoder import ConvNeXtBlock


class UnfoldableNorm(nn.Module):
    """LayerNorm computed as (x - mean) * (rsqrt(var + eps) * gamma) + beta.

    With nn.LayerNorm the TFLite converter folds gamma into the next Linear's weight
    (W' = W diag(gamma)), which then stops being ternary (12 weights: qkv, fc1). Here gamma
    multiplies a runtime tensor first, so nothing folds into W. One extra multiply per norm."""

    def __init__(self, norm: nn.LayerNorm):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - x.mean(-1, keepdim=True)
        var = (d * d).mean(-1, keepdim=True)
        return d * (torch.rsqrt(var + self.norm.eps) * self.norm.weight) + self.norm.bias


class ExportITS(nn.Module):
    """ITS.forward for a converter. `keep_ternary`: the LayerNorms that feed ternary linears are
    UnfoldableNorm; `named`: outputs as a dict (litert-torch names the signature after it)."""

    def __init__(self, its: nn.Module, keep_ternary: bool = True, named: bool = False):
        super().__init__()
        self.its = copy.deepcopy(its) if keep_ternary else its
        self.named = named
        if keep_ternary:
            for mod in list(self.its.modules()):
                if isinstance(mod, (Block, ConvNeXtBlock)):
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
