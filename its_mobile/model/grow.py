"""Grow a trained encoder into a bigger one that computes the same function, so that a bigger
student starts where the smaller one stands: wider (Net2WiderNet, Chen et al. 2016) or deeper.

Wider: every channel of the token stream, every attention head and every feed-forward unit is
copied k times, side by side (new unit u is old unit u // k). A layer that reads copied units
splits each weight among the copies, so its outputs do not change; LayerNorm sees each value k
times, which leaves its mean and variance as they were. Heads are copied whole, so each keeps
its size and attention temperature.

The split is uneven: copy c gets w / k * (1 + r_c) with r summing to zero over the copies and
|r_c| < 1, so that copies learn apart (equal copies get equal gradients forever). Each split
keeps its signs and the sum of its magnitudes, so mean |w| and with it every ternary scale stay
as they were; a model continued from a packed checkpoint, whose weights sit on their codes, keeps
every code and so its exact ternary forward pass too. Copying keeps the
leading-slice layout of the tiers: the first half of the widened feed-forward units are copies
of the first half of the old ones.

Deeper: new blocks go on top of the old ones and start as the identity (see `deepen_encoder`).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from its_mobile.model.dims import EncoderDims

SPLIT_SPREAD = 0.4  # how far copies of a split weight start apart (r_c within about +-0.4)


def widened_dims(dims: EncoderDims, factor: int) -> EncoderDims:
    return replace(dims, width=dims.width * factor, last_width=dims.last_width * factor, heads=dims.heads * factor)


def widening_factor(old: EncoderDims, new: EncoderDims) -> int | None:
    """k when `new` is `old` widened k times (k >= 2), else None."""
    k = new.width // old.width
    return k if k >= 2 and widened_dims(old, k) == new else None


def _units(n_old: int, k: int) -> torch.Tensor:
    return torch.arange(n_old * k) // k


def _heads(width_old: int, heads_old: int, k: int) -> torch.Tensor:
    """Old channel of each channel of the widened q, k, v or attention output (heads copied whole)."""
    size = width_old // heads_old
    new = torch.arange(width_old * k)
    return (new // size // k) * size + new % size


def _split(w: torch.Tensor, dim: int, index: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Read copied inputs: the columns of `w` along `dim` taken by `index`, each divided unevenly
    among its k copies."""
    out = w.index_select(dim, index) / k
    z = torch.rand(out.shape, generator=gen) * SPLIT_SPREAD
    group_mean = torch.zeros_like(w).index_add(dim, index, z) / k
    return out * (1 + z - group_mean.index_select(dim, index))


def widen_encoder(state: dict[str, torch.Tensor], dims: EncoderDims, factor: int,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict of the encoder `widened_dims(dims, factor)` computing what the encoder
    with `dims` and `state` computes. Keys as in `Encoder.state_dict()`."""
    k, gen = factor, torch.Generator().manual_seed(seed)
    hidden = round(dims.mlp_ratio * dims.width)

    def block(width: int, hidden: int) -> dict[str, tuple]:
        # name -> (map of output rows, map of input columns); a column map means split
        stream, heads, ffn = _units(width, k), _heads(width, dims.heads, k), _units(hidden, k)
        qkv = torch.cat([j * width + heads for j in range(3)])
        return {"norm1": (stream, None), "attn.qkv": (qkv, stream), "attn.out": (stream, heads),
                "norm2": (stream, None), "fc1": (ffn, stream), "fc2": (stream, ffn)}

    rules = {"stem.6": (_units(dims.width, k), None), "widen": (_units(dims.last_width, k), _units(dims.width, k)),
             "norm": (_units(dims.last_width, k), None), "head": (None, _units(dims.last_width, k))}
    for i in range(dims.depth - 1):
        rules.update({f"blocks.{i}.{n}": r for n, r in block(dims.width, hidden).items()})
    rules.update({f"last.{n}": r for n, r in block(dims.last_width, round(dims.mlp_ratio * dims.last_width)).items()})

    out = {}
    for name, t in state.items():
        if name == "pos":
            out[name] = t.index_select(2, _units(dims.width, k))
            continue
        layer, kind = name.rsplit(".", 1)
        if layer not in rules:
            out[name] = t.clone()  # the stem's first convs keep their width
            continue
        rows, cols = rules[layer]
        if rows is not None:
            t = t.index_select(0, rows)
        if cols is not None and kind == "weight":
            t = _split(t, 1, cols, k, gen)
        out[name] = t
    return out


def deepening(old: EncoderDims, new: EncoderDims) -> int | None:
    """How many blocks `new` adds on top of `old` (same sizes otherwise), else None."""
    extra = new.depth - old.depth
    return extra if extra >= 1 and replace(old, depth=new.depth) == new else None


def deepen_encoder(state: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor],
                   dims: EncoderDims, extra: int) -> dict[str, torch.Tensor]:
    """The state dict of the encoder `dims` with `extra` more blocks of its width, computing what
    `state` computed. The new blocks go on top of the old ones, below the widened last block, so
    the tiers, which skip top blocks, start where the old model's tiers one size up stood. They
    take their weights from `fresh` (a newly built deeper encoder's), except the two projections
    that end their residual branches (attention out, fc2), which start at zero: each new block
    starts as the identity and learns from there (a zero tensor stays zero under ternary
    quantization, whose scale is clamped above zero)."""
    first = dims.depth - 1  # index of the first new block
    out = dict(state)
    for i in range(first, first + extra):
        for name, t in fresh.items():
            if name.startswith(f"blocks.{i}."):
                zero = name.endswith(("attn.out.weight", "attn.out.bias", "fc2.weight", "fc2.bias"))
                out[name] = torch.zeros_like(t) if zero else t.clone()
    return out


def grow_encoder(state: dict[str, torch.Tensor], old: EncoderDims, new: EncoderDims,
                 fresh: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The state dict of the encoder `new` computing what `state` (of `old`) computed, when `new`
    is a widening of `old`, a deepening, or a widening then a deepening (how a teacher grows
    from the student); else None. `fresh` is a newly built `new` encoder's."""
    factor = None if new.depth < old.depth else widening_factor(old, replace(new, depth=old.depth))
    if factor is not None:
        state, old = widen_encoder(state, old, factor), widened_dims(old, factor)
        if new == old:
            return state
    extra = deepening(old, new)
    return deepen_encoder(state, fresh, old, extra) if extra is not None else None
