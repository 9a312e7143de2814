"""Profile an artifact on an Android emulator or phone over adb, with the runtime's own
benchmark binary: ExecuTorch's `executor_runner` for a .pte, LiteRT's `benchmark_model` for a
.tflite. The binaries are the user's (built for the device's ABI), passed with --runner or
found on PATH; nothing is downloaded.

The commands are built and the outputs parsed here, apart from running them, so that both are
tested against the tools' real output formats without a device.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from its_mobile.errors import BadInput

REMOTE = "/data/local/tmp/its-mobile"
RUNNERS = {"executorch": "executor_runner", "tflite": "benchmark_model"}
HOW_TO_GET = {
    "executor_runner": "build it for Android with ExecuTorch's CMake (EXECUTORCH_BUILD_EXECUTOR_RUNNER=ON, "
                       "android-arm64-v8a or x86_64 for an emulator)",
    "benchmark_model": "download LiteRT's prebuilt android_aarch64_benchmark_model (or x86_64 for an emulator) "
                       "from the LiteRT release page",
}


def find_adb() -> str:
    adb = shutil.which("adb")
    if adb is None:
        raise BadInput("adb is not on PATH: install Android platform-tools (e.g. `sdkmanager platform-tools` "
                       "or Debian's `adb` package)")
    return adb


def find_runner(fmt: str, given: Path | None) -> Path:
    """The benchmark binary for `fmt`: `given`, or the tool's name on PATH."""
    if fmt not in RUNNERS:
        raise BadInput(f"{fmt} artifacts cannot be profiled over adb (Core ML runs on Apple devices only)")
    name = RUNNERS[fmt]
    if given is not None:
        if not Path(given).is_file():
            raise BadInput(f"--runner {given}: no such file")
        return Path(given)
    found = shutil.which(name)
    if found is None:
        raise BadInput(f"no {name} found: {HOW_TO_GET[name]}, then pass --runner PATH or put it on PATH")
    return Path(found)


def attached(devices_output: str) -> list[str]:
    """Serials that `adb devices` lists as ready ('device' state)."""
    return [parts[0] for line in devices_output.splitlines()[1:]
            if len(parts := line.split()) >= 2 and parts[1] == "device"]


def commands(adb: str, serial: str, fmt: str, artifact: Path, runner: Path, runs: int, threads: int) -> list[list[str]]:
    """The adb calls, in order: make a folder, push both files, make the binary executable, run it."""
    shell = [adb, "-s", serial, "shell"]
    model, binary = f"{REMOTE}/{artifact.name}", f"{REMOTE}/{runner.name}"
    if fmt == "tflite":
        run = [binary, f"--graph={model}", f"--num_threads={threads}", f"--num_runs={runs}", "--warmup_runs=3",
               "--enable_op_profiling=true"]
    else:
        run = [binary, f"--model_path={model}", f"--num_executions={runs}"]
    return [[*shell, "mkdir", "-p", REMOTE], [adb, "-s", serial, "push", str(artifact), model],
            [adb, "-s", serial, "push", str(runner), binary], [*shell, "chmod", "755", binary], [*shell, *run]]


def _number(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


def parse_benchmark_model(text: str) -> dict:
    """LiteRT benchmark_model's summary: times in microseconds, memory in MB."""
    summary = re.search(r"Inference timings in us: Init: ([\d.e+]+), First inference: ([\d.e+]+), "
                        r"Warmup \(avg\): ([\d.e+]+), Inference \(avg\): ([\d.e+]+)", text)
    if summary is None:
        raise BadInput("benchmark_model printed no 'Inference timings' line: it failed on the device "
                       f"(last output: {text.strip().splitlines()[-1][:200] if text.strip() else 'none'})")
    init, first, _, avg = (float(x) / 1000 for x in summary.groups())
    out = {"load_ms": init, "first_ms": first, "mean_ms": avg}
    runs = re.findall(r"count=(\d+) first=[\d.e+]+ curr=[\d.e+]+ min=([\d.e+]+) max=[\d.e+]+ avg=[\d.e+]+ "
                      r"std=[\d.e+]+(?: p5=[\d.e+]+ median=([\d.e+]+) p95=([\d.e+]+))?", text)
    if runs:
        count, low, median, p95 = runs[-1]  # the last block is the measured one, after warm-up
        out |= {"runs": int(count), "min_ms": float(low) / 1000}
        if median:
            out |= {"p50_ms": float(median) / 1000, "p95_ms": float(p95) / 1000}
    memory = _number(r"(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
                     r"init=[\d.e+]+ overall=([\d.e+]+)", text)
    if memory is not None:
        out["peak_memory_mb"] = memory
    return out


def parse_executor_runner(text: str, runs: int) -> dict:
    """ExecuTorch executor_runner's log: total time of `runs` executions, per-iteration times
    and load time where this version prints them."""
    total = _number(r"Model executed successfully (?:\d+) time\(s\) in ([\d.]+) ms", text)
    if total is None:
        raise BadInput("executor_runner did not report a successful execution "
                       f"(last output: {text.strip().splitlines()[-1][:200] if text.strip() else 'none'})")
    out = {"mean_ms": total / runs, "runs": runs}
    iterations = [float(x) for x in re.findall(r"Iteration \d+ of \d+: ([\d.]+) ms", text)]
    if iterations:
        iterations.sort()
        out |= {"p50_ms": iterations[len(iterations) // 2], "min_ms": iterations[0]}
    load = _number(r"Model loaded in ([\d.]+) ms", text)
    if load is not None:
        out["load_ms"] = load
    return out


def profile_on_device(serial: str, artifact: Path, fmt: str, runner: Path | None, runs: int, threads: int) -> dict:
    """Push and run on the device `serial`; every missing piece is a one-line error."""
    adb = find_adb()
    binary = find_runner(fmt, runner)
    listed = subprocess.run([adb, "devices"], capture_output=True, text=True, timeout=60)
    ready = attached(listed.stdout)
    if serial not in ready:
        raise BadInput(f"device {serial} is not attached (adb devices lists: {', '.join(ready) or 'none'})")
    output = ""
    for cmd in commands(adb, serial, fmt, artifact, binary, runs, threads):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise BadInput(f"`{' '.join(cmd[3:])}` failed on {serial} with exit code {done.returncode}: "
                           f"{output.strip().splitlines()[-1][:200] if output.strip() else 'no output'}")
    parsed = parse_benchmark_model(output) if fmt == "tflite" else parse_executor_runner(output, runs)
    note = None
    if fmt == "executorch":
        note = ("executor_runner runs `forward` only: a packed .pte's `init` (which fills the weights) is not run, "
                "which leaves its speed unchanged but its outputs meaningless")
    return {"device": serial, "runner": binary.name, "measured": True, **parsed, "note": note}
