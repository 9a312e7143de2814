"""Export to each backend with packed weights, and the parity gate in the real runtimes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conversion import FORMATS
from its_mobile.host import describe
from its_mobile.model.vocoder import fourier_basis


def cli(*args):
    return subprocess.run([sys.executable, "-m", "its_mobile", *args], capture_output=True, text=True)


def test_export_report(exported):
    report = json.loads((exported / "export-report.json").read_text())
    arts = {(a["format"], a["weights"]): a for a in report["artifacts"]}
    assert set(arts) == {(f, w) for f in FORMATS for w in ("packed", "dense")}
    for (fmt, weights), a in arts.items():
        assert (exported / a["path"]).exists() and a["bytes"] > 0 and a["tier"] == "large"
        assert a["ternary_weights"] > 0
    for fmt in FORMATS:  # packing must survive conversion: far fewer bytes than the dense twin
        assert arts[(fmt, "packed")]["bits_per_ternary_weight"] < arts[(fmt, "dense")]["bits_per_ternary_weight"] / 4
    assert not list(exported.glob(".tmp-*"))
    assert report["machine"] == describe()  # sizes and timings read later say where they came from
    # The packed .pte computes the iSTFT basis and envelope in `init` (parity checks the
    # waveform they give): past its stored tensors (indices and the other float tensors) the
    # file has less left than that float32 basis alone would take.
    pte = arts[("executorch", "packed")]
    rest = pte["bytes"] - pte["index_bytes"] - pte["high_precision_bytes"]
    assert pte["computed_at_load"] == ["vocoder.basis", "vocoder.inv_env"] and 0 < rest < fourier_basis().numel() * 4
    # The packed checkpoint holds its output projections in int8 with a scale per row, and so
    # does every packed file (the .pte's init decodes them; the parity test checks the result).
    for fmt in FORMATS:
        assert "vocoder.head.weight" in arts[(fmt, "packed")]["int8_weights"], fmt
    tfl = arts[("tflite", "packed")]
    assert tfl["verify"]["match"] and tfl["verify"]["int8_tensors"] == len(tfl["int8_weights"])


def test_parity_gate(exported, tmp_path):
    r = cli("parity", str(exported), "--json", "--junit", str(tmp_path / "parity.xml"))
    last = json.loads(r.stdout.strip().splitlines()[-1])
    levels = {(a["format"], a["weights"]): (a["level"], a["passed"]) for a in last["artifacts"]}
    assert levels[("executorch", "packed")] == ("numeric", True) and levels[("tflite", "packed")] == ("numeric", True)
    assert last["passed"] and all(a["phoneme_agreement"] == 1.0 for a in last["artifacts"] if a["level"] == "numeric")
    report = json.loads((exported / "parity-report.json").read_text())
    status = {(a["format"], a["weights"]): a["status"] for a in report["artifacts"]}
    for fmt in ("executorch", "tflite"):
        assert status[(fmt, "packed")] == "pass" and status[(fmt, "dense")] == "pass", r.stdout
    coreml = [a for a in report["artifacts"] if a["format"] == "coreml"]
    for a in coreml:  # off macOS, by the NumPy MIL interpreter; on a Mac, by Core ML
        assert a["status"] == "pass" and a["phoneme_agreement"] == 1.0, a
        assert a["level"] == ("numeric" if sys.platform == "darwin" else "interpreted")
        assert a["static_check"]["ok"], a["static_check"]
        if a["weights"] == "packed":  # int8 codes and values are the checkpoint's
            assert a["static_check"]["int8_weights_matched"] == a["static_check"]["int8_weights"] > 0
    assert r.returncode == 0 and report["passed"] and report["machine"] == describe()
    suite = ET.parse(tmp_path / "parity.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert suite.get("tests") == str(len(report["artifacts"])) == str(len(cases)) and suite.get("failures") == "0"
    assert not list(suite.iter("skipped"))  # every artifact ran, in its runtime or interpreted


def test_parity_fails_on_other_weights(exported, tiny_run, tmp_path):
    """The gate can fail: the same artifacts checked against a different model."""
    other = tmp_path / "other"
    other.mkdir()
    report = json.loads((exported / "export-report.json").read_text())
    report["artifacts"] = [a for a in report["artifacts"] if a["format"] in ("executorch", "coreml")]
    for a in report["artifacts"]:
        if a["format"] == "coreml":  # a package is a directory
            shutil.copytree(exported / a["path"], other / a["path"])
        else:
            shutil.copy(exported / a["path"], other / a["path"])
    report["checkpoint"] = str(tiny_run["student"])  # float weights, not the packed model's
    (other / "export-report.json").write_text(json.dumps(report))
    r = cli("parity", str(other), "--junit", str(tmp_path / "parity.xml"))
    assert r.returncode == 1, r.stdout
    assert r.stdout.count("fail") == 4, r.stdout  # Core ML's too, off macOS in the MIL interpreter
    suite = ET.parse(tmp_path / "parity.xml").getroot()
    assert suite.get("failures") == "4" and len(list(suite.iter("failure"))) == 4


def test_parity_falls_back_to_the_static_check_when_the_interpreter_lacks_an_op(exported, monkeypatch, tmp_path):
    """Core ML off macOS, with a model using an op the NumPy interpreter does not know: the
    artifact is not run, and passes or fails on its static check alone (a skipped JUnit case)."""
    if sys.platform == "darwin":
        pytest.skip("Core ML runs here: the interpreter is not used")
    from conversion import mil_numpy
    from its_mobile.parity import parity, write_junit

    monkeypatch.delitem(mil_numpy.OPS, "gelu")
    name = next(a["path"] for a in json.loads((exported / "export-report.json").read_text())["artifacts"]
                if a["format"] == "coreml" and a["weights"] == "packed")
    shutil.copy(exported / "export-report.json", tmp_path)
    shutil.copytree(exported / name, tmp_path / name)
    report = parity(tmp_path / name)
    (a,) = report["artifacts"]
    assert (a["status"], a["level"], a["passed"]) == ("not-run", "structural", True) and "gelu" in a["reason"]
    write_junit(report, tmp_path / "parity.xml")
    (skipped,) = ET.parse(tmp_path / "parity.xml").getroot().iter("skipped")
    assert "structural check passed" in skipped.get("message")


def test_parity_of_one_artifact(exported):
    packed = next(exported.glob("*-packed.tflite"))
    r = cli("parity", str(packed), "--json")
    assert r.returncode == 0, r.stderr
    assert [a["path"] for a in json.loads(r.stdout.strip().splitlines()[-1])["artifacts"]] == [packed.name]


def test_parity_corrupted_artifact(exported, tmp_path):
    report = json.loads((exported / "export-report.json").read_text())
    report["artifacts"] = [a for a in report["artifacts"] if a["format"] == "tflite" and a["weights"] == "packed"]
    data = (exported / report["artifacts"][0]["path"]).read_bytes()
    (tmp_path / report["artifacts"][0]["path"]).write_bytes(data[: len(data) // 3])
    (tmp_path / "export-report.json").write_text(json.dumps(report))
    r = cli("parity", str(tmp_path))
    assert r.returncode == 2 and "cannot be run" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_export_bad_input(tmp_path, tiny_packed):
    r = cli("export", "--checkpoint", str(tiny_packed), "--tier", "huge", "-o", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown tier" in r.stderr
    r = cli("parity", str(tmp_path))
    assert r.returncode == 2 and "export-report.json" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "file").write_text("x")
    r = cli("export", "--format", "tflite", "-o", str(tmp_path / "file"))
    assert r.returncode == 2 and "not a directory" in r.stderr


def test_parity_on_held_out_images(exported):
    packed = next(exported.glob("*-packed.pte"))
    r = cli("parity", str(packed), "--n", "20", "--json")
    assert r.returncode == 0, r.stderr
    (art,) = json.loads(r.stdout.strip().splitlines()[-1])["artifacts"]
    assert art["passed"] and art["phoneme_agreement"] == 1.0
    report = json.loads((exported / "parity-report.json").read_text())
    assert report["images"] == 20 and report["source"] == "20 held-out" and len(set(report["shown"])) == 20


def test_parity_on_a_folder_of_images(exported, tmp_path):
    from PIL import Image

    from its_mobile.parity import parity_images

    words, images = parity_images()
    words, images = words[::2][:3], images[::2][:3]  # clean renders of three words
    for w, img in zip(words, images):
        Image.fromarray(img[0].astype("uint8")).save(tmp_path / f"{w}.png")
    packed = next(exported.glob("*-packed.tflite"))
    r = cli("parity", str(packed), "--images", str(tmp_path))
    assert r.returncode == 0, r.stderr
    report = json.loads((exported / "parity-report.json").read_text())
    assert report["shown"] == sorted(f"{w}.png" for w in words) and report["artifacts"][0]["status"] == "pass"
    (tmp_path / "notes.txt").write_text("not an image")
    r = cli("parity", str(packed), "--images", str(tmp_path))
    assert r.returncode == 2 and "notes.txt" in r.stderr and "Traceback" not in r.stderr
    r = cli("parity", str(packed), "--images", str(tmp_path), "--n", "3")
    assert r.returncode == 2 and "not both" in r.stderr
