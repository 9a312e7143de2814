"""The packed model file: ternary weights as uint8 indices (5 per byte) with a float32
per-tensor scale, every other tensor in float16, and a manifest of the ternary tensors' shapes.

Tensor `name` holds the indices and `name.scale` the scale; the manifest maps each ternary
name to its shape (the padding follows from it). The checkpoint layer adds the sha256 of every
tensor, so a flipped bit anywhere is caught before unpacking.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from its_mobile.compress.packing import pack, unpack
from its_mobile.compress.ternary import quantize, ternary_names
from its_mobile.errors import BadCheckpoint

SCALE = ".scale"


def pack_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    """(tensors to save, manifest {ternary name: shape}) of a model with float weights."""
    ternary = set(ternary_names(model))
    tensors, manifest = {}, {}
    for name, value in model.state_dict().items():
        if name in ternary:
            codes, scale = quantize(value)
            tensors[name] = torch.from_numpy(pack(codes.numpy()))
            tensors[name + SCALE] = scale.reshape(1)
            manifest[name] = list(value.shape)
        else:
            tensors[name] = value.half() if value.is_floating_point() else value
    return tensors, manifest


def _shape(name: str, shape) -> list[int]:
    if not isinstance(shape, list) or not all(isinstance(s, int) and 0 < s < 1 << 24 for s in shape):
        raise BadCheckpoint(f"packed manifest has a bad shape for {name!r}")
    return shape


def unpack_state(tensors: dict[str, torch.Tensor], manifest: dict) -> dict[str, torch.Tensor]:
    """The float32 state dict a packed file stands for; corrupt input raises BadCheckpoint."""
    if not isinstance(manifest, dict):
        raise BadCheckpoint("packed manifest is not a mapping")
    state = {}
    for name, value in tensors.items():
        if name.endswith(SCALE) and name[: -len(SCALE)] in manifest:
            continue
        if name not in manifest:
            state[name] = value.float() if value.is_floating_point() else value
            continue
        shape = _shape(name, manifest[name])
        scale = tensors.get(name + SCALE)
        if scale is None or scale.numel() != 1:
            raise BadCheckpoint(f"packed tensor {name!r} has no scale")
        codes = unpack(value.numpy(), math.prod(shape), name)
        state[name] = torch.from_numpy(codes.astype(np.float32)).reshape(shape) * scale.float()
    missing = set(manifest) - set(state)
    if missing:
        raise BadCheckpoint(f"packed manifest names missing tensors: {sorted(missing)[:3]}")
    return state
