"""Record a bench/gpu/student.sh run: each config's steps, seconds and loss from its logs, and
every tier of its packed student evaluated here on fresh renders (the shipped one's before and
after are bench_continued.py's).

    python bench/gpu/record.py RUN_DIR DATA --configs "A 256 0.001 B 1024 0.002" \
        --render-seconds S --device "NVIDIA H200"

RUN_DIR: the run's $OUT (NAME.1.log, NAME.2.log, NAME/packed.safetensors); DATA: an
`its-mobile data` directory whose eval splits use fonts the model never trained on.
Writes bench/results/gpu_student.json.
"""
import argparse
import json
import os
import re
from pathlib import Path

from its_mobile.checkpoint import load_model
from its_mobile.data.dataset import load
from its_mobile.evaluate.metrics import evaluate_model
from its_mobile.host import describe

OUT = Path(__file__).parent.parent / "results" / "gpu_student.json"
# the training command's last progress line: "student (large, base, small): step 1234, loss 0.04, 60 s"
DONE = re.compile(r": step (\d+), loss ([\d.]+), (\d+) s$", re.M)


def phase(log: Path) -> dict:
    step, loss, seconds = DONE.findall(log.read_text(errors="replace").replace("\r", "\n"))[-1]
    return {"step": int(step), "loss": float(loss), "seconds": int(seconds)}


def scores(packed: Path, data) -> dict:
    out = {}
    for tier in ("large", "base", "small"):
        model, info = load_model(packed, tier)
        res = evaluate_model(model, info["inventory"], data, asr=False)
        out[tier] = {s["split"]: {k: s[k] for k in ("n", "exact", "letters_exact", "per")} for s in res["splits"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("--configs", required=True)
    ap.add_argument("--render-seconds", type=float, required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--n-train", type=int, default=1_200_000)
    ap.add_argument("--seed", type=int, default=21)
    a = ap.parse_args()
    data = load(a.data)
    words = a.configs.split()
    configs = []
    for name, batch, lr in zip(words[::3], words[1::3], words[2::3]):
        configs.append({"name": name, "batch": int(batch), "lr": float(lr),
                        "phase1": phase(a.run / f"{name}.1.log"), "phase2": phase(a.run / f"{name}.2.log"),
                        "eval": scores(a.run / name / "packed.safetensors", data)})
    rec = {"machine": describe(), "device": a.device, "n_train": a.n_train, "seed": a.seed,
           "render_seconds": a.render_seconds, "eval_data": data.meta["spec"],
           "configs": configs}
    tmp = OUT.with_name(OUT.name + ".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    os.replace(tmp, OUT)


if __name__ == "__main__":
    main()
