"""Which encoder weights must stay in higher precision: each dense weight of a float student,
ternarized after training on its own ("only"), and every one but it ternarized ("all but"),
read on the evaluation splits. A weight whose "only" costs much and whose "all but" gains
much is one the ternary fine-tuning would have to work hardest to recover.

    python bench/bench_sensitivity.py --data D --float FLOAT [--qat STEM8 TERNARY]

FLOAT is a run directory with a float student (bench_precision.py train-float). The first conv
(raw pixels) and the output projection (its errors reach the phoneme scores directly) are
never ternarized in "all but": with the first conv ternary every reading is near zero, and
the column would say nothing. Writes bench/results/sensitivity.json.

After quantization-aware fine-tuning (`--qat`): two ternary runs, `large` alone from FLOAT,
same steps and schedule, one trained at commit eb88656 (the stem's convs STEM kept in 8
bits), the other with them ternary; each is read as it was trained, on the same images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from bench_precision import run_record  # noqa: E402
from bench_tiers import read, reading  # noqa: E402
from common import machine  # noqa: E402

from its_mobile.compress.int8 import dequantize_rows, quantize_rows  # noqa: E402
from its_mobile.compress.ternary import HIGH_PRECISION, ternarize_, ternary_names  # noqa: E402
from its_mobile.data.dataset import load  # noqa: E402
from its_mobile.train.loop import load_stage_module  # noqa: E402
from its_mobile.train.presets import PRESETS  # noqa: E402

ALWAYS_KEPT = ("stem.0.weight", "head.weight")
STEM = ("stem.2.weight", "stem.4.weight", "stem.6.weight")


def dense_weights(encoder: nn.Module) -> list[str]:
    """Every dense (groups 1) Linear / Conv weight of the encoder."""
    return [f"{name}.weight" for name, m in encoder.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and getattr(m, "groups", 1) == 1]


def averaged(encoder: nn.Module, data) -> dict:
    r = reading(encoder, data)
    return {"exact": float(np.mean([v["exact"] for v in r.values()])), "per": float(np.mean([v["per"] for v in r.values()]))}


def correct(encoder: nn.Module, data) -> np.ndarray:
    """Whether each evaluation image (every split, in order) is read exactly."""
    return np.array([g == w for got, want in read(encoder, data).values() for g, w in zip(got, want)])


def as_trained(run: Path, stem_in_8_bits: bool, preset, n_phones: int) -> nn.Module:
    """A ternary run's `large` encoder with the weights it trained with: ternary ones quantized,
    and the stem's convs in 8 bits when it kept them so."""
    enc = load_stage_module(run, "student", preset, n_phones).eval()
    names = ternary_names(enc, "encoder.")
    params = dict(enc.named_parameters())
    with torch.no_grad():
        for name in STEM if stem_in_8_bits else ():
            params[name].copy_(dequantize_rows(*quantize_rows(params[name])))
    return ternarize_(enc, [name for name in names if not (stem_in_8_bits and name in STEM)])


def qat(kept: Path, ternary: Path, data, preset, n: int) -> dict:
    a, b = correct(as_trained(kept, True, preset, n), data), correct(as_trained(ternary, False, preset, n), data)
    return {"images": len(a), "stem_in_8_bits": {"run": run_record(kept), "exact": float(a.mean())},
            "stem_ternary": {"run": run_record(ternary), "exact": float(b.mean())},
            "read_only_with_8_bits": int((a & ~b).sum()), "read_only_ternary": int((b & ~a).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--float", dest="float_run", type=Path, required=True)
    ap.add_argument("--qat", nargs=2, type=Path, metavar=("STEM8", "TERNARY"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sensitivity.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data, preset = load(args.data), PRESETS["full"]
    fp = load_stage_module(args.float_run, "student", preset, len(data.meta["inventory"])).eval()
    names = dense_weights(fp)
    rest = [n for n in names if n not in ALWAYS_KEPT]
    state = {k: v.clone() for k, v in fp.state_dict().items()}  # ternarize_ writes in place

    def with_ternary(chosen: list[str]) -> dict:
        fp.load_state_dict(state)
        return averaged(ternarize_(fp, chosen), data)

    rows = []
    for name in tqdm(names, desc="weights", unit="weight"):
        rows.append({"name": f"encoder.{name}", "weights": state[name].numel(),
                     "high_precision": f"encoder.{name.removesuffix('.weight')}" in HIGH_PRECISION,
                     "only": with_ternary([name]),
                     "all_but": with_ternary([n for n in rest if n != name]) if name in rest else None})
    result = {"machine": machine(), "float_run": run_record(args.float_run), "float": with_ternary([]),
              "all": with_ternary(rest), "always_kept": [f"encoder.{n}" for n in ALWAYS_KEPT], "rows": rows}
    if args.qat:
        result["qat"] = qat(*args.qat, data, preset, len(data.meta["inventory"]))
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({r["name"]: (r["only"]["exact"], r["all_but"] and r["all_but"]["exact"]) for r in rows}, indent=1))


if __name__ == "__main__":
    main()
