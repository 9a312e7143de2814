"""The teacher against the students around it, side by side on the same evaluation splits:
parameters end to end, exact phonemes and PER per split, and the drop from teacher to student
(the foundation issue: a teacher at least 2.4x the student, a drop of at most 1 point).

    its-mobile train --preset full --data D --out T --stage teacher --init before.safetensors
    python bench/bench_teacher.py --data FRESH --teacher T/teacher_its.safetensors \
        --student before.safetensors [--student after.safetensors] --out bench/results/teacher_fresh.json

Each --student is a whole model (packed or float; its largest tier is read), named in the
table by its --label or else its file: the one the teacher grew from, and those it then taught.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_tiers import reading  # noqa: E402
from common import machine  # noqa: E402

from its_mobile import checkpoint  # noqa: E402
from its_mobile.data.dataset import load  # noqa: E402
from its_mobile.model.its import count_params  # noqa: E402


def measure(path: Path, data, label: str | None = None) -> dict:
    model, info = checkpoint.load_model(path)
    training = info.get("training", {})
    with torch.inference_mode():
        return {"checkpoint": label or path.name, "params": count_params(model), "reading": reading(model, data),
                "stages": training.get("stages", {}), "teacher": training.get("teacher")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--teacher", type=Path, required=True, help="the teacher as a whole model (teacher_its.safetensors)")
    ap.add_argument("--student", type=Path, action="append", required=True,
                    help="a student as a whole model (repeatable: before and after it was taught)")
    ap.add_argument("--label", action="append", default=[],
                    help="what the table calls each --student, in order (default: its file name)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "teacher.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = load(args.data)
    teacher = measure(args.teacher, data)
    if len(args.label) > len(args.student):
        ap.error("more --label than --student")
    labels = args.label + [None] * (len(args.student) - len(args.label))
    students = [measure(p, data, label) for p, label in zip(args.student, labels)]
    result = {"machine": machine(), "data": data.meta["spec"], "teacher": teacher, "students": students}
    args.out.write_text(json.dumps(result, indent=1))
    for row in (teacher, *students):
        print(row["checkpoint"], f"{row['params']:,}",
              " / ".join(f"{100 * r['exact']:.1f}" for r in row["reading"].values()))


if __name__ == "__main__":
    main()
