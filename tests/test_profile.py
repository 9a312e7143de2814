"""`its-mobile profile`: host numbers from the real runtimes, the HTML report, the adb commands
and the parsing of the on-device benchmark tools' output, and bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from its_mobile.errors import BadInput
from its_mobile.profile.device import attached, commands, parse_benchmark_model, parse_executor_runner
from its_mobile.profile.report import pareto_front
from tests.test_cli import cli

DATA = Path(__file__).parent / "data"


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_host_profile_of_every_format(exported, tmp_path):
    page = tmp_path / "profile.html"
    r = cli("profile", *[str(exported / f"its-large-packed{ext}") for ext in (".pte", ".tflite", ".mlpackage")],
            "--runs", "5", "--json", "--html", str(page))
    assert r.returncode == 0, r.stderr[-2000:]
    report = last_json(r.stdout)
    assert all(report[k] > 0 for k in ("p50_ms", "p90_ms", "load_ms", "peak_rss_mb"))
    arts = {a["format"]: a for a in report["artifacts"]}
    pte, tfl, ml = arts["executorch"], arts["tflite"], arts["coreml"]
    for a in (pte, tfl):
        assert a["measured"] and a["runs"] == 5 and a["p50_ms"] <= a["p90_ms"] <= a["p99_ms"]
    assert pte["operators"] and any("Deconvolution" in o["op"] or "DELEGATE" in o["op"] for o in pte["operators"])
    size = tfl["size"]
    assert size["ternary"] > 0 and size["ternary"] + size["high_precision"] + size["overhead"] == size["total"]
    if sys.platform != "darwin":
        assert not ml["measured"] and "macOS" in ml["reason"]
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 2 and "--eval-data" in html


def test_profile_a_bundle(tmp_path):
    out = tmp_path / "b"
    assert cli("build", "--target", "android", "-o", str(out)).returncode == 0
    r = cli("profile", "--bundle", str(out), "--runs", "3", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    (a,) = last_json(r.stdout)["artifacts"]
    assert a["format"] == "tflite" and a["measured"]


def test_device_commands_and_recorded_outputs():
    """Parsing is checked on output in the formats LiteRT's benchmark_model and ExecuTorch's
    executor_runner print (as their documentation shows); no device is attached here."""
    tfl = parse_benchmark_model((DATA / "benchmark_model.txt").read_text())
    assert tfl == pytest.approx({"load_ms": 31.874, "first_ms": 61.234, "mean_ms": 44.1876, "runs": 23, "min_ms": 43.511,
                                 "p50_ms": 44.003, "p95_ms": 46.119, "peak_memory_mb": 27.5039})
    et = parse_executor_runner((DATA / "executor_runner.txt").read_text(), runs=3)
    assert et == {"mean_ms": pytest.approx(155.98 / 3), "runs": 3, "p50_ms": 51.57, "min_ms": 51.30, "load_ms": 112.95}
    assert attached((DATA / "adb_devices.txt").read_text()) == ["emulator-5554", "192.168.1.20:5555"]
    cmds = commands("adb", "emulator-5554", "tflite", Path("/x/m.tflite"), Path("/y/benchmark_model"), 20, 2)
    assert cmds[1] == ["adb", "-s", "emulator-5554", "push", "/x/m.tflite", "/data/local/tmp/its-mobile/m.tflite"]
    assert cmds[-1][4:7] == ["/data/local/tmp/its-mobile/benchmark_model", "--graph=/data/local/tmp/its-mobile/m.tflite",
                             "--num_threads=2"]
    with pytest.raises(BadInput, match="no 'Inference timings'"):
        parse_benchmark_model("ERROR: Could not open '/data/local/tmp/its-mobile/m.tflite'.\nAborted\n")
    with pytest.raises(BadInput, match="did not report a successful execution"):
        parse_executor_runner("E executorch:method.cpp:1210] Execution failed with status 0x20\n", runs=3)


def test_pareto_front():
    tiers = [{"name": "large", "packed_bytes": 750, "exact": 0.2}, {"name": "base", "packed_bytes": 680, "exact": 0.1},
             {"name": "small", "packed_bytes": 580, "exact": 0.15}]
    assert [t["name"] for t in pareto_front(tiers)] == ["large", "small"]


@pytest.mark.parametrize("args, message", [
    (["missing.pte"], "artifact not found"),
    (["--runs", "0", "x.pte"], "--runs, --threads and --eval-n must be at least 1"),
    ([], "give one or more ARTIFACT"),
    (["--bundle", "nowhere"], "has no readable build-report.json"),
])
def test_bad_input(args, message, tmp_path):
    r = cli("profile", *args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_foreign_artifact_and_missing_adb(tmp_path):
    fake = tmp_path / "fake.pte"
    fake.write_bytes(b"not a program" * 10)
    r = cli("profile", str(fake), "--runs", "1")
    assert r.returncode == 2 and "cannot be loaded" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = cli("profile", str(fake), "--adb", "emulator-5554", env_path="/nonexistent")
    assert r.returncode == 2 and "adb is not on PATH" in r.stderr
