"""`its-mobile parity DIR`: run every artifact of an export in its real runtime on word images
and compare its outputs with the PyTorch model's; the gate that `build` and CI rely on.

Per artifact: pass (phonemes and lengths equal, mel and waveform within the backend's
tolerances from conversion/backends.toml), fail, or not-run when the runtime cannot run on
this machine (Core ML off macOS), with the reason and the static checks that were possible.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from its_mobile.errors import BadInput
from its_mobile.export import REPORT, ternary_model
from its_mobile.model.its import OUTPUT_NAMES

PARITY_REPORT = "parity-report.json"
WORDS = ("reading", "phone", "quick", "xylophone", "the", "strength")
EXACT = ("n_samples", "phonemes", "n_phonemes", "n_frames")


def parity_images() -> np.ndarray:
    """Clean and noisy renders of WORDS in the first evaluation font: (N, 1, H, W) float32."""
    from its_mobile.data.render import find_fonts, render

    font = find_fonts()[1][0]
    imgs = [render(w, font, np.random.default_rng(i), noisy=noisy) for i, w in enumerate(WORDS)
            for noisy in (False, True)]
    return np.stack(imgs).astype(np.float32)[:, None]


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], settings: dict) -> dict:
    """How one image's outputs differ; `ok` is the verdict."""
    equal = {k: bool(np.array_equal(np.asarray(ref[k]).reshape(-1), np.asarray(got[k]).reshape(-1).astype(ref[k].dtype)))
             for k in EXACT}
    mel = float(np.abs(ref["mel"] - got["mel"]).max())
    wav = float(np.abs(ref["waveform"] - got["waveform"]).max())
    ok = all(equal.values()) and mel <= settings["mel_atol"] and wav <= settings["waveform_atol"]
    return {"ok": ok, "equal": equal, "mel_max_abs": mel, "waveform_max_abs": wav}


def check_artifact(entry: dict, out_dir: Path, images: np.ndarray, refs: list[dict], model) -> dict:
    from conversion import SETTINGS, RuntimeUnavailable, backend

    settings = SETTINGS[entry["format"]]
    module = backend(entry["format"])
    path = out_dir / entry["path"]
    result = {"format": entry["format"], "weights": entry["weights"], "path": entry["path"],
              "tolerances": {"mel_atol": settings["mel_atol"], "waveform_atol": settings["waveform_atol"]}}
    if hasattr(module, "static_check"):
        result["static_check"] = module.static_check(path, model, entry["weights"] == "packed")
    try:
        runs = [dict(zip(OUTPUT_NAMES, module.run(path, [img[None]], settings))) for img in images]
    except RuntimeUnavailable as e:
        return {**result, "status": "not-run", "reason": str(e)}
    per_image = [compare(r, g, settings) for r, g in zip(refs, runs)]
    return {**result, "status": "pass" if all(p["ok"] for p in per_image) else "fail", "images": len(per_image),
            "mel_max_abs": max(p["mel_max_abs"] for p in per_image),
            "waveform_max_abs": max(p["waveform_max_abs"] for p in per_image),
            "exact_outputs_equal": all(all(p["equal"].values()) for p in per_image),
            "failed_images": [i for i, p in enumerate(per_image) if not p["ok"]]}


def parity(out_dir: Path) -> dict:
    """Check every artifact listed in OUT/export-report.json; write OUT/parity-report.json."""
    out_dir = Path(out_dir)
    try:
        report = json.loads((out_dir / REPORT).read_text())
        artifacts = report["artifacts"]
        source = None if report["checkpoint"] is None else Path(report["checkpoint"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(f"{out_dir} has no readable {REPORT} (run `its-mobile export` first)") from e
    model, _, _ = ternary_model(source, report.get("tier"))
    images = parity_images()
    with torch.inference_mode():
        refs = [{k: v.numpy() for k, v in zip(OUTPUT_NAMES, model(torch.from_numpy(img[None])))} for img in images]
    results = [check_artifact(a, out_dir, images, refs, model) for a in artifacts]
    out = {"words": list(WORDS), "images": len(images), "artifacts": results,
           "passed": all(r["status"] != "fail" for r in results)}
    tmp = out_dir / (PARITY_REPORT + ".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, out_dir / PARITY_REPORT)
    return out
