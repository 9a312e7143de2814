"""This model against the OCR-then-TTS cascade, side by side in one run on the same 200 held-out
word images (in-vocabulary and OOV words, clean and noisy, in fonts never trained on), one
thread each: exact accuracy (the phonemes of what is spoken against espeak-ng's for the true
word), latency per word (image in, waveform out), bytes on disk, and peak memory (each system
in its own process).

    pip install -e '.[bench]' && apt-get install tesseract-ocr && python bench/bench_cascade.py
    python bench/bench_cascade.py --per-split 1000 --tiers large --out bench/results/cascade_4000.json
    python bench/bench_cascade.py --per-split 1000 --tiers large --seed 12 --out bench/results/cascade_4000_seed12.json

(50 images per split cannot tell a one-point gap from noise; 1,000 can.)

Cascades: RapidOCR (PP-OCRv4 recognition, the word crop given, so no detection) + espeak-ng,
and tesseract 5 (--psm 8, one word; a process per image, which is how its CLI runs) + espeak-ng.
Ours: every runnable backend (ExecuTorch, LiteRT) x every tier, the packed artifacts.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

SPLITS = ("eval_iv_clean", "eval_iv_noisy", "eval_oov_clean", "eval_oov_noisy")
PER_SPLIT = 50


def images_and_targets(data_dir: Path, per_split: int) -> tuple[list[np.ndarray], list[str], list[str]]:
    from its_mobile.data.dataset import load, phones_to_ipa

    data = load(data_dir)
    imgs, ipas, splits = [], [], []
    for split in SPLITS:
        images, words = data.split(split)
        for img, w in zip(images[:per_split], words[:per_split]):
            imgs.append(np.asarray(img))
            ipas.append(phones_to_ipa(data.word_phones[w], data.meta["inventory"]))
            splits.append(split)
    return imgs, ipas, splits


def _word(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalpha())


def cascade(ocr, imgs: list[np.ndarray]) -> tuple[list[str], list[float], list[float]]:
    """(IPA spoken, OCR ms, TTS ms) per image: OCR, then espeak-ng reads the word it found."""
    from its_mobile.data import espeak

    espeak.speak("warm")  # load the voice before timing
    out, ocr_ms, tts_ms = [], [], []
    for img in imgs:
        t = time.perf_counter()
        word = _word(ocr(img))
        t2 = time.perf_counter()
        speech = espeak.speak(word) if word else None
        t3 = time.perf_counter()
        out.append("".join(speech.phonemes) if speech else "")
        ocr_ms.append((t2 - t) * 1000)
        tts_ms.append((t3 - t2) * 1000)
    return out, ocr_ms, tts_ms


def run_rapidocr(imgs):
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    def ocr(img):
        result, _ = engine(np.stack([img] * 3, -1), use_det=False, use_cls=False, use_rec=True)
        return result[0][0] if result else ""

    ocr(imgs[0])
    import rapidocr_onnxruntime

    model = Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_rec_infer.onnx"
    return cascade(ocr, imgs), model.stat().st_size, f"rapidocr_onnxruntime {metadata.version('rapidocr_onnxruntime')}"


def run_tesseract(imgs):
    from PIL import Image

    tmp = Path(tempfile.mkdtemp())

    def ocr(img):
        path = tmp / "w.png"
        Image.fromarray(img).save(path)
        done = subprocess.run(["tesseract", str(path), "stdout", "--psm", "8", "-l", "eng"], capture_output=True,
                              text=True, env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"})
        return done.stdout.strip()

    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    data = next(Path("/usr/share/tesseract-ocr").rglob("eng.traineddata"))
    return cascade(ocr, imgs), data.stat().st_size, version


def run_ours(imgs, artifact: Path):
    from conversion import SETTINGS, backend
    from its_mobile.checkpoint import load_model
    from its_mobile.data.dataset import phones_to_ipa
    from its_mobile.profile.host import format_of

    fmt = format_of(artifact)
    run = backend(fmt).runner(artifact, SETTINGS[fmt], 1)
    inventory = load_model()[1]["inventory"]
    out, ms = [], []
    run(imgs[0][None, None].astype(np.float32))
    for img in imgs:
        t = time.perf_counter()
        outputs = dict(zip(("waveform", "n_samples", "phonemes", "n_phonemes"), run(img[None, None].astype(np.float32))))
        ms.append((time.perf_counter() - t) * 1000)
        n = int(np.asarray(outputs["n_phonemes"]).reshape(-1)[0])
        out.append(phones_to_ipa(np.asarray(outputs["phonemes"]).reshape(-1)[:n], inventory))
    return (out, ms, [0.0] * len(ms)), artifact.stat().st_size, f"{fmt} ({SETTINGS[fmt]['runtime']})"


def one(system: str, data_dir: Path, per_split: int, artifact: str | None) -> dict:
    imgs, ipas, splits = images_and_targets(data_dir, per_split)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Python, numpy, torch (the data loader)
    if system == "rapidocr":
        (spoken, a_ms, b_ms), model_bytes, version = run_rapidocr(imgs)
    elif system == "tesseract":
        (spoken, a_ms, b_ms), model_bytes, version = run_tesseract(imgs)
    else:
        (spoken, a_ms, b_ms), model_bytes, version = run_ours(imgs, Path(artifact))
    import espeakng_loader

    espeak_bytes = sum(f.stat().st_size for f in Path(espeakng_loader.get_data_path()).rglob("*") if f.is_file())
    total = [a + b for a, b in zip(a_ms, b_ms)]
    exact = {s: float(np.mean([p == t for p, t, sp in zip(spoken, ipas, splits) if sp == s])) for s in SPLITS}
    return {"system": system if artifact is None else Path(artifact).name, "version": version, "exact": exact,
            "p50_ms": float(np.median(total)), "mean_ms": float(np.mean(total)),
            "stage_ms": {"recognise": float(np.median(a_ms)), "speak": float(np.median(b_ms))},
            "model_bytes": model_bytes, "disk_bytes": model_bytes + (0 if artifact else espeak_bytes),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": before,
            "n": len(imgs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one")
    ap.add_argument("--data")
    ap.add_argument("--artifact")
    ap.add_argument("--per-split", type=int, default=PER_SPLIT,
                    help="images per split (the issue's comparison: 50, 200 in all)")
    ap.add_argument("--tiers", default="large,base,small", help="our tiers to run, comma-separated")
    ap.add_argument("--seed", type=int, default=11, help="data seed of the rendered images (another seed: other words and renders)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cascade.json")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, Path(args.data), args.per_split, args.artifact)))
        return
    from its_mobile.data.dataset import DataSpec, generate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(Path(tmp) / "data", DataSpec(n=16, n_eval=args.per_split, n_speech=8, n_audio=2, seed=args.seed),
                        progress=False)
        runs = [("rapidocr", None), ("tesseract", None)] if shutil.which("tesseract") else [("rapidocr", None)]
        for tier in args.tiers.split(","):
            subprocess.run([sys.executable, "-m", "its_mobile", "export", "--format", "executorch", "--tier", tier,
                            "-o", f"{tmp}/{tier}"], check=True, capture_output=True)
            subprocess.run([sys.executable, "-m", "its_mobile", "export", "--format", "tflite", "--tier", tier,
                            "-o", f"{tmp}/{tier}"], check=True, capture_output=True)
            runs += [("ours", f"{tmp}/{tier}/its-{tier}-packed.pte"), ("ours", f"{tmp}/{tier}/its-{tier}-packed.tflite")]
        for system, artifact in runs:
            cmd = [sys.executable, __file__, "--one", system, "--data", str(data), "--per-split", str(args.per_split)] + (["--artifact", artifact] if artifact else [])
            done = subprocess.run(cmd, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
            if done.returncode != 0:
                raise SystemExit(f"{system} {artifact or ''} failed: {done.stderr[-1500:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    out = {"machine": machine(), "images": len(SPLITS) * args.per_split, "per_split": args.per_split, "seed": args.seed,
           "rows": rows}
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
