"""8-bit storage of the large high-precision weights: int8 codes with a float16 scale per
output row (symmetric, scale about max |row| / 127).

The output projections and the phoneme embedding qualify; the small high-precision tensors
(first conv, norms, biases, positions) stay float16: they are few bytes and act on every
value that passes. Storing the large ones in 8 bits instead of 16 takes the shipped default
from 1.05 MB to 0.78 MB, and a ternary model trains with them fake-quantized, so the packed
file computes what training saw.
"""

from __future__ import annotations

import torch

# Float tensors of at least this many weights (and 2 or more dimensions) are "large".
LARGE_WEIGHTS = 4096
INT8_MAX = 127
MIN_NORMAL = 0x0400  # bits of float16 2^-14


def is_large(value: torch.Tensor) -> bool:
    return value.is_floating_point() and value.dim() >= 2 and value.numel() >= LARGE_WEIGHTS


def _row_scale(peak: torch.Tensor) -> torch.Tensor:
    """The smallest normal float16 s with 127 s >= `peak` (max |row|). Plain float16(peak / 127)
    would do as well, but not twice: a row that unpacked from (codes, s) has peak 127 s, and
    this s is then again the smallest that reaches it, so repacking an unpacked model gives
    back the same codes and scales. Subnormal scales are too coarse for that; rows under
    127 x 2^-14 = 0.0078 get the smallest normal one."""

    def reaches(bits: torch.Tensor) -> torch.Tensor:
        return bits.view(torch.float16).float() * INT8_MAX >= peak  # exact in float32

    bits = (peak / INT8_MAX).half().view(torch.int16).clamp(min=MIN_NORMAL)  # within 2 steps
    for _ in range(3):
        bits = torch.where(reaches(bits), bits, bits + 1)
    for _ in range(3):
        lower = (bits - 1).clamp(min=MIN_NORMAL)
        bits = torch.where(reaches(lower), lower, bits)
    return bits.view(torch.float16)


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 codes of w's shape, float16 scale per output row)."""
    rows = w.detach().float().reshape(w.shape[0], -1)
    scale = _row_scale(rows.abs().amax(1))
    codes = (rows / scale.float()[:, None]).round().clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
    return codes.reshape(w.shape), scale


def dequantize_rows(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 weights of int8 `codes`: code x scale, exact in float32 (7 + 11 significant bits).
    An export that stores int8 codes with a float32 scale per row holds exactly these weights,
    and a converter that derives the scale as max |row| / 127 finds s again, since 127 s is the
    row's peak whenever a code reaches +-127 (conversion/wrap.py's int8_names checks it)."""
    rows = codes.float().reshape(codes.shape[0], -1) * scale.float()[:, None]
    return rows.reshape(codes.shape)


def fake_int8(w: torch.Tensor) -> torch.Tensor:
    """The weights the packed file will hold in the forward pass, identity gradient."""
    return w + (dequantize_rows(*quantize_rows(w)) - w).detach()
