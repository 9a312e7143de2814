"""Profile an artifact on this machine in its real runtime: load time, first inference,
latency percentiles after warm-up, peak memory, size by tensor group, and ExecuTorch's
per-operator times from ETDump."""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from its_mobile.errors import BadInput

WARMUP = 3
ETDUMP_RUNS = 10


def format_of(path: Path) -> str:
    """The backend of an artifact, from its extension."""
    from conversion import SETTINGS

    for fmt, settings in SETTINGS.items():
        if path.name.endswith(settings["extension"]):
            return fmt
    raise BadInput(f"{path.name} is not an artifact its-mobile profiles (.pte, .tflite or .mlpackage)")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def size_breakdown(fmt: str, path: Path) -> dict:
    """Bytes by group: ternary weights, high-precision tensors and the format's own overhead,
    read from the file where its format says which tensor is which, else from the export
    report beside it; `known` is False when neither tells."""
    from its_mobile.export import REPORT, artifact_bytes

    total = artifact_bytes(path)
    if fmt == "tflite":
        from conversion.tflite import BITS
        from ai_edge_litert.tools import flatbuffer_utils as fb

        model = fb.read_model(str(path))
        ternary = high = 0
        for tensor in model.subgraphs[0].tensors:
            data = model.buffers[tensor.buffer].data if tensor.buffer else None
            if data is None:
                continue
            if BITS.get(tensor.type, 8) < 8:  # int2/int4: the ternary weights
                ternary += len(data)
            else:
                high += len(data)
        return {"total": total, "ternary": ternary, "high_precision": high, "overhead": total - ternary - high,
                "known": True, "source": "the .tflite's tensors"}
    try:
        entry = next(a for a in json.loads((path.parent / REPORT).read_text())["artifacts"] if a["path"] == path.name)
        high = int(entry["high_precision_bytes"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return {"total": total, "known": False, "source": f"no {REPORT} beside the artifact"}
    return {"total": total, "high_precision": high, "ternary_and_overhead": total - high, "known": True,
            "source": f"{REPORT} (high-precision tensors at the backend's float width)"}


def timed(run, pixels: np.ndarray, runs: int, warmup: int = WARMUP) -> list[float]:
    """Milliseconds of each of `runs` calls of `run(pixels)`, after `warmup` untimed ones."""
    for _ in range(warmup):
        run(pixels)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run(pixels)
        times.append((time.perf_counter() - t) * 1000)
    return times


def _latency(times: list[float]) -> dict:
    a = np.asarray(times)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p90_ms": round(float(np.percentile(a, 90)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "mean_ms": round(float(a.mean()), 3),
            "min_ms": round(float(a.min()), 3), "times_ms": [round(t, 3) for t in times]}


def executorch_operators(path: Path, pixels: np.ndarray, top: int = 12) -> list[dict]:
    """Per-operator time of `forward` from ETDump through the devtools Inspector: the slowest
    `top` event names, summed over their calls in one inference (XNNPACK's delegated part is
    one event)."""
    import torch
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(str(path), enable_etdump=True)
    if "init" in program.method_names:
        program.load_method("init").execute([])
    forward = program.load_method("forward")
    for _ in range(ETDUMP_RUNS):
        forward.execute([torch.from_numpy(pixels)])
    with tempfile.TemporaryDirectory() as tmp:
        etdump = Path(tmp) / "profile.etdp"
        program.write_etdump_result_to_file(str(etdump), str(Path(tmp) / "debug.bin"))
        blocks = Inspector(etdump_path=str(etdump)).event_blocks
    runs = [b for b in blocks if b.name == "Execute" and any(e.perf_data and len(e.perf_data.raw) == ETDUMP_RUNS
                                                               for e in b.events)]
    if not runs:
        return []
    totals: dict[str, list[float]] = {}
    for e in runs[-1].events:
        if e.perf_data is None or e.name == "OPERATOR_CALL":  # OPERATOR_CALL wraps each native call
            continue
        totals.setdefault(e.name.removeprefix("native_call_"), []).append(float(np.median(e.perf_data.raw)))
    rows = [{"op": name, "calls": len(t), "ms": round(sum(t), 4)} for name, t in totals.items()]
    return sorted(rows, key=lambda r: -r["ms"])[:top]


def profile_artifact(path: Path, runs: int, threads: int) -> dict:
    """Everything measurable about one artifact here; a runtime that cannot run on this machine
    (Core ML off macOS) gives its size and the reason instead of times."""
    from conversion import SETTINGS, RuntimeUnavailable, backend
    from its_mobile.parity import parity_images

    path = Path(path)
    if not path.exists():
        raise BadInput(f"artifact not found: {path}")
    fmt = format_of(path)
    result = {"artifact": path.name, "format": fmt, "runtime": SETTINGS[fmt]["runtime"], "threads": threads,
              "size": size_breakdown(fmt, path)}
    pixels = parity_images()[1][:1]
    module = backend(fmt)  # imported before the clock starts: load time is the model's, not Python's
    base_rss = _rss_mb()
    try:
        t = time.perf_counter()
        run = module.runner(path, SETTINGS[fmt], threads)
        load_ms = (time.perf_counter() - t) * 1000
    except RuntimeUnavailable as e:
        return {**result, "measured": False, "reason": str(e)}
    except Exception as e:  # a corrupted or foreign file: the runtimes raise many kinds
        raise BadInput(f"{path.name} cannot be loaded by the {SETTINGS[fmt]['runtime']} ({type(e).__name__})") from e
    t = time.perf_counter()
    run(pixels)
    first_ms = (time.perf_counter() - t) * 1000
    times = timed(run, pixels, runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result |= {"measured": True, "runs": runs, "warmup": WARMUP, "load_ms": round(load_ms, 2),
               "first_ms": round(first_ms, 2), **_latency(times), "peak_rss_mb": round(peak, 1),
               "rss_before_load_mb": round(base_rss, 1)}
    if fmt == "executorch":
        result["operators"] = executorch_operators(path, pixels)
    else:
        result["operators_note"] = ("the LiteRT Python interpreter has no op profiler; run benchmark_model "
                                    "--enable_op_profiling=true (`--adb`) for one")
    return result
