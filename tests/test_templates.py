"""The app templates render deterministically and pass their own static checks; no model needed."""

from __future__ import annotations

import pytest

from its_mobile.bundle.templates import check_project, render_project, required_values
from its_mobile.errors import BadInput

OUTPUTS = [
    ("waveform", [1, 16384], "float32"),
    ("n_samples", [1], "int64"),
    ("phonemes", [1, 20], "int64"),
    ("n_phonemes", [1], "int64"),
    ("mel", [1, 64, 64], "float32"),
    ("n_frames", [1], "int64"),
]
MANIFEST = {
    "schema_version": 1,
    "format": "executorch",
    "runtime": "executorch",
    "model_file": "its.pte",
    "tier": "ternary",
    "init_method": "init",
    "input_name": "pixels",
    "input_shape": [1, 1, 32, 128],
    "input_dtype": "float32",
    "image_height": 32,
    "image_width": 128,
    "pixel_min": 0,
    "pixel_max": 255,
    "outputs": [{"name": n, "shape": s, "dtype": d} for n, s, d in OUTPUTS],
    "output_names": [n for n, _, _ in OUTPUTS],
    "sample_rate": 16000,
    "max_samples": 16384,
    "max_phonemes": 20,
    "max_frames": 64,
    "phonemes": ["<pad>", "<eos>", "a", "b", "ʃ"],
    "pad_id": 0,
    "eos_id": 1,
    "model_sha256": "0" * 64,
}
VALUES = {
    "app_name": "ITS Reader",
    "application_id": "org.itsmobile.app",
    "model_file": "its.pte",
    "manifest_file": "its-model.json",
    "its_mobile_version": "0.1.0",
}
COMBOS = [("android", "executorch"), ("android", "litert"), ("ios", "coreml")]


@pytest.mark.parametrize(("target", "runtime"), COMBOS)
def test_render_passes_all_checks(target: str, runtime: str) -> None:
    files = render_project(target, runtime, VALUES)
    assert list(files) == sorted(files)
    failed = [c for c in check_project(target, files, MANIFEST) if not c["passed"]]
    assert not failed


@pytest.mark.parametrize(("target", "runtime"), COMBOS)
def test_render_is_deterministic(target: str, runtime: str) -> None:
    assert render_project(target, runtime, VALUES) == render_project(target, runtime, VALUES)


@pytest.mark.parametrize(("target", "runtime"), COMBOS)
def test_missing_value_names_file_and_placeholder(target: str, runtime: str) -> None:
    assert set(VALUES) >= required_values(target, runtime)
    values = {k: v for k, v in VALUES.items() if k != "application_id"}
    with pytest.raises(BadInput, match=r"\{\{application_id\}\}"):
        render_project(target, runtime, values)


def test_unknown_target_or_runtime() -> None:
    with pytest.raises(BadInput):
        render_project("android", "coreml", VALUES)
    with pytest.raises(BadInput):
        render_project("web", "coreml", VALUES)


def test_runtimes_exclude_each_other() -> None:
    executorch = render_project("android", "executorch", VALUES)
    litert = render_project("android", "litert", VALUES)
    assert any(p.endswith("ExecutorchModel.kt") for p in executorch)
    assert any(p.endswith("LiteRtModel.kt") for p in litert)
    assert not any("_runtime" in p for p in executorch | litert)
    assert not any(b"litert" in data for p, data in executorch.items() if p.endswith((".kt", ".toml")))
    assert not any(b"executorch" in data for p, data in litert.items() if p.endswith((".kt", ".toml")))


def _failed(target: str, files: dict[str, bytes], manifest: dict = MANIFEST) -> set[str]:
    return {c["check"] for c in check_project(target, files, manifest) if not c["passed"]}


def test_unknown_manifest_key_fails() -> None:
    files = render_project("android", "executorch", VALUES)
    path = next(p for p in files if p.endswith("ModelSpec.kt"))
    files[path] += b'\nval extra = manifest.getInt("no_such_key")\n'
    assert _failed("android", files) == {"manifest keys exist"}


def test_unknown_swift_key_and_output_fail() -> None:
    files = render_project("ios", "coreml", VALUES)
    path = next(p for p in files if p.endswith("ModelSpec.swift"))
    files[path] += b'\nlet extra = manifest["no_such_key"]\nlet x = try outputs.floats("no_such_output")\n'
    assert _failed("ios", files) == {"manifest keys exist", "output names exist"}


def test_hard_coded_number_and_leftover_fail() -> None:
    files = render_project("android", "litert", VALUES)
    path = next(p for p in files if p.endswith("MainActivity.kt"))
    files[path] += b"\nval height = 32\n// {{forgotten}}\n"
    assert _failed("android", files) == {"no hard-coded model numbers", "no placeholders left"}


def test_broken_files_fail() -> None:
    files = render_project("ios", "coreml", VALUES)
    files["ITSApp/Info.plist"] = files["ITSApp/Info.plist"].replace(b"</dict>\n</plist>", b"")
    pbxproj = "ITSApp.xcodeproj/project.pbxproj"
    files[pbxproj] = files[pbxproj].replace(b"rootObject = 1A", b"rootObject = 2A")
    assert _failed("ios", files) == {"plist parses", "pbxproj structure"}
