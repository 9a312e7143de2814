"""8-bit storage of the large high-precision weights: int8 codes with a float16 scale per
output row (symmetric, scale = max |row| / 127).

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


def is_large(value: torch.Tensor) -> bool:
    return value.is_floating_point() and value.dim() >= 2 and value.numel() >= LARGE_WEIGHTS


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 codes of w's shape, float16 scale per output row)."""
    rows = w.detach().float().reshape(w.shape[0], -1)
    scale = (rows.abs().amax(1) / INT8_MAX).clamp(min=1e-7).half()
    codes = (rows / scale.float()[:, None]).round().clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
    return codes.reshape(w.shape), scale


def dequantize_rows(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 weights of int8 `codes`, rounded to float16: the exports store these weights as
    float16, and so hold exactly what the checkpoint means."""
    rows = codes.float().reshape(codes.shape[0], -1) * scale.float()[:, None]
    return rows.half().float().reshape(codes.shape)


def fake_int8(w: torch.Tensor) -> torch.Tensor:
    """The weights the packed file will hold in the forward pass, identity gradient."""
    return w + (dequantize_rows(*quantize_rows(w)) - w).detach()
