"""One word, image -> waveform, on one host thread after load: p50/p90 and real-time factor,
with the time of each part (reading: encoder and speaker; acoustic model; vocoder).

    python bench/bench_latency.py [--checkpoint P] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from common import machine

from its_mobile.checkpoint import load_model
from its_mobile.constants import HOP, SAMPLE_RATE
from its_mobile.data.render import find_fonts, render


def timed(fn, runs: int) -> list[float]:
    for _ in range(10):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.checkpoint)
    img = render("reading", find_fonts()[1][0], np.random.default_rng(0), noisy=False)
    x = torch.from_numpy(img.astype(np.float32))[None, None]
    with torch.inference_mode():
        phones, mask, _ = model.read(x)
        mel, _, _, n_frames = model.acoustic(phones, mask)
        parts = {
            "whole": lambda: model(x),
            "reading": lambda: model.read(x),
            "acoustic": lambda: model.acoustic(phones, mask),
            "vocoder": lambda: model.vocoder(mel),
        }
        res = {k: timed(fn, args.runs) for k, fn in parts.items()}
        exported = torch.export.export(model, (x,)).module()
        res["whole (torch.export module)"] = timed(lambda: exported(x), args.runs)
    seconds = int(n_frames[0]) * HOP / SAMPLE_RATE
    out = {k: {"p50_ms": float(np.percentile(v, 50)), "p90_ms": float(np.percentile(v, 90))} for k, v in res.items()}
    out["audio_seconds"] = seconds
    out["rtf"] = out["whole"]["p50_ms"] / 1000 / seconds
    out["machine"] = machine()
    print(json.dumps(out, indent=1))
    (Path(__file__).parent / "results" / "latency.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
