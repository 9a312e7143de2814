"""Every tier trained in one pass against the same sub-network trained alone (the compression
issue: each tier at least as accurate), from the same start (the shipped default), on the same
data, for the same steps and schedule; only the tiers trained differ.

    for t in large,base,small large small; do
        its-mobile train --preset full --data D --out RUNS --ternary --init default --stage student \\
            --tiers $t --steps N --lr LR --threads 1
    done
    python bench/bench_alone.py --data D --runs RUNS

Writes bench/results/alone.json. With `--from-float FLOAT` in every run they all start from
(and are distilled towards) that float student instead; write those to --out
bench/results/alone_from_float.json. `--runs` takes several directories, e.g. one-pass runs
with different `--tier-weight`s (bench/results/tier_weight.json); runs that differ by `--seed`
are labelled with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_precision import run_record  # noqa: E402
from bench_tiers import reading, tier_encoder  # noqa: E402
from common import machine  # noqa: E402

from its_mobile.data.dataset import load  # noqa: E402
from its_mobile.train.loop import load_stage_module  # noqa: E402
from its_mobile.train.presets import PRESETS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "alone.json")
    ap.add_argument("--note", default="", help="how the runs were trained, if the command above does not say")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data, preset = load(args.data), PRESETS["full"]
    n = len(data.meta["inventory"])
    records = {run: run_record(run) for run in sorted(r for d in args.runs for r in d.glob("ternary-*"))}
    seeds = {record["seed"] for record in records.values()}
    rows, runs = [], {}
    for run, record in records.items():
        latent = load_stage_module(run, "student", preset, n)
        runs[f"{run.parent.name}/{run.name}"] = record
        trained = ("alone" if len(record["tiers"]) == 1 else "all in one pass" + "".join(
            f", {label} {record[key]:g}" for key, label in (("tier_weight", "tier weight"), ("kl_weight", "KL weight"))
            if record[key] != 1)) + (f", seed {record['seed']}" if len(seeds) > 1 else "")
        for tier in record["tiers"]:
            rows.append({"trained": trained, "tier": tier,
                         "reading": reading(tier_encoder(latent, tier, preset, n, True), data)})
    result = {"machine": machine(), "rows": rows, "runs": runs, "note": args.note}
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({f"{r['trained']} / {r['tier']}": {s: round(v["exact"], 3) for s, v in r["reading"].items()}
                      for r in rows}, indent=1))


if __name__ == "__main__":
    main()
