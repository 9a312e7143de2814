"""Words framed as a user's photo or screenshot frames them, with wide margins around the word:
reading accuracy of the default with and without `speak`'s crop to the word (images.crop_to_text),
and on the evaluation images as they are (tightly framed, as in training), where the crop
should change nothing.

    python bench/bench_margins.py --data D     # D from `its-mobile data`

Each evaluation image is enlarged 4x (a camera sees the word at a higher resolution than the
model) and placed at a random spot of a canvas 1.7-4x its width and 2-5x its height, filled
with the image's own background level plus a mild lighting gradient and sensor noise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from its_mobile.checkpoint import load_model  # noqa: E402
from its_mobile.data.dataset import EVAL_SPLITS, load  # noqa: E402
from its_mobile.evaluate.metrics import phoneme_lists, targets  # noqa: E402
from its_mobile.images import model_input  # noqa: E402


def in_margin(img: np.ndarray, rng: np.random.Generator) -> Image.Image:
    big = np.asarray(Image.fromarray(img).resize((img.shape[1] * 4, img.shape[0] * 4), Image.BICUBIC), np.float32)
    h, w = big.shape
    border = np.concatenate([big[0], big[-1], big[:, 0], big[:, -1]])
    H, W = int(h * rng.uniform(2, 5)), int(w * rng.uniform(1.7, 4))
    canvas = np.full((H, W), np.median(border), np.float32)
    canvas += np.linspace(0, rng.uniform(-30, 30), W)[None, :]
    y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    canvas[y : y + h, x : x + w] = big
    canvas += rng.normal(0, rng.uniform(0, 4), canvas.shape)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))


@torch.inference_mode()
def exact(model, images: list[np.ndarray], want: list[list[int]]) -> float:
    x = torch.from_numpy(np.stack(images).astype(np.float32)).unsqueeze(1)
    phones, mask, _ = model.read(x)
    got = phoneme_lists(phones, mask)
    return float(np.mean([g == w for g, w in zip(got, want)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "margins.json"))
    args = ap.parse_args()
    model, _ = load_model(None)
    data = load(Path(args.data))
    rng = np.random.default_rng(0)
    rows = {}
    for split in EVAL_SPLITS:
        images, word_ids = data.split(split)
        images = [np.asarray(i) for i in images]
        want = targets(data, word_ids)
        framed = [Image.fromarray(i) for i in images]
        wide = [in_margin(i, rng) for i in images]
        rows[split] = {
            "framed": exact(model, images, want),
            "framed, cropped": exact(model, [model_input(g) for g in framed], want),
            "wide margin": exact(model, [model_input(g, crop=False) for g in wide], want),
            "wide margin, cropped": exact(model, [model_input(g) for g in wide], want),
            "n": len(images),
        }
        print(split, rows[split], flush=True)
    Path(args.out).write_text(json.dumps({"machine": machine(), "splits": rows}, indent=1))


if __name__ == "__main__":
    main()
