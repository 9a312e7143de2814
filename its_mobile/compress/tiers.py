"""All-in-one nested tiers (seed 2406.10160): smaller networks cut out of the large one.

A tier drops the top `drop` residual blocks of every stack (encoder, acoustic phoneme and frame
stacks, vocoder) and keeps the first `ffn` fraction of each feed-forward layer's hidden units;
the speaker (6% of the model) is whole in every tier.
Every tensor of a tier is therefore a leading slice of the large tensor with the same name, so
one set of weights (and one packed file) holds them all. Ternary scales are computed on the
whole large tensor, so the tiers share the ternary codes and scales too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.func import functional_call

from its_mobile.compress.int8 import fake_int8, is_large
from its_mobile.compress.ternary import fake_ternary
from its_mobile.errors import BadInput
from its_mobile.model.dims import AcousticDims, EncoderDims, ModelDims, SpeakerDims, VocoderDims


@dataclass(frozen=True)
class Tier:
    drop: int = 0  # top residual blocks skipped in each stack
    ffn: float = 1.0  # fraction of feed-forward hidden units kept

    def to_json(self) -> dict:
        return asdict(self)


# Largest first: the first tier is the one the others are distilled from.
TIERS = {"large": Tier(0, 1.0), "base": Tier(1, 1.0), "small": Tier(2, 0.5)}


def parse_tiers(text: str) -> dict[str, Tier]:
    """"large,base,small" -> {name: Tier}, in size order; unknown names are a BadInput."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in TIERS]
    if unknown or not names:
        raise BadInput(f"unknown tier {unknown[0] if unknown else text!r} (choose from {', '.join(TIERS)})")
    return {n: TIERS[n] for n in TIERS if n in names}


def part_dims(dims, tier: Tier):
    """The dims of one part (EncoderDims, AcousticDims or VocoderDims) cut down to `tier`."""
    if isinstance(dims, EncoderDims):  # depth counts the widened last block, which stays
        return replace(dims, depth=max(2, dims.depth - tier.drop), mlp_ratio=dims.mlp_ratio * tier.ffn)
    if isinstance(dims, AcousticDims):
        return replace(dims, phone_layers=max(1, dims.phone_layers - tier.drop),
                       mel_layers=max(1, dims.mel_layers - tier.drop))
    if isinstance(dims, VocoderDims):
        return replace(dims, layers=max(1, dims.layers - tier.drop), mlp_ratio=dims.mlp_ratio * tier.ffn)
    if isinstance(dims, SpeakerDims):  # already small (6% of the model), and every tier says what it reads
        return dims
    raise TypeError(type(dims))


def tier_dims(dims: ModelDims, tier: Tier) -> ModelDims:
    return replace(dims, encoder=part_dims(dims.encoder, tier), acoustic=part_dims(dims.acoustic, tier),
                   vocoder=part_dims(dims.vocoder, tier))


def _lead(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return t[tuple(slice(0, s) for s in shape)]


def tier_state(full: dict[str, torch.Tensor], small: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of `small` (a tier's module) cut from the large state dict `full`."""
    return {k: _lead(full[k], v.shape) for k, v in small.state_dict().items()}


class _Method(nn.Module):
    """Calls one method of `module`, so that functional_call can run any method on other weights."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module, self.method = module, method

    def forward(self, *inputs):
        return getattr(self.module, self.method)(*inputs)


def shared_blocks(large: nn.Module, small: nn.Module) -> int:
    """How many leading encoder blocks the tier `small` computes exactly as `large` does: those
    whose every tensor has the large block's shape (a tier's tensors are leading slices of the
    large ones, so the same shape is the same weights)."""
    n = 0
    for a, b in zip(large.blocks, small.blocks):
        if any(p.shape != q.shape for p, q in zip(a.parameters(), b.parameters())):
            break
        n += 1
    return n


def fake_quantized(large: nn.Module, ternary: set[str]) -> dict[str, torch.Tensor]:
    """`large`'s parameters with the ternary ones fake-quantized over the whole large tensor
    (straight-through), and, in a ternary model, the large high-precision ones to the packed
    file's 8 bits: the weights every tier of one training step is cut from."""

    def quantized(name: str, w: torch.Tensor) -> torch.Tensor:
        if name in ternary:
            return fake_ternary(w)
        return fake_int8(w) if ternary and is_large(w) else w

    return {n: quantized(n, w) for n, w in large.named_parameters()}


def run_tier(small: nn.Module, weights: dict[str, torch.Tensor], *inputs, method: str = "forward"):
    """Run `small` (a tier's module) on `weights` (from fake_quantized) cut to its shapes;
    gradients flow back into the large parameters (training)."""
    params = {f"module.{n}": _lead(weights[n], p.shape) for n, p in small.named_parameters()}
    return functional_call(_Method(small, method), params, inputs)


def tier_forward(large: nn.Module, small: nn.Module, ternary: set[str], *inputs):
    """Run `small` on weights cut from `large`'s parameters, fake-quantizing the ternary ones
    over the whole large tensor first."""
    return run_tier(small, fake_quantized(large, ternary), *inputs)
