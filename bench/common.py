"""What every benchmark records beside its numbers: the machine and the versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("torch", "numpy", "espeakng-loader", "pocketsphinx"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}; commit {commit}"
