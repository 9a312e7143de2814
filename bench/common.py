"""What every benchmark records beside its numbers: the machine and the versions."""

from __future__ import annotations

import subprocess

from its_mobile.host import describe


def machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return f"{describe()}; commit {commit}"
