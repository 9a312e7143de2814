"""What a result was measured on: the CPU, its cores, Python and the versions that set the numbers.

Reports that hold timings or accuracies record it, so that a number read later, perhaps on
another host, says where it came from.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

VERSIONED = ("torch", "numpy", "espeakng-loader", "pocketsphinx")


def cpu() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one) and its core count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def describe() -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in VERSIONED)
    return f"{cpu()}, Python {platform.python_version()}; {versions}"
