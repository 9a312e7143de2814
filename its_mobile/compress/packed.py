"""The packed model file: ternary weights as uint8 indices (5 per byte) with a float32
per-tensor scale; the large high-precision weights as int8 with a float16 scale per output
row (compress/int8.py); every other tensor in float16; and a manifest of the ternary tensors'
shapes.

Tensor `name` holds the indices (or int8 codes) and the manifest maps each ternary name to its
shape (the padding follows from it). The ternary scales are one float32 tensor, `ternary.scales`,
in the order of the sorted ternary names: one tensor each cost ~200 bytes of index and digest
for 4 bytes of data (files that stored them so, as `name.scale`, still load). An int8 tensor's
row scales are `name.scale`; it is told apart by its dtype alone, so files written before int8
storage still load. The checkpoint layer adds the sha256 of every tensor, so a flipped bit
anywhere is caught before unpacking.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from its_mobile.compress.int8 import dequantize_rows, is_large, quantize_rows
from its_mobile.compress.packing import pack, unpack
from its_mobile.compress.ternary import quantize, ternary_names
from its_mobile.errors import BadCheckpoint

SCALE = ".scale"
TERNARY_SCALES = "ternary.scales"


def pack_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    """(tensors to save, manifest {ternary name: shape}) of a model with float weights."""
    ternary = set(ternary_names(model))
    tensors, manifest, scales = {}, {}, {}
    for name, value in model.state_dict().items():
        if name in ternary:
            codes, scales[name] = quantize(value)
            tensors[name] = torch.from_numpy(pack(codes.numpy()))
            manifest[name] = list(value.shape)
        elif is_large(value):
            tensors[name], tensors[name + SCALE] = quantize_rows(value)
        else:
            tensors[name] = value.half() if value.is_floating_point() else value
    if scales:
        tensors[TERNARY_SCALES] = torch.stack([scales[n] for n in sorted(scales)])
    return tensors, manifest


def _shape(name: str, shape) -> list[int]:
    if not isinstance(shape, list) or not all(isinstance(s, int) and 0 < s < 1 << 24 for s in shape):
        raise BadCheckpoint(f"packed manifest has a bad shape for {name!r}")
    return shape


def is_scale(name: str, tensors: dict[str, torch.Tensor], manifest: dict) -> bool:
    """Whether `name` holds scales of ternary or int8 tensors (stored beside them, not a weight)."""
    base = name[: -len(SCALE)]
    return name == TERNARY_SCALES or (
        name.endswith(SCALE) and (base in manifest or (base in tensors and tensors[base].dtype == torch.int8)))


def _ternary_scales(tensors: dict[str, torch.Tensor], manifest: dict) -> dict[str, torch.Tensor | None]:
    """name -> scale of each ternary tensor (None where a file lacks it)."""
    if TERNARY_SCALES not in tensors:  # written before the scales were one tensor
        return {name: tensors.get(name + SCALE) for name in manifest}
    scales = tensors[TERNARY_SCALES]
    if scales.dim() != 1 or len(scales) != len(manifest):
        raise BadCheckpoint(f"packed file holds {scales.numel()} ternary scales for {len(manifest)} ternary tensors")
    return {name: scales[i : i + 1] for i, name in enumerate(sorted(manifest))}


def _int8(name: str, codes: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    if scale is None or codes.dim() < 1 or scale.shape != codes.shape[:1] or not bool(torch.isfinite(scale).all()):
        raise BadCheckpoint(f"int8 tensor {name!r} has no valid scale per row")
    return dequantize_rows(codes, scale)


def unpack_state(tensors: dict[str, torch.Tensor], manifest: dict) -> dict[str, torch.Tensor]:
    """The float32 state dict a packed file stands for; corrupt input raises BadCheckpoint."""
    if not isinstance(manifest, dict):
        raise BadCheckpoint("packed manifest is not a mapping")
    state, scales = {}, _ternary_scales(tensors, manifest)
    for name, value in tensors.items():
        if is_scale(name, tensors, manifest):
            continue
        if value.dtype == torch.int8:
            state[name] = _int8(name, value, tensors.get(name + SCALE))
            continue
        if name not in manifest:
            state[name] = value.float() if value.is_floating_point() else value
            continue
        shape = _shape(name, manifest[name])
        scale = scales[name]
        if scale is None or scale.numel() != 1:
            raise BadCheckpoint(f"packed tensor {name!r} has no scale")
        codes = unpack(value.numpy(), math.prod(shape), name)
        state[name] = torch.from_numpy(codes.astype(np.float32)).reshape(shape) * scale.float()
    missing = set(manifest) - set(state)
    if missing:
        raise BadCheckpoint(f"packed manifest names missing tensors: {sorted(missing)[:3]}")
    return state
