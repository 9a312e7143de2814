"""What training every tier in one pass costs against training the largest alone (the compression
issue: <= 1.5x): the student stage's ternary training from the shipped default, each recipe for
the same steps, one thread, recipes interleaved round by round on the same batches.

    python bench/bench_tier_cost.py --data D [--steps 300] [--rounds 3]

Writes bench/results/tier_cost.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from its_mobile.checkpoint import DEFAULT  # noqa: E402
from its_mobile.compress.tiers import parse_tiers  # noqa: E402
from its_mobile.data.dataset import load  # noqa: E402
from its_mobile.train.loop import Compression, run_stage  # noqa: E402
from its_mobile.train.presets import PRESETS  # noqa: E402

RECIPES = ("large", "large,base,small", "small")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "tier_cost.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load(args.data)
    cpu: dict[str, list[float]] = {r: [] for r in RECIPES}
    wall: dict[str, list[float]] = {r: [] for r in RECIPES}
    for k in range(args.rounds):
        for recipe in RECIPES:
            with tempfile.TemporaryDirectory() as run:
                spec = Compression(DEFAULT, parse_tiers(recipe))
                r = run_stage("student", data, PRESETS["full"], Path(run), compression=spec, steps=args.steps,
                              progress=False)
            cpu[recipe].append(r["cpu_seconds"] / r["step"] * 1000)
            wall[recipe].append(r["seconds"] / r["step"] * 1000)
            print(f"round {k}: {recipe}: {cpu[recipe][-1]:.1f} CPU ms/step", flush=True)
    med = {r: float(np.median(v)) for r, v in cpu.items()}
    result = {"machine": machine(), "steps": args.steps, "rounds": args.rounds, "batch": PRESETS["full"].compressed["student"].batch,
              "cpu_ms_per_step": cpu, "wall_ms_per_step": wall, "median_cpu_ms_per_step": med,
              "all_tiers_over_large": med["large,base,small"] / med["large"]}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("median_cpu_ms_per_step", "all_tiers_over_large")}, indent=1))


if __name__ == "__main__":
    main()
