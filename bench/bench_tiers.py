"""The compression issue's table: each tier of the ternary all-in-one run against the float
student, the float student ternarized after training (no QAT), and the same sub-networks
trained alone; params, packed bytes, reading accuracy (exact, PER) and latency.

    python bench/bench_tiers.py --data D --run R [--packed R/ternary-large-base-small/packed.safetensors]

R holds the float stages and the compressed runs `its-mobile train --ternary` wrote:
ternary-large-base-small (all in one pass), ternary-large and ternary-small (alone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from bench_latency import timed  # noqa: E402
from common import machine  # noqa: E402

from its_mobile import checkpoint  # noqa: E402
from its_mobile.compress.inspect import inspect_checkpoint  # noqa: E402
from its_mobile.compress.packed import unpack_state  # noqa: E402
from its_mobile.compress.ternary import ternarize_, ternary_names  # noqa: E402
from its_mobile.compress.tiers import TIERS, tier_state  # noqa: E402
from its_mobile.data.dataset import EVAL_SPLITS, load  # noqa: E402
from its_mobile.data.render import find_fonts, render  # noqa: E402
from its_mobile.evaluate.metrics import edit_distance, phoneme_lists, targets  # noqa: E402
from its_mobile.model.encoder import ctc_greedy  # noqa: E402
from its_mobile.model.its import ITS  # noqa: E402
from its_mobile.train.loop import build, load_stage_module  # noqa: E402
from its_mobile.train.presets import PRESETS  # noqa: E402


def phonemes_read(net: nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(phonemes, mask) that `net` reads: a whole model's reading half (its speaker too), or an
    encoder that scores phonemes (a training stage), read with CTC's greedy rule."""
    return net.read(pixels)[:2] if isinstance(net, ITS) else ctc_greedy(net(pixels))


@torch.inference_mode()
def read_images(encoder, data, images, word_ids) -> tuple[list, list]:
    """(phonemes that `encoder` (see phonemes_read) reads, the true ones) of each image."""
    phones, mask = phonemes_read(encoder, torch.from_numpy(np.asarray(images, np.float32)).unsqueeze(1))
    return phoneme_lists(phones, mask), targets(data, word_ids)


def read(encoder, data) -> dict[str, tuple[list, list]]:
    """split -> (phonemes the encoder reads, the true ones) of every image of every evaluation split."""
    return {split: read_images(encoder, data, *data.split(split)) for split in EVAL_SPLITS}


def scores(got: list, want: list) -> dict:
    """Exact match and PER of read phonemes against the true ones."""
    return {"exact": float(np.mean([g == w for g, w in zip(got, want)])),
            "per": sum(edit_distance(g, w) for g, w in zip(got, want)) / sum(len(w) for w in want)}


def reading(encoder, data) -> dict:
    """Exact match and PER of an encoder on every evaluation split."""
    return {split: scores(got, want) for split, (got, want) in read(encoder, data).items()}


def tier_encoder(latent, tier_name: str, preset, n: int, ternary: bool):
    """A tier cut from a (latent float) encoder, ternarized over the whole large tensors first."""
    full = build("student", preset, n).eval()
    full.load_state_dict(latent.state_dict())
    if ternary:
        ternarize_(full, ternary_names(full, "encoder."))
    small = build("student", preset, n, TIERS[tier_name]).eval()
    small.load_state_dict(tier_state(full.state_dict(), small))
    return small


def packed_stats(path: Path | None) -> dict:
    """A packed checkpoint (None: the embedded default): its tiers' sizes, its bytes on disk,
    how long unpacking it takes (p50 of 20) and each whole tier's latency on one word (p50 of 100)."""
    report = inspect_checkpoint(path)
    tensors, info = checkpoint.load(path or checkpoint.DEFAULT)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        unpack_state(tensors, info["ternary"])
        times.append((time.perf_counter() - t) * 1000)
    img = render("reading", find_fonts()[1][0], np.random.default_rng(0), noisy=False)
    x = torch.from_numpy(img.astype(np.float32))[None, None]
    latency = {}
    with torch.inference_mode():
        for tier in checkpoint.model_tiers(info):
            model, _ = checkpoint.load_model(path, tier)
            latency[tier] = float(np.percentile(timed(lambda: model(x), 100), 50))
    return {"tiers": report["tiers"], "total_bytes": report["total_bytes"],
            "unpack_ms_p50": float(np.median(times)), "latency_p50_ms": latency}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--packed")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "tiers.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data, preset, run = load(args.data), PRESETS["full"], Path(args.run)
    n = len(data.meta["inventory"])
    rows = []
    fp = load_stage_module(run, "student", preset, n)
    rows.append({"model": "float student", "tier": "large", **{"reading": reading(fp, data)}})
    rows.append({"model": "float student, ternarized after training (no QAT)", "tier": "large",
                 "reading": reading(tier_encoder(fp, "large", preset, n, True), data)})
    training = {}
    for name in ("large-base-small", "large", "small"):
        d = run / f"ternary-{name}"
        if not (d / "student.safetensors").exists():
            continue
        latent = load_stage_module(d, "student", preset, n)
        _, info = checkpoint.load(d / "student.safetensors")
        training[name] = {k: info[k] for k in ("step", "seconds", "cpu_seconds")}
        label = "ternary all-in-one" if "-" in name else f"ternary {name} alone"
        for tier in name.split("-"):
            rows.append({"model": label, "tier": tier,
                         "reading": reading(tier_encoder(latent, tier, preset, n, True), data)})
    result = {"machine": machine(), "rows": rows, "training": training}
    if args.packed:
        result["packed"] = packed_stats(Path(args.packed))
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
