"""`its-mobile build`: bundles of the embedded default, reproducible to the byte, whose manifest
matches the artifact as its runtime reads it, gated on parity, and safe on bad input."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conversion import SETTINGS, backend
from its_mobile.bundle.archive import ZIP_TIME
from its_mobile.bundle.build import ASSETS, ParityFailed, Request, build
from its_mobile.export import artifact_sha256
from tests.test_cli import cli


def digest(root: Path) -> dict[str, str]:
    return {f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> tuple[Path, Path]:
    """The embedded default built for both phones twice, into different folders."""
    first, second = tmp_path_factory.mktemp("build1"), tmp_path_factory.mktemp("build2")
    for out in (first, second):
        r = cli("build", "--target", "all", "-o", str(out))
        assert r.returncode == 0, r.stderr[-2000:]
    return first, second


def test_builds_are_byte_identical(bundles):
    first, second = bundles
    for target in ("android", "ios"):
        assert (first / f"{target}.zip").read_bytes() == (second / f"{target}.zip").read_bytes(), target
        assert digest(first / target) == digest(second / target), target


def test_zip_is_the_project_with_fixed_metadata(bundles):
    out = bundles[0]
    for target in ("android", "ios"):
        with zipfile.ZipFile(out / f"{target}.zip") as z:
            names = z.namelist()
            assert names == sorted(names) and all(n.startswith(f"{target}/") for n in names)
            assert all(i.date_time == ZIP_TIME for i in z.infolist())
            assert {n.removeprefix(f"{target}/"): hashlib.sha256(z.read(n)).hexdigest() for n in names} == \
                digest(out / target)
            for n in names:  # no path of the build machine inside any file
                assert str(out).encode() not in z.read(n) and str(Path.home()).encode() + b"/" not in z.read(n), n
    assert not list(out.glob(".build-*")) and not list(out.glob(".old-*"))


def test_report_records_parity_checks_and_limits(bundles):
    report = json.loads((bundles[0] / "build-report.json").read_text())
    targets = {t["target"]: t for t in report["targets"]}
    android, ios = targets["android"], targets["ios"]
    assert android["runtime"] == "litert" and android["parity"]["level"] == "numeric" and android["parity"]["passed"]
    assert android["parity"]["phoneme_agreement"] == 1.0 and android["host_latency"]["measured"]
    assert ios["runtime"] == "coreml" and ios["parity"]["passed"]
    if sys.platform != "darwin":
        assert ios["parity"]["level"] == "interpreted" and ios["parity"]["phoneme_agreement"] == 1.0
        assert not ios["host_latency"]["measured"]
    for t in targets.values():
        assert all(c["passed"] for c in t["checks"]) and len(t["checks"]) >= 8
        assert t["not_checked"] and not t["parity_bypassed"]
        # Ternary weights stay 2-bit in the app's model (int8 would be >= 8): the rest of the
        # bits per ternary weight is the graph and metadata, which the speaker's ops grew to 2.50.
        assert t["zip_bytes"] <= 3_000_000 and t["bits_per_ternary_weight"] < 2.6
    assert {t["name"] for t in report["tiers"]} >= {"large", "base", "small"}
    page = (bundles[0] / "build-report.html").read_text()
    assert "Not checked here" in page and android["zip_sha256"] in page


@pytest.mark.parametrize("target", ["android", "ios"])
def test_manifest_matches_the_artifact(bundles, target):
    """Names, shapes and dtypes in the manifest are those the runtime reads from the file, and
    (where the runtime runs here) those of the outputs it really returns."""
    assets = bundles[0] / target / ASSETS[target]
    manifest = json.loads((assets / "its-model.json").read_text())
    artifact = assets / manifest["model_file"]
    fmt = manifest["format"]
    io = backend(fmt).interface(artifact)
    assert io["inputs"] == [{"name": manifest["input_name"], "shape": manifest["input_shape"],
                             "dtype": manifest["input_dtype"]}]
    assert io["outputs"] == manifest["outputs"]
    assert manifest["output_names"] == ["waveform", "n_samples", "phonemes", "n_phonemes", "mel", "n_frames"]
    assert artifact_sha256(artifact) == manifest["model_sha256"]
    if fmt == "coreml" and sys.platform != "darwin":
        return
    pixels = np.full(manifest["input_shape"], 255, np.float32)
    outputs = backend(fmt).runner(artifact, SETTINGS[fmt])(pixels)
    got = [{"name": n, "shape": list(o.shape), "dtype": o.dtype.name} for n, o in zip(manifest["output_names"], outputs)]
    assert got == manifest["outputs"]


def test_android_executorch_carries_a_program_the_java_api_can_run(tmp_path):
    """The Java Module cannot share arenas between methods, so the .pte is the one-method dense twin."""
    r = cli("build", "--target", "android", "--runtime", "executorch", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    (t,) = json.loads((tmp_path / "build-report.json").read_text())["targets"]
    manifest = t["manifest"]
    assert t["weights"] == "dense" and manifest["init_method"] is None and t["parity"]["passed"]
    pte = tmp_path / "android" / ASSETS["android"] / manifest["model_file"]
    assert [o["dtype"] for o in backend("executorch").interface(pte)["outputs"]] == \
        [o["dtype"] for o in manifest["outputs"]]
    sources = "".join(p.read_text() for p in (tmp_path / "android").rglob("*.kt"))
    assert "ExecutorchModel" in sources and "LiteRtModel" not in sources


def test_parity_failure_is_refused_unless_allowed(tmp_path, monkeypatch):
    """With tolerances no artifact can meet, the gate refuses and the bundle in place survives;
    --allow-parity-failure bundles it and says so."""
    out = tmp_path / "out"
    build(Request(("android",), out))
    before = digest(out)
    monkeypatch.setitem(SETTINGS["tflite"], "mel_atol", -1.0)
    with pytest.raises(ParityFailed):
        build(Request(("android",), out))
    assert digest(out) == before and not list(out.glob(".build-*"))
    report = build(Request(("android",), out, allow_parity_failure=True))
    (t,) = report["targets"]
    assert t["parity_bypassed"] and report["allow_parity_failure"]
    assert "allow-parity-failure" in (out / "build-report.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--tier", "huge"], "unknown tier"),
    (["--target", "ios", "--runtime", "litert"], "ios apps run coreml"),
    (["--target", "all", "--runtime", "litert"], "--runtime applies to one target"),
    (["--checkpoint", "missing.safetensors"], "missing.safetensors"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    r = cli("build", *args, "-o", str(out))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_output_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "file"
    out.write_text("keep me")
    r = cli("build", "-o", str(out))
    assert r.returncode == 2 and "not a directory" in r.stderr and out.read_text() == "keep me"


def test_folder_of_other_things_and_unwritable_places_are_refused(tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    r = cli("build", "-o", str(other))
    assert r.returncode == 2 and "not a previous bundle" in r.stderr and "--force" in r.stderr
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    r = cli("build", "-o", "/proc/its-mobile-bundle")  # not writable, even for root
    assert r.returncode == 2 and "cannot write to /proc/its-mobile-bundle" in r.stderr and "Traceback" not in r.stderr
