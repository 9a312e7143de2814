"""`its-mobile inspect`: what each tensor costs on disk, and what each tier holds."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from its_mobile import checkpoint
from its_mobile.compress.packed import SCALE, is_scale
from its_mobile.compress.packing import packed_size
from its_mobile.compress.tiers import tier_dims
from its_mobile.model.dims import ModelDims
from its_mobile.model.its import ITS, count_params

SCALE_BYTES = 4  # one float32 per ternary tensor


def inspect_checkpoint(path: Path | None = None) -> dict:
    """Per-tensor storage (bits per weight), per-tier sizes, and the file's total bytes."""
    path = checkpoint.DEFAULT if path is None else Path(path)
    tensors, info = checkpoint.load(path)
    ternary = info.get("ternary", {}) if info.get("kind") == "its-packed" else {}
    rows = []

    def stored(name: str, n: int) -> int:
        """Bytes of n weights of a tensor that is not ternary (a tier may hold a slice of
        it), with its row scales if it is int8 (every tier holds those rows whole)."""
        t = tensors[name]
        scale = tensors[name + SCALE] if t.dtype == torch.int8 else None
        return n * t.element_size() + (0 if scale is None else scale.numel() * scale.element_size())

    for name, t in tensors.items():
        if is_scale(name, tensors, ternary):
            continue
        if name in ternary:
            n, size, kind = math.prod(ternary[name]), t.numel() + SCALE_BYTES, "ternary"
        else:
            n, size, kind = t.numel(), stored(name, t.numel()), str(t.dtype).removeprefix("torch.")
        rows.append({"name": name, "shape": ternary.get(name, list(t.shape)), "params": n, "storage": kind,
                     "bytes": size, "bits_per_weight": round(8 * size / n, 3)})
    tiers = []
    dims = ModelDims.from_json(info["dims"])
    for name, tier in checkpoint.model_tiers(info).items():
        model = ITS(tier_dims(dims, tier))
        n_ternary = ternary_bytes = other_bytes = 0
        for key, v in model.state_dict().items():
            if key in ternary:
                n_ternary += v.numel()
                ternary_bytes += packed_size(v.numel()) + SCALE_BYTES
            else:
                other_bytes += stored(key, v.numel())
        tiers.append({"name": name, **tier.to_json(), "params": count_params(model), "ternary_params": n_ternary,
                      "packed_bytes": ternary_bytes + other_bytes,
                      "bits_per_ternary_weight": round(8 * ternary_bytes / n_ternary, 4) if n_ternary else None})
    n_all = sum(r["params"] for r in rows)
    n_tern = sum(r["params"] for r in rows if r["storage"] == "ternary")
    return {"path": str(path), "kind": info.get("kind"), "tensors": rows, "tiers": tiers,
            "params": n_all, "ternary_params": n_tern, "total_bytes": os.path.getsize(path)}


def format_report(r: dict) -> str:
    lines = [f"{r['path']} ({r['kind']}): {r['params']:,} weights, {r['ternary_params']:,} ternary, "
             f"{r['total_bytes']:,} bytes on disk", "", f"{'tensor':44} {'shape':>16} {'storage':>8} {'bytes':>9} {'bits/w':>7}"]
    for t in r["tensors"]:
        lines.append(f"{t['name']:44} {'x'.join(map(str, t['shape'])) or 'scalar':>16} {t['storage']:>8} "
                     f"{t['bytes']:>9,} {t['bits_per_weight']:>7.2f}")
    lines += ["", f"{'tier':8} {'drop':>4} {'ffn':>5} {'params':>10} {'ternary':>10} {'bytes':>10} {'bits/ternary w':>15}"]
    for t in r["tiers"]:
        bits = "-" if t["bits_per_ternary_weight"] is None else f"{t['bits_per_ternary_weight']:.3f}"
        lines.append(f"{t['name']:8} {t['drop']:>4} {t['ffn']:>5.2f} {t['params']:>10,} {t['ternary_params']:>10,} "
                     f"{t['packed_bytes']:>10,} {bits:>15}")
    return "\n".join(lines)
