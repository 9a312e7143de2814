"""Weight indexing: 5 ternary codes per byte (3^5 = 243 <= 256), i.e. 1.6 bits per weight.

Code c in {-1, 0, 1} becomes digit c + 1; a byte holds digits d0..d4 as sum(d_i * 3^i). A
tensor whose size is not a multiple of 5 is padded with code 0; the padding is implied by the
shape, which the manifest records, and checked on unpacking.
"""

from __future__ import annotations

import numpy as np

from its_mobile.errors import BadCheckpoint

PER_BYTE = 5
_POW = 3 ** np.arange(PER_BYTE, dtype=np.int64)
# Every byte's five codes, so unpacking is one table lookup.
_TABLE = ((np.arange(243)[:, None] // _POW) % 3 - 1).astype(np.int8)  # (243, 5)


def packed_size(n: int) -> int:
    return -(-n // PER_BYTE)


def pack(codes: np.ndarray) -> np.ndarray:
    """Ternary codes (any shape, values in {-1, 0, 1}) -> uint8 indices, ceil(n / 5) of them."""
    flat = np.asarray(codes).reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < -1 or flat.max() > 1):
        raise ValueError("ternary codes must be -1, 0 or 1")
    digits = np.concatenate([flat + 1, np.ones((-flat.size) % PER_BYTE, np.int64)])
    return (digits.reshape(-1, PER_BYTE) * _POW).sum(1).astype(np.uint8)


def unpack(index: np.ndarray, n: int, name: str = "tensor") -> np.ndarray:
    """uint8 indices -> n ternary codes (int8); corrupt input raises BadCheckpoint."""
    index = np.asarray(index)
    if index.dtype != np.uint8 or index.ndim != 1:
        raise BadCheckpoint(f"packed tensor {name!r} is not a flat uint8 index")
    if index.size != packed_size(n):
        raise BadCheckpoint(f"packed tensor {name!r} has {index.size} bytes, its shape needs {packed_size(n)}")
    if index.size and index.max() > 242:
        raise BadCheckpoint(f"packed tensor {name!r} holds index {int(index.max())} > 242")
    codes = _TABLE[index].reshape(-1)
    if np.any(codes[n:] != 0):
        raise BadCheckpoint(f"packed tensor {name!r} has non-zero padding")
    return codes[:n]
