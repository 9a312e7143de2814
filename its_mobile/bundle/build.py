"""`its-mobile build`: export the model for a phone, gate it on parity, and write a sample app
project around it, as a folder and a reproducible zip, with build-report.json and .html.

Per target: export -> parity -> manifest (from the artifact's real interface) -> host latency
-> render and check the app template -> write. Everything is made in a hidden folder inside
OUT and moved into place only at the end, so a failed or interrupted build leaves the previous
bundle as it was.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from its_mobile import __version__, checkpoint
from its_mobile.bundle.archive import tree_files, write_tree, write_zip
from its_mobile.bundle.manifest import MANIFEST_FILE, make_manifest, manifest_problems
from its_mobile.bundle.templates import RUNTIMES, check_project, render_project
from its_mobile.errors import BadInput, ItsError
from its_mobile.host import cpu

REPORT_JSON = "build-report.json"
REPORT_HTML = "build-report.html"
DEFAULT_RUNTIME = {"android": "litert", "ios": "coreml"}
FORMAT = {"litert": "tflite", "executorch": "executorch", "coreml": "coreml"}
ASSETS = {"android": "app/src/main/assets", "ios": "ITSApp/Resources"}
APP = {"app_name": "ITS Reader", "application_id": "org.itsmobile.reader"}
LATENCY_RUNS = 20

# ExecuTorch's Android Module (org.pytorch.executorch.Module, 1.5.1) cannot share memory arenas
# between methods, which the packed .pte needs (its `init` fills buffers that `forward` reads),
# so an Android ExecuTorch app carries the dense twin.
WEIGHTS = {("android", "executorch"): ("dense", "the ExecuTorch Android API cannot share memory arenas between "
                                                 "methods, which the packed .pte's init-then-forward needs")}

NOT_CHECKED = {
    "android": ["Gradle build and APK: no Android SDK or Maven repository can be reached from this machine "
                "(run the bundle's README commands or .github/workflows/android.yml)",
                "the app on an emulator or phone: none is attached (scripts/smoke_test.sh does it)"],
    "ios": ["Xcode build: needs macOS (run the bundle's README commands or .github/workflows/ios.yml)",
            "Core ML prediction: needs macOS; parity here ran the package's MIL program in a NumPy interpreter "
            "(conversion/mil_numpy.py), which checks the conversion and the packed weights, not Core ML's kernels"],
}


@dataclass(frozen=True)
class Request:
    """What to build: the command line of `its-mobile build`."""

    targets: tuple[str, ...]
    out: Path
    checkpoint: Path | None = None  # None: the embedded default
    tier: str | None = None  # None: the checkpoint's largest
    runtime: str | None = None  # None: DEFAULT_RUNTIME of each target
    allow_parity_failure: bool = False
    force: bool = False  # write into a folder that is not a previous bundle

    @property
    def source(self) -> Path:
        return checkpoint.DEFAULT if self.checkpoint is None else Path(self.checkpoint)

    def runtime_of(self, target: str) -> str:
        return self.runtime or DEFAULT_RUNTIME[target]


class ParityFailed(ItsError):
    """An artifact's outputs differ from PyTorch's beyond its tolerances (exit 1)."""


class OutputBusy(ItsError):
    """Another build holds OUT's lock (exit 75, EX_TEMPFAIL: try again later)."""

    return_code = 75


LOCK = ".its-mobile-build.lock"


def _lock(out: Path):
    """Take OUT's build lock and return its handle (close it to release; the OS releases it
    when the process ends, even killed)."""
    handle = open(out / LOCK, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise OutputBusy(f"another its-mobile build is writing to {out}; wait for it or choose another -o") from None
    return handle


def _recover(out: Path) -> None:
    """Undo what a killed build left: a bundle renamed aside but not replaced goes back, and
    unfinished staging folders go."""
    for old in out.glob(".old-*"):
        final = out / old.name.removeprefix(".old-").rsplit("-", 1)[0]
        if final.exists():
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(old, final)
    for stale in out.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def host_latency(fmt: str, path: Path, runs: int = LATENCY_RUNS) -> dict:
    """Median and p90 of `runs` calls in the artifact's runtime on this machine, after warm-up,
    or why it could not run here."""
    from conversion import SETTINGS, RuntimeUnavailable, backend
    from its_mobile.parity import parity_images
    from its_mobile.profile.host import timed

    try:
        run = backend(fmt).runner(path, SETTINGS[fmt])
    except RuntimeUnavailable as e:
        return {"measured": False, "reason": str(e)}
    times = timed(run, parity_images()[1][:1], runs)
    return {"measured": True, "runs": runs, "p50_ms": round(float(np.percentile(times, 50)), 2),
            "p90_ms": round(float(np.percentile(times, 90)), 2)}


def build_target(request: Request, target: str, info: dict, stage: Path,
                 step: Callable[[str], None]) -> tuple[dict, dict[str, bytes]]:
    """(report section, project files) of one target; `info` is the checkpoint's (with its
    tier); the export lives in `stage`."""
    from conversion import backend
    from its_mobile.export import export
    from its_mobile.parity import parity

    runtime = request.runtime_of(target)
    fmt = FORMAT[runtime]
    weights, why = WEIGHTS.get((target, runtime), ("packed", "ternary weights kept packed"))
    export_dir = stage / f"export-{target}"
    step(f"{target}: export {fmt} ({weights})")
    exported = export([fmt], export_dir, request.checkpoint, request.tier, (weights,))
    (entry,) = exported["artifacts"]
    artifact = export_dir / entry["path"]

    step(f"{target}: parity in the {fmt} runtime")
    (checked,) = parity(export_dir)["artifacts"]
    if not checked["passed"] and not request.allow_parity_failure:
        raise ParityFailed(f"{entry['path']} fails parity ({checked.get('level')}: see `its-mobile parity`); "
                           "not bundled (--allow-parity-failure bundles it anyway, and says so in the report)")

    step(f"{target}: manifest")
    io = backend(fmt).interface(artifact)
    manifest = make_manifest(fmt, runtime, entry["path"], info["tier"], io, entry.get("methods", []),
                             info["inventory"], entry["sha256"])
    problems = manifest_problems(manifest, io)
    if problems:
        raise ItsError(f"{target}: the manifest does not match {entry['path']}: {problems[0]}")

    step(f"{target}: host latency")
    latency = host_latency(fmt, artifact)

    step(f"{target}: app project")
    values = {**APP, "model_file": entry["path"], "manifest_file": MANIFEST_FILE, "its_mobile_version": __version__}
    files = render_project(target, runtime, values)
    files |= tree_files(artifact, f"{ASSETS[target]}/{entry['path']}")
    files[f"{ASSETS[target]}/{MANIFEST_FILE}"] = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
    files = dict(sorted(files.items()))
    checks = check_project(target, files, manifest)
    checks.insert(0, {"check": "manifest matches the artifact's interface", "passed": True,
                      "detail": f"{len(io['inputs'])} input, {len(io['outputs'])} outputs read from {entry['path']}"})
    failed = [c for c in checks if not c["passed"]]
    if failed:
        raise ItsError(f"{target} project fails the check {failed[0]['check']!r}: {failed[0]['detail']}")

    section = {
        "target": target, "runtime": runtime, "format": fmt, "weights": weights, "weights_reason": why,
        "model_file": entry["path"], "model_bytes": entry["bytes"], "model_sha256": entry["sha256"],
        "bits_per_ternary_weight": entry["bits_per_ternary_weight"], "scheme": entry["scheme"],
        "parity": {k: checked.get(k) for k in ("status", "level", "passed", "images", "phoneme_agreement",
                                                "max_rel_err", "min_waveform_snr_db", "reason")},
        "parity_bypassed": not checked["passed"],
        "host_latency": latency, "manifest": manifest, "checks": checks, "not_checked": NOT_CHECKED[target],
        "project": target, "zip": f"{target}.zip", "files": len(files),
    }
    return section, files


def build(request: Request, progress: Callable[[str], None] | None = None) -> dict:
    """Build every target into OUT/<target>/ and OUT/<target>.zip with OUT/build-report.json
    and .html; returns the report. One build at a time per OUT (a lock file); a build that
    was killed is cleaned up by the next."""
    for target in request.targets:
        chosen = request.runtime_of(target)
        if chosen not in RUNTIMES[target]:
            raise BadInput(f"--runtime {chosen}: {target} apps run {' or '.join(RUNTIMES[target])}")
    out = Path(request.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} exists and is not a directory")
    # A folder of other things is not overwritten by accident; hidden entries are a killed build's.
    if out.is_dir() and not request.force and not (out / REPORT_JSON).is_file() and \
            any(not p.name.startswith(".") for p in out.iterdir()):
        raise BadInput(f"{out} exists and is not a previous bundle (no {REPORT_JSON}); choose another -o or pass --force")
    _, info = checkpoint.load_model(request.checkpoint, request.tier)  # bad checkpoints and tiers fail before any work
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
    except OSError as e:
        raise BadInput(f"cannot write to {out}: {e.strerror or e}") from e
    try:
        _recover(out)
        return _build_locked(request, info, progress or (lambda _: None))
    finally:
        lock.close()


def _build_locked(request: Request, info: dict, step: Callable[[str], None]) -> dict:
    from its_mobile.bundle.report import write_html
    from its_mobile.compress.inspect import inspect_checkpoint

    out = Path(request.out)
    start = time.perf_counter()
    stage = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
    try:
        sections = []
        for target in request.targets:
            section, files = build_target(request, target, info, stage, step)
            step(f"{target}: write project and zip")
            write_tree(files, stage / target)
            write_zip(files, stage / f"{target}.zip", top=target)
            data = (stage / f"{target}.zip").read_bytes()
            section |= {"zip_bytes": len(data), "zip_sha256": _sha256(data)}
            sections.append(section)
        report = {
            "its_mobile_version": __version__,
            "checkpoint": "embedded default" if request.checkpoint is None else request.source.name,
            "checkpoint_sha256": _sha256(request.source.read_bytes()),
            "tier": info["tier"],
            "tiers": inspect_checkpoint(request.source)["tiers"],
            "allow_parity_failure": request.allow_parity_failure,
            "targets": sections,
            "machine": {"system": platform.system(), "machine": platform.machine(), "cpu": cpu(),
                        "python": platform.python_version()},
            "seconds": round(time.perf_counter() - start, 1),
        }
        (stage / REPORT_JSON).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        write_html(report, stage / REPORT_HTML)
        step("move into place")
        # Ctrl-C and SIGTERM wait until every piece is in place (then they stop the command):
        # one landing between two renames would leave a new project beside an old zip and report.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for s in sections:
                _replace(stage / s["project"], out / s["project"])
                _replace(stage / s["zip"], out / s["zip"])
            for name in (REPORT_JSON, REPORT_HTML):  # last: a report always describes bundles in place
                _replace(stage / name, out / name)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return report
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _replace(new: Path, final: Path) -> None:
    """Put `new` at `final`. A folder cannot be swapped atomically, so the old one is renamed
    aside first and removed only once the new one is in place."""
    if final.is_dir():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, old)
        os.replace(new, final)
        shutil.rmtree(old)
    else:
        os.replace(new, final)
