"""Does the model underfit or overfit? Each tier of a packed model reads a fixed sample of its
own training images (training words, training fonts and styles) and the evaluation splits
(unseen fonts; unseen words for OOV). Training images read much better than held-out ones:
memorising, so more and more varied data is the lever. About as well: underfitting, so
capacity and training steps are.

    python bench/bench_fit.py --data D [--checkpoint P] [--n 800]

D is the data directory the model was trained on. Writes bench/results/fit.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_tiers import read, read_images, scores  # noqa: E402
from common import machine  # noqa: E402

from its_mobile import checkpoint  # noqa: E402
from its_mobile.data.dataset import NOISY_SHARE, load  # noqa: E402


def fit(data_dir: Path, path: Path | None, n: int) -> dict:
    data = load(data_dir)
    images, word_ids = data.split("train")
    sample = np.sort(np.random.default_rng(0).choice(len(word_ids), size=min(n, len(word_ids)), replace=False))
    _, info = checkpoint.load(path or checkpoint.DEFAULT)
    tiers = {}
    for tier in checkpoint.model_tiers(info):
        encoder = checkpoint.load_model(path, tier)[0]
        splits = {"train (sample)": read_images(encoder, data, images[sample], word_ids[sample]), **read(encoder, data)}
        tiers[tier] = {split: {**scores(*got_want), "n": len(got_want[0])} for split, got_want in splits.items()}
    return {"machine": machine(), "checkpoint": str(path or "the embedded default"), "data": data.meta.get("spec", {}),
            "noisy_share": NOISY_SHARE, "tiers": tiers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--n", type=int, default=800, help="training images to read")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fit.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = fit(args.data, args.checkpoint, args.n)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({t: {s: round(v["exact"], 3) for s, v in r.items()} for t, r in result["tiers"].items()}, indent=1))


if __name__ == "__main__":
    main()
