"""Backends: ExecuTorch, Core ML and TFLite. Settings in backends.toml, code in <name>.py,
each module offering `export(model, example, path, ternary, settings)`,
`runner(path, settings)` (load once, then run on pixels) and `interface(path)` (the input and
output tensors as the runtime sees them)."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from types import ModuleType

FORMATS = ("executorch", "coreml", "tflite")
SETTINGS: dict[str, dict] = tomllib.loads((Path(__file__).parent / "backends.toml").read_text())


class RuntimeUnavailable(Exception):
    """The backend's runtime cannot run on this machine (e.g. Core ML off macOS)."""


def backend(name: str) -> ModuleType:
    return importlib.import_module(f"conversion.{name}")
