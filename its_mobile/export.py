"""`its-mobile export`: the model as ExecuTorch, Core ML and TFLite artifacts, with the
ternary weights kept packed in each format's own way, and export-report.json.

The dense artifacts (`--weights dense`) hold the same ternary values as float32: the twin that
size and latency are compared with.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from its_mobile import checkpoint
from its_mobile.compress.ternary import ternarize_, ternary_names
from its_mobile.errors import BadInput, MissingDependency
from its_mobile.host import describe
from its_mobile.model.its import ITS, example_inputs

REPORT = "export-report.json"


def ternary_model(path: Path | None, tier: str | None) -> tuple[ITS, dict, list[str]]:
    """(model whose ternary weights hold ternary values, checkpoint info, their names).

    A packed checkpoint already holds them; a float one is ternarized here (post-training, no
    QAT: the report says so)."""
    model, info = checkpoint.load_model(path, tier)
    names = ternary_names(model)
    if info.get("kind") != "its-packed":
        ternarize_(model, names)
    return model, info, names


def tensor_bytes(model: ITS, names: list[str], float_bytes: int, computed: tuple[str, ...] = (),
                 int8: tuple[str, ...] = (), scale_bytes: int = 4) -> tuple[int, int]:
    """(number of ternary weights, bytes of every other tensor, buffers included, at the
    backend's float width, or for those stored `int8` a byte each plus a scale of `scale_bytes`
    per row): what bits_per_ternary_weight discounts. Tensors `computed` at load are not in the
    file, so they are not discounted either."""
    ternary = set(names)
    n_ternary = sum(p.numel() for k, p in model.named_parameters() if k in ternary)
    others = [(k, p) for k, p in model.named_parameters() if k not in ternary]
    others += [(k, b) for k, b in model.named_buffers() if k not in computed]
    return n_ternary, sum(t.numel() + scale_bytes * t.shape[0] if k in int8 else t.numel() * float_bytes for k, t in others)


def artifact_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def artifact_sha256(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path)).encode() if path.is_dir() else b"")
        h.update(f.read_bytes())
    return h.hexdigest()


def _place(tmp: Path, final: Path) -> None:
    """Move a finished artifact into place, replacing an older one only now."""
    if final.is_dir():
        shutil.rmtree(final)
    os.replace(tmp, final)


def export_one(model: ITS, names: list[str], fmt: str, weights: str, out_dir: Path, stem: str) -> dict:
    from conversion import SETTINGS, backend

    settings = SETTINGS[fmt]
    final = out_dir / f"{stem}-{weights}{settings['extension']}"
    tmp = out_dir / f".tmp-{final.name}"
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    t = time.perf_counter()
    try:
        extra = backend(fmt).export(model, example_inputs(), tmp, names if weights == "packed" else None, settings)
    except ImportError as e:
        raise MissingDependency(f"{fmt} export needs the export extra: pip install 'its-mobile[export]' ({e.name})") from e
    seconds = time.perf_counter() - t
    _place(tmp, final)
    n_ternary, hp_bytes = tensor_bytes(model, names, settings["float_bytes"], tuple(extra.get("computed_at_load", ())),
                                       tuple(extra.get("int8_weights", ())), settings["int8_scale_bytes"])
    size = artifact_bytes(final)
    return {"format": fmt, "path": final.name, "weights": weights, "bytes": size,
            "ternary_weights": n_ternary, "high_precision_bytes": hp_bytes,
            "bits_per_ternary_weight": round(8 * (size - hp_bytes) / n_ternary, 4),
            "scheme": settings["packed_scheme"] if weights == "packed" else "float32 (dense twin)",
            "sha256": artifact_sha256(final), "export_seconds": round(seconds, 2), **extra}


def export(formats: list[str], out_dir: Path, checkpoint_path: Path | None = None, tier: str | None = None,
           weights: tuple[str, ...] = ("packed",), progress=None) -> dict:
    """Write the artifacts and OUT/export-report.json; returns the report."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"{out_dir} exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    model, info, names = ternary_model(checkpoint_path, tier)
    stem = f"its-{info['tier']}"
    artifacts = []
    for fmt in formats:
        for w in weights:
            artifacts.append({**export_one(model, names, fmt, w, out_dir, stem), "tier": info["tier"]})
            if progress:
                progress(f"{fmt} ({w}) written")
    # The embedded default is recorded as null, not as a path into this machine's installation,
    # so that the folder can be checked (`its-mobile parity`) on another machine.
    where = None if checkpoint_path is None else str(Path(checkpoint_path).resolve())
    report = {"checkpoint": where, "tier": info["tier"], "machine": describe(),
              "ternarized_at_export": info.get("kind") != "its-packed", "artifacts": artifacts}
    tmp = out_dir / (REPORT + ".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, out_dir / REPORT)
    return report
