"""Hardening: builds killed at several points, concurrent builds, the version guard, doctor,
and training that is the same bytes for the same seed."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from its_mobile import checkpoint, doctor
from its_mobile.bundle.build import _recover
from its_mobile.data.dataset import load
from its_mobile.train.loop import run_stage
from its_mobile.train.presets import PRESETS
from tests.test_cli import cli

BUILD = [sys.executable, "-m", "its_mobile", "build", "--target", "android"]


def visible(out: Path) -> dict[str, str]:
    """What a user sees in OUT: every file outside the hidden lock and staging entries."""
    return {f.relative_to(out).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(out.rglob("*")) if f.is_file() and not f.relative_to(out).parts[0].startswith(".")}


def bundle(files: dict[str, str]) -> dict[str, str]:
    """The bundle without its reports (which carry timings)."""
    return {k: v for k, v in files.items() if not k.startswith("build-report.")}


def test_killed_builds_leave_the_previous_bundle(tmp_path):
    out = tmp_path / "out"
    t = time.perf_counter()
    assert cli("build", "--target", "android", "-o", str(out)).returncode == 0
    took = time.perf_counter() - t
    before, interrupted = visible(out), set()
    # Export, parity, project and zip stages, as shares of how long a build takes on this
    # machine; SIGINT and SIGTERM run the clean-up, SIGKILL cannot (the next build does it).
    for sig, share in ((signal.SIGKILL, 0.12), (signal.SIGINT, 0.35), (signal.SIGKILL, 0.65), (signal.SIGTERM, 0.85)):
        # A shell's background job inherits SIGINT ignored; a user's Ctrl-C reaches a foreground one.
        p = subprocess.Popen([*BUILD, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(share * took)
        p.send_signal(sig)
        _, err = p.communicate()
        assert "Traceback" not in err, err[-2000:]
        if visible(out) != before:  # it got past "move into place": a whole new bundle, the same bytes but the reports
            assert bundle(visible(out)) == bundle(before), (sig, share)
            before = visible(out)
            continue
        interrupted.add(sig)
        if sig != signal.SIGKILL:  # interrupted before it finished: cleaned up
            assert p.returncode == 130 and "interrupted" in err and not list(out.glob(".build-*")), (sig, err[-2000:])
    assert signal.SIGKILL in interrupted and {signal.SIGINT, signal.SIGTERM} & interrupted, interrupted
    assert cli("build", "--target", "android", "-o", str(out)).returncode == 0
    assert bundle(visible(out)) == bundle(before)  # the same inputs: the same bytes
    assert not list(out.glob(".build-*")) and not list(out.glob(".old-*"))


def test_recover_puts_back_a_bundle_renamed_aside(tmp_path):
    (tmp_path / ".old-android-4242").mkdir()
    (tmp_path / ".old-android-4242" / "README.md").write_text("previous")
    (tmp_path / ".build-abc").mkdir()
    _recover(tmp_path)
    assert (tmp_path / "android" / "README.md").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["android"]


def test_concurrent_builds(tmp_path):
    """Two builds into one folder: one holds the lock, the other stops cleanly (exit 75).
    Two into different folders: both finish."""
    same = [subprocess.Popen([*BUILD, "-o", str(tmp_path / "same")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = sorted((p.wait(), p.stderr.read()) for p in same)
    assert [code for code, _ in results] == [0, 75], results[-1][1][-2000:]
    assert "another its-mobile build is writing to" in results[1][1]
    apart = [subprocess.Popen([*BUILD, "-o", str(tmp_path / name)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for name in ("a", "b")]
    assert [p.wait() for p in apart] == [0, 0]
    assert bundle(visible(tmp_path / "a")) == bundle(visible(tmp_path / "b")) == bundle(visible(tmp_path / "same"))


def test_version_guard_names_exact_versions_once(monkeypatch):
    real = doctor.installed
    monkeypatch.setattr(doctor, "installed", lambda name: "9.9.9" if name == "executorch" else real(name))
    assert doctor.version_mismatches() == [f"executorch 9.9.9 (pinned {doctor.pins()['executorch']})"]
    monkeypatch.setattr(doctor, "_warned", False)
    lines: list[str] = []
    doctor.warn_once(lines.append)
    doctor.warn_once(lines.append)
    assert len(lines) == 1 and "executorch 9.9.9 (pinned 1.5.1)" in lines[0]


def test_no_version_guard_from_a_source_tree_never_installed(monkeypatch):
    def not_installed(name):
        raise doctor.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(doctor.metadata, "requires", not_installed)
    assert doctor.pins() == {} and doctor.version_mismatches() == []


def test_doctor_reports_the_environment():
    r = cli("doctor", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    packages = {p["name"]: p for p in report["packages"]}
    assert packages["torch"]["ok"] and packages["executorch"]["installed"] == "1.5.1"
    pieces = {p["name"]: p for p in report["pieces"]}
    assert pieces["espeak-ng"]["ok"] and set(pieces) >= {"fonts", "adb", "CUDA", "macOS (Core ML runtime)"}
    assert all(p["enables"] for p in pieces.values())
    assert "not the tested versions" not in r.stderr  # this environment is the pinned one


def test_same_seed_same_weights(tiny_data, tmp_path):
    data = load(tiny_data)
    for run in ("a", "b"):
        run_stage("acoustic", data, PRESETS["tiny"], tmp_path / run, seed=5, steps=4, progress=False)
    a, _ = checkpoint.load(tmp_path / "a" / "acoustic.safetensors")
    b, _ = checkpoint.load(tmp_path / "b" / "acoustic.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_swallowed_interrupt_prints_no_traceback():
    """An interrupt raised inside a gc callback (as in jax's, mid-export) is only "ignored" by
    Python; the CLI raises it again later, and stderr must not show a traceback meanwhile."""
    code = ("import gc, sys, signal\n"
            "from its_mobile import cli\n"
            "sys.unraisablehook = cli._quiet_swallowed_interrupt\n"
            "def hook(phase, info):\n"
            "    if phase == 'start':\n"
            "        cli._interrupt(signal.SIGINT, None)\n"
            "gc.callbacks.append(hook)\n"
            "gc.collect()\n"
            "gc.callbacks.clear()\n"
            "print('swallowed', len(cli._SIGNALLED))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "swallowed 1" in r.stdout, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
