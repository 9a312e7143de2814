"""The shipped default before and after continued training (`its-mobile train --ternary --init`),
side by side on the same evaluation splits: reading accuracy (exact, PER) of every tier, the
packed file's bytes, unpacking time and each tier's latency, and what the continuation cost.

    git show REV:its_mobile/assets/default.safetensors > before.safetensors
    python bench/bench_continued.py --data D --before before.safetensors [--after AFTER]

AFTER defaults to the embedded model. Evaluation splits larger than the training data's
(`its-mobile data --n 1 --n-eval 1000 --seed S`: fresh renders, and OOV words are the same for
every seed) tell a small change from noise:

    python bench/bench_continued.py --data FRESH --before before.safetensors --out bench/results/continued_fresh.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_tiers import packed_stats, reading  # noqa: E402
from common import machine  # noqa: E402

from its_mobile import checkpoint  # noqa: E402
from its_mobile.compress.inspect import inspect_checkpoint  # noqa: E402
from its_mobile.data.dataset import load  # noqa: E402


def measure(path: Path | None, data) -> dict:
    sizes = {t["name"]: t for t in inspect_checkpoint(path)["tiers"]}
    largest, info = checkpoint.load_model(path)
    tiers = {}
    with torch.inference_mode():
        for tier in checkpoint.model_tiers(info):
            model = largest if tier == info["tier"] else checkpoint.load_model(path, tier)[0]
            tiers[tier] = {"packed_bytes": sizes[tier]["packed_bytes"], "reading": reading(model, data)}
    return {"checkpoint": "embedded default" if path is None else path.name, "tiers": tiers,
            "packed": packed_stats(path), "training": info.get("training", {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "continued.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load(args.data)
    result = {"machine": machine(), "data": data.meta["spec"], "before": measure(Path(args.before), data),
              "after": measure(Path(args.after) if args.after else None, data)}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: {t: v["reading"] for t, v in result[k]["tiers"].items()} for k in ("before", "after")}, indent=1))


if __name__ == "__main__":
    main()
