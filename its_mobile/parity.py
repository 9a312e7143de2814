"""`its-mobile parity DIR`: run every artifact of an export in its real runtime on word images
and compare its outputs with the PyTorch model's; the gate that `build` and CI rely on.

Per artifact: pass (phonemes and lengths equal, mel and waveform within the backend's
tolerances from conversion/backends.toml) or fail, at a level:
- numeric: the artifact ran in its real runtime;
- interpreted: the runtime cannot run on this machine (Core ML off macOS), so the artifact's own
  program ran in a NumPy interpreter of its ops (conversion/mil_numpy.py) - the conversion and
  the packed weights are checked by number, the runtime's kernels are not;
- structural (status not-run): neither could run; only the static checks were possible.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from its_mobile.errors import BadInput
from its_mobile.export import REPORT, ternary_model
from its_mobile.host import describe
from its_mobile.model.its import OUTPUT_NAMES

PARITY_REPORT = "parity-report.json"
WORDS = ("reading", "phone", "quick", "xylophone", "the", "strength")
EXACT = ("n_samples", "phonemes", "n_phonemes", "n_frames")
INTERPRETER = "the NumPy MIL interpreter (conversion/mil_numpy.py)"


def parity_images(n: int | None = None) -> tuple[list[str], np.ndarray]:
    """(what each image shows, (N, 1, H, W) float32 images).

    The built-in check (n None): clean and noisy renders of WORDS in the first evaluation font.
    With n: n held-out images, lexicon words drawn at random (some of them never trained on)
    in the evaluation fonts (never trained on), clean and noisy in turn.
    """
    from its_mobile.data.render import find_fonts, render

    fonts = find_fonts()[1]
    if n is None:
        shown = [(w, fonts[0], noisy) for w in WORDS for noisy in (False, True)]
    else:
        from its_mobile.data.lexicon import load_words

        rng = np.random.default_rng(20261201)
        words = rng.choice(load_words(), size=n, replace=False)
        shown = [(str(w), fonts[i % len(fonts)], i % 2 == 1) for i, w in enumerate(words)]
    imgs = [render(w, font, np.random.default_rng(i), noisy=noisy) for i, (w, font, noisy) in enumerate(shown)]
    return [w for w, _, _ in shown], np.stack(imgs).astype(np.float32)[:, None]


def folder_images(folder: Path) -> tuple[list[str], np.ndarray]:
    """(file names, images) of every file in `folder`, read as `speak` reads them."""
    from its_mobile.images import load_image

    if not Path(folder).is_dir():
        raise BadInput(f"--images {folder}: not a directory")
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise BadInput(f"--images {folder}: no files in it")
    return [p.name for p in files], np.stack([load_image(p) for p in files]).astype(np.float32)[:, None]


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], settings: dict) -> dict:
    """How one image's outputs differ; `ok` is the verdict."""
    equal = {k: bool(np.array_equal(np.asarray(ref[k]).reshape(-1), np.asarray(got[k]).reshape(-1).astype(ref[k].dtype)))
             for k in EXACT}
    mel = float(np.abs(ref["mel"] - got["mel"]).max())
    wav = float(np.abs(ref["waveform"] - got["waveform"]).max())
    noise = float(((ref["waveform"] - got["waveform"]) ** 2).sum())
    snr = 10 * np.log10(float((ref["waveform"] ** 2).sum()) / noise) if noise > 0 else float("inf")
    ok = all(equal.values()) and mel <= settings["mel_atol"] and wav <= settings["waveform_atol"]
    return {"ok": ok, "equal": equal, "mel_max_abs": mel, "mel_rel": mel / max(float(np.abs(ref["mel"]).max()), 1e-9),
            "waveform_max_abs": wav, "snr_db": float(snr)}


def _runner(module, path: Path, settings: dict) -> tuple[Callable | None, str, str | None]:
    """(how to run the artifact here, or None; parity level; why not in the backend's runtime).
    Where the runtime cannot run (Core ML off macOS) the backend's interpreter runs the artifact's
    own program instead; without one, or when it lacks an op, only the static check remains."""
    from conversion import RuntimeUnavailable

    try:
        return module.runner(path, settings), "numeric", None
    except RuntimeUnavailable as e:
        if not hasattr(module, "interpreter"):
            return None, "structural", str(e)
        try:
            return module.interpreter(path), "interpreted", f"{e}; run by {INTERPRETER} instead"
        except NotImplementedError as gap:
            return None, "structural", f"{e}; {gap}"


def check_artifact(entry: dict, out_dir: Path, images: np.ndarray, refs: list[dict], model) -> dict:
    from conversion import SETTINGS, backend

    settings = SETTINGS[entry["format"]]
    module = backend(entry["format"])
    path = out_dir / entry["path"]
    result = {"format": entry["format"], "weights": entry["weights"], "path": entry["path"],
              "tolerances": {"mel_atol": settings["mel_atol"], "waveform_atol": settings["waveform_atol"]}}
    if hasattr(module, "static_check"):
        result["static_check"] = module.static_check(path, model, entry["weights"] == "packed")
    try:
        run, level, why = _runner(module, path, settings)
        if run is None:  # only a static check stands for it, if there is one
            return {**result, "status": "not-run", "level": level,
                    "passed": result.get("static_check", {}).get("ok", False), "reason": why}
        runs = [dict(zip(OUTPUT_NAMES, run(img[None]))) for img in images]
    except Exception as e:  # a corrupted or foreign file: the runtimes raise many kinds
        raise BadInput(f"{path.name} cannot be run by the {settings['runtime']} ({type(e).__name__})") from e
    if why:
        result["reason"] = why
    per_image = [compare(r, g, settings) for r, g in zip(refs, runs)]
    ok = all(p["ok"] for p in per_image) and result.get("static_check", {}).get("ok", True)
    return {**result, "status": "pass" if ok else "fail", "level": level, "passed": ok, "images": len(per_image),
            "phoneme_agreement": float(np.mean([p["equal"]["phonemes"] for p in per_image])),
            "max_rel_err": max(p["mel_rel"] for p in per_image),
            "min_waveform_snr_db": min(p["snr_db"] for p in per_image),
            "mel_max_abs": max(p["mel_max_abs"] for p in per_image),
            "waveform_max_abs": max(p["waveform_max_abs"] for p in per_image),
            "exact_outputs_equal": all(all(p["equal"].values()) for p in per_image),
            "failed_images": [i for i, p in enumerate(per_image) if not p["ok"]]}


def parity(path: Path, n: int | None = None, folder: Path | None = None) -> dict:
    """Check every artifact listed in OUT/export-report.json (PATH = OUT), or one of them
    (PATH = OUT/artifact), on the built-in images, `n` held-out ones or those in `folder`;
    write OUT/parity-report.json."""
    path = Path(path)
    out_dir, only = (path, None) if path.is_dir() and path.suffix != ".mlpackage" else (path.parent, path.name)
    try:
        report = json.loads((out_dir / REPORT).read_text())
        artifacts = report["artifacts"]
        source = None if report["checkpoint"] is None else Path(report["checkpoint"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(f"{out_dir} has no readable {REPORT} (run `its-mobile export` first)") from e
    if only is not None:
        artifacts = [a for a in artifacts if a.get("path") == only]
        if not artifacts or not path.exists():
            raise BadInput(f"{path} is not an artifact listed in {out_dir / REPORT}")
    model, _, _ = ternary_model(source, report.get("tier"))
    shown, images = folder_images(folder) if folder is not None else parity_images(n)
    with torch.inference_mode():
        refs = [{k: v.numpy() for k, v in zip(OUTPUT_NAMES, model(torch.from_numpy(img[None])))} for img in images]
    results = [check_artifact(a, out_dir, images, refs, model) for a in artifacts]
    source = f"the images in {folder}" if folder is not None else "built-in" if n is None else f"{n} held-out"
    out = {"machine": describe(), "source": source, "shown": shown, "images": len(images), "artifacts": results,
           "passed": all(r["passed"] for r in results)}
    tmp = out_dir / (PARITY_REPORT + ".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, out_dir / PARITY_REPORT)
    return out


def write_junit(report: dict, path: Path) -> None:
    """The parity report as JUnit XML for a CI system: one test case per artifact; one that
    could not run at all here is a skipped case whose message gives the structural check's
    verdict, or a failure when that check failed."""
    import xml.etree.ElementTree as ET

    arts = report["artifacts"]
    failed = [a for a in arts if not a["passed"]]
    skipped = [a for a in arts if a["status"] == "not-run" and a["passed"]]
    suite = ET.Element("testsuite", name="its-mobile parity", tests=str(len(arts)), failures=str(len(failed)),
                       skipped=str(len(skipped)), errors="0")
    for a in arts:
        case = ET.SubElement(suite, "testcase", classname=f"parity.{a['format']}", name=a["path"])
        if a["status"] == "not-run":
            kind = "failure" if not a["passed"] else "skipped"
            verdict = "passed" if a["passed"] else "FAILED"
            ET.SubElement(case, kind, message=f"{a['reason']}; structural check {verdict}")
        elif not a["passed"]:
            ET.SubElement(case, "failure", message=f"images {a['failed_images']} differ beyond tolerance "
                                                   f"(mel rel err {a['max_rel_err']:.2e}, phonemes "
                                                   f"{100 * a['phoneme_agreement']:.0f}% equal)"
                          if a["failed_images"] else "the static check failed")
    tmp = Path(str(path) + ".tmp")
    ET.ElementTree(suite).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
