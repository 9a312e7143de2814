"""`its-mobile doctor` and the version guard: what this machine has, what differs from the pins,
and what each missing piece disables."""

from __future__ import annotations

import platform
import re
import shutil
import sys
from importlib import metadata

# The conversion stack: a different version can change what an export writes or how it runs.
GUARDED = ("torch", "executorch", "coremltools", "litert-torch")

_warned = False


def pins() -> dict[str, str]:
    """name -> pinned version, from the installed package's own requirements."""
    out = {}
    try:
        requires = metadata.requires("its-mobile") or []
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed: no pins to hold to
        return out
    for req in requires:
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)\s*(;.*)?$", req)
        if m and "extra" not in (m.group(3) or ""):
            out[m.group(1).lower()] = m.group(2)
    return out


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _same(have: str | None, pinned: str) -> bool:
    # torch reports a local build tag (2.13.0+cpu) that the pin leaves out.
    return have is not None and have.split("+")[0] == pinned


def version_mismatches() -> list[str]:
    """'name: installed X, pinned Y' for each guarded package that differs from its pin."""
    p = pins()
    return [f"{name} {installed(name) or 'missing'} (pinned {p[name]})"
            for name in GUARDED if name in p and not _same(installed(name), p[name])]


def warn_once(echo) -> None:
    """Tell the user, once per process, when the conversion stack is not the pinned one."""
    global _warned
    if _warned:
        return
    _warned = True
    mismatched = version_mismatches()
    if mismatched:
        echo(f"its-mobile: warning: not the tested versions: {', '.join(mismatched)}; exports and parity may differ")


def _espeak() -> tuple[bool, str]:
    try:
        from its_mobile.data import espeak

        return True, f"phonemizes 'reading' as /{''.join(espeak.phonemize('reading'))}/"
    except Exception as e:  # a missing library or data raises several kinds
        return False, f"{type(e).__name__}: {e}"


def _fonts() -> tuple[bool, str]:
    try:
        from its_mobile.data.render import find_fonts

        train, evaluation = find_fonts()
    except Exception as e:  # no fonts at all
        return False, str(e)
    same = set(train) == set(evaluation)
    return not same, f"{len(train)} training and {len(evaluation)} evaluation fonts" + (
        " (one family only: training and evaluation share it)" if same else "")


def _cuda() -> tuple[bool, str]:
    import torch

    if torch.cuda.is_available():
        return True, f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}"
    return False, "no CUDA GPU visible to torch"


def _which(name: str) -> tuple[bool, str]:
    path = shutil.which(name)
    return path is not None, path or "not on PATH"


def report() -> dict:
    """Everything `doctor` checks: versions against pins, and each optional piece with what it enables."""
    p = pins()
    packages = [{"name": name, "pinned": want, "installed": installed(name), "ok": _same(installed(name), want)}
                for name, want in sorted(p.items())]
    pieces = [
        ("espeak-ng", _espeak(), "`data` (phonemes, durations, speech targets), `eval`'s ASR reference"),
        ("fonts", _fonts(), "`data` with held-out evaluation fonts (install the README's font packages)"),
        ("macOS (Core ML runtime)", (sys.platform == "darwin", platform.platform()),
         "numeric Core ML parity and Xcode builds of the iOS app (elsewhere a NumPy interpreter runs the package's MIL program)"),
        ("CUDA", _cuda(), "`train --device cuda` (bfloat16, NCCL under torchrun)"),
        ("adb", _which("adb"), "profiling on an Android emulator or phone"),
        ("executor_runner", _which("executor_runner"), "ExecuTorch profiling over adb"),
        ("benchmark_model", _which("benchmark_model"), "LiteRT profiling over adb"),
    ]
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": packages,
            "pieces": [{"name": n, "ok": ok, "detail": detail, "enables": enables} for n, (ok, detail), enables in pieces]}


def format_report(r: dict) -> str:
    lines = [f"Python {r['python']} on {r['platform']}", "", f"{'package':22} {'pinned':>12} {'installed':>14}"]
    for pkg in r["packages"]:
        mark = "" if pkg["ok"] else "   <- differs from the pin"
        lines.append(f"{pkg['name']:22} {pkg['pinned']:>12} {pkg['installed'] or 'missing':>14}{mark}")
    lines += [""]
    for piece in r["pieces"]:
        lines.append(f"[{'ok' if piece['ok'] else '--'}] {piece['name']}: {piece['detail']}")
        if not piece["ok"]:
            lines.append(f"     without it: no {piece['enables']}")
    return "\n".join(lines)
