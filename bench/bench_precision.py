"""Ternary against float: the compression issue's "ternary `large` within 1.5 points of the
float student", in two protocols. Both start from the shipped default's student; the float run
continues it in float, `large` alone:

    python bench/bench_precision.py train-float --data D --out FLOAT --steps N --lr LR [--start EARLIER_FLOAT]

Equal training: a ternary run continues the default from the same weights, on the same data,
for the same steps and schedule; only the precision differs.

    its-mobile train --preset full --data D --out TERN --ternary --tiers large --init default \\
        --stage student --steps N --lr LR --threads 1
    python bench/bench_precision.py compare --data D --float FLOAT --ternary TERN/ternary-large

Fine-tuned from the float student (the issue's pipeline: float first, then quantization-aware
fine-tuning from it, distilled towards its scores): the ternary run starts from FLOAT's student.

    its-mobile train ... --init default --stage student --from-float FLOAT ...
    python bench/bench_precision.py compare --data D --float FLOAT --ternary TERN/ternary-large \\
        --out bench/results/precision_from_float.json

`compare` reads every tier of both runs and of the default they started from on the evaluation
splits and writes the JSON (default bench/results/precision.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_continued import measure  # noqa: E402
from bench_tiers import reading, tier_encoder  # noqa: E402
from common import machine  # noqa: E402

from its_mobile import checkpoint  # noqa: E402
from its_mobile.checkpoint import DEFAULT  # noqa: E402
from its_mobile.compress.tiers import TIERS  # noqa: E402
from its_mobile.data.dataset import load  # noqa: E402
from its_mobile.train.loop import Compression, load_stage_module, run_stage  # noqa: E402
from its_mobile.train.presets import PRESETS  # noqa: E402


def train_float(data_dir: Path, out: Path, steps: int, lr: float, minutes: float | None, threads: int = 1,
                start: Path = DEFAULT) -> dict:
    """Continue a student in float (no ternary), `large` alone: the default's, or the float
    student of an earlier train-float run (`start`, a run directory) on a fresh schedule."""
    torch.set_num_threads(threads)
    spec = Compression(start, {"large": TIERS["large"]}, ternary=False)
    return run_stage("student", load(data_dir), PRESETS["full"], out, compression=spec, steps=steps, lr=lr,
                     minutes=minutes)


def run_record(run: Path) -> dict:
    _, info = checkpoint.load(run / "student.safetensors")
    return {k: info[k] for k in ("step", "samples", "seconds", "cpu_seconds", "schedule")} | \
        {"tiers": list(info.get("tiers", {})), "ternary": info.get("ternary", False),
         "student": info["dims"]["student"], "from_float": "float_student" in info,
         # 1 before they could be chosen
         "tier_weight": info.get("tier_weight", 1.0), "kl_weight": info.get("kl_weight", 1.0),
         "seed": info.get("seed"),  # None before it was recorded
         # what a compressed or float run started from: a packed checkpoint (e.g. the shipped
         # default) or an earlier run's directory; read from the name, the run may have moved since
         "continued": None if "source" not in info else
         "checkpoint" if info["source"].endswith(".safetensors") else "run",
         "teacher": info.get("teacher")}


def with_speaker(encoder, start: Path | None, tier: str):
    """What `encoder` says: the encoder itself where it reads phonemes; one that reads letters,
    inside the model `start` (that tier) in place of that model's encoder, through its speaker."""
    model = checkpoint.load_model(start, tier)[0]
    if not hasattr(model, "speaker"):
        return encoder
    model.encoder.load_state_dict(encoder.state_dict())
    return model


def compare(data_dir: Path, float_run: Path, ternary_run: Path, start: Path | None = None) -> dict:
    """`start` is the packed model both runs started from (default: the embedded one)."""
    data, preset = load(data_dir), PRESETS["full"]
    n = len(data.meta["inventory"])
    rows = [{"model": "start: the shipped default", "tier": t, "reading": v["reading"]}
            for t, v in measure(start, data)["tiers"].items()]
    float_encoder = tier_encoder(load_stage_module(float_run, "student", preset, n), "large", preset, n, False)
    rows.append({"model": "float, continued", "tier": "large",
                 "reading": reading(with_speaker(float_encoder, start, "large"), data)})
    latent = load_stage_module(ternary_run, "student", preset, n)
    record = run_record(ternary_run)
    label = "ternary, from the float" if record["from_float"] else "ternary, continued"
    rows += [{"model": label, "tier": t,
              "reading": reading(with_speaker(tier_encoder(latent, t, preset, n, True), start, t), data)}
             for t in record["tiers"]]
    return {"machine": machine(), "data": data.meta["spec"], "rows": rows,
            "runs": {"float": run_record(float_run), "ternary": record}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tf = sub.add_parser("train-float", help="continue the default's student in float")
    tf.add_argument("--data", type=Path, required=True)
    tf.add_argument("--out", type=Path, required=True)
    tf.add_argument("--steps", type=int, required=True)
    tf.add_argument("--lr", type=float, required=True)
    tf.add_argument("--minutes", type=float)
    tf.add_argument("--threads", type=int, default=1)
    tf.add_argument("--start", type=Path, default=DEFAULT, help="an earlier train-float run to continue on a fresh "
                    "schedule (default: the embedded default's student)")
    cp = sub.add_parser("compare", help="read both continuations and their start")
    cp.add_argument("--data", type=Path, required=True)
    cp.add_argument("--float", dest="float_run", type=Path, required=True)
    cp.add_argument("--ternary", dest="ternary_run", type=Path, required=True)
    cp.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "precision.json")
    cp.add_argument("--start", type=Path, help="the packed model both runs started from, once it is no longer "
                    "the embedded default")
    args = ap.parse_args()
    if args.cmd == "train-float":
        r = train_float(args.data, args.out, args.steps, args.lr, args.minutes, args.threads, args.start)
        print(f"float student: step {r['step']}, loss {r['loss_curve'][-1][1]:.4f}, {r['seconds']:.0f} s")
        return
    torch.set_num_threads(1)
    result = compare(args.data, args.float_run, args.ternary_run, args.start)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({f"{r['model']} / {r['tier']}": {s: round(v["exact"], 3) for s, v in r["reading"].items()}
                      for r in result["rows"]}, indent=1))


if __name__ == "__main__":
    main()
