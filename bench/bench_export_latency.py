"""Packed artifacts against their dense twins, side by side in one process, one thread:
p50/p90 latency of one word image -> waveform in the real runtimes (ExecuTorch, LiteRT).

    python bench/bench_export_latency.py OUT     # OUT from `its-mobile export --weights both`
    python bench/bench_export_latency.py OUT --also before=old/its-large-packed.pte   # + another export
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from conversion import executorch as et_backend  # noqa: E402
from its_mobile.parity import parity_images  # noqa: E402


def callers(artifacts: dict[str, Path], x: np.ndarray) -> tuple[dict, dict]:
    """(name -> one timed call, name -> init ms of the packed .pte files)"""
    from ai_edge_litert.interpreter import Interpreter
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    _unsafe_reset_threadpool(1)  # ExecuTorch's threadpool ignores torch.set_num_threads
    fns, init = {}, {}
    for name, path in artifacts.items():
        if path.suffix == ".pte":
            program, forward = et_backend.load(path)
            xt = torch.from_numpy(x)
            fns[name] = (lambda f=forward, p=program: f.execute([xt]))
            if "init" in program.method_names:  # what a fresh load pays once
                t = time.perf_counter()
                program.load_method("init").execute([])
                init[name] = (time.perf_counter() - t) * 1000
        elif path.suffix == ".tflite":
            it = Interpreter(model_path=str(path), num_threads=1)
            it.allocate_tensors()
            idx = it.get_input_details()[0]["index"]
            fns[name] = (lambda it=it, idx=idx: (it.set_tensor(idx, x), it.invoke()))
    return fns, init


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--also", action="append", default=[], metavar="LABEL=FILE",
                    help="another .pte or .tflite to time in the same loop, shown as LABEL/its name")
    args = ap.parse_args()
    out = Path(args.out)
    report = json.loads((out / "export-report.json").read_text())
    artifacts = {a["path"]: out / a["path"] for a in report["artifacts"] if a["format"] in ("executorch", "tflite")}
    for item in args.also:
        label, _, path = item.partition("=")
        artifacts[f"{label}/{Path(path).name}"] = Path(path)
    x = parity_images()[1][:1]
    fns, init = callers(artifacts, x)
    times = {k: [] for k in fns}
    for _ in range(10):
        for f in fns.values():
            f()
    for _ in range(args.runs):  # interleaved, so load from other jobs hits every artifact alike
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t) * 1000)
    rows = {k: {"p50_ms": float(np.percentile(v, 50)), "p90_ms": float(np.percentile(v, 90))} for k, v in times.items()}
    for k, ms in init.items():
        rows[k]["init_ms"] = ms
    result = {"machine": machine(), "runs": args.runs, "latency": rows}
    (Path(__file__).parent / "results" / "export_latency.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
