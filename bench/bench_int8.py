"""What int8 activations or int8 weights cost: the default's packed .tflite (int2 ternary
weights, float32 activations) against the same int2 weights with activations quantized to int8
at run time (ai-edge-quantizer dynamic range), and against the ternary weights stored as int8,
each run in the LiteRT interpreter against PyTorch on N held-out images (as `its-mobile parity
--n N`), plus size and one-thread latency side by side.

    python bench/bench_int8.py [--n 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from conversion import SETTINGS  # noqa: E402
from conversion import tflite  # noqa: E402
from conversion.wrap import int8_names  # noqa: E402
from its_mobile.export import ternary_model  # noqa: E402
from its_mobile.model.its import OUTPUT_NAMES, example_inputs  # noqa: E402
from its_mobile.parity import compare, parity_images  # noqa: E402

# (activations, weight bits): the exported form; int8 activations with the int2 weights (the
# interpreter has no int2 dynamic-range kernel: NaN); with int8 weights (exact for ternary values);
# int8 weights with float32 activations (XNNPACK takes in a DEQUANTIZE of int8 weights, not of int2).
VARIANTS = (("float32", 2), ("int8", 2), ("int8", 8), ("float32", 8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    model, _, names = ternary_model(None, None)
    _, images = parity_images(args.n)
    with torch.inference_mode():
        refs = [{k: v.numpy() for k, v in zip(OUTPUT_NAMES, model(torch.from_numpy(img[None])))} for img in images]
    rows, runs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        dense = f"{tmp}/dense.tflite"
        tflite.convert_float(model, example_inputs(), dense)
        for act, bits in VARIANTS:
            key = f"int{bits} weights, {act} activations"
            path = f"{tmp}/{act}-{bits}.tflite"
            tflite.quantize_weights(dense, path, model, int8_names(model, names), bits=bits, activations=act)
            tflite.strip_names(path)
            run = tflite.runner(Path(path), SETTINGS["tflite"], threads=1)
            per = [compare(r, dict(zip(OUTPUT_NAMES, run(img[None]))), SETTINGS["tflite"]) for r, img in zip(refs, images)]
            rows[key] = {"bytes": Path(path).stat().st_size, **tflite.delegated_partitions(path),
                         "phoneme_agreement": float(np.mean([p["equal"]["phonemes"] for p in per])),
                         "frames_agreement": float(np.mean([p["equal"]["n_frames"] for p in per])),
                         "mel_max_rel_err": max(p["mel_rel"] for p in per),
                         "median_waveform_snr_db": float(np.median([p["snr_db"] for p in per])),
                         "passed_tolerances": float(np.mean([p["ok"] for p in per]))}
            runs[key] = run
        times = {k: [] for k in runs}
        for i in range(10 + args.runs):  # interleaved, so load from other jobs hits both alike
            for k, run in runs.items():
                t = time.perf_counter()
                run(images[:1])
                if i >= 10:
                    times[k].append((time.perf_counter() - t) * 1000)
    for k, v in times.items():
        rows[k]["p50_ms"] = float(np.median(v))
    out = {"machine": machine(), "images": args.n, "variants": rows}
    (Path(__file__).parent / "results" / "int8.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
