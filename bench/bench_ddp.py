"""Data-parallel throughput on this machine, side by side in one run: the full preset's teacher
and student stages, one process with every core against torchrun with 2 gloo ranks of one
thread each, the same global batch. Samples per second from the stage record.

    python bench/bench_ddp.py --data DATA [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from its_mobile import checkpoint  # noqa: E402


def run(cmd: list[str], out: Path, stage: str) -> dict:
    subprocess.run(cmd, check=True, capture_output=True)
    _, info = checkpoint.load(out / f"{stage}.safetensors")
    return {"steps": info["step"], "samples": info["samples"], "seconds": round(info["seconds"], 1),
            "samples_per_s": round(info["samples"] / info["seconds"], 1), "last_loss": info["loss_curve"][-1][1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for stage in ("teacher", "student"):
            common = ["train", "--preset", "full", "--data", args.data, "--stage", stage, "--steps", str(args.steps),
                      "--batch", str(args.batch)]
            for label, prefix, extra in (
                ("1 process, 2 threads", [sys.executable, "-m", "its_mobile"], ["--threads", str(os.cpu_count())]),
                ("torchrun 2 ranks (gloo), 1 thread each", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                            "--nproc_per_node", "2", "-m", "its_mobile"], ["--threads", "1"]),
            ):
                out = Path(tmp) / label.split()[0]
                if stage == "student":  # the student distils from a teacher: give it the one just trained
                    out.mkdir(parents=True, exist_ok=True)
                rows.append({"stage": stage, "setup": label,
                             **run([*prefix, *common, *extra, "--out", str(out)], out, stage)})
                print(rows[-1], flush=True)
    result = {"machine": machine(), "batch": args.batch, "rows": rows}
    path = Path(__file__).parent / "results" / "ddp.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
