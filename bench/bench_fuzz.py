"""Many more fuzz cases than the test suite runs, per reader, plus the kill and concurrency
tests of `build`; writes bench/results/fuzz.json for RESULTS.md.

    python bench/bench_fuzz.py [--examples 500]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=500)
    args = ap.parse_args()
    env = {**os.environ, "ITS_FUZZ_EXAMPLES": str(args.examples)}
    fuzz = subprocess.run([sys.executable, "-m", "pytest", "tests/test_fuzz.py", "-p", "no:cacheprovider",
                           "--hypothesis-show-statistics", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    readers = {}
    for name, body in re.findall(r"tests/test_fuzz.py::(\w+):\n(.*?)(?=\ntests/|\Z)", fuzz.stdout, re.S):
        passing = sum(int(n) for n in re.findall(r"(\d+) passing", body))
        failing = sum(int(n) for n in re.findall(r"(\d+) failing", body))
        readers[name.removeprefix("test_")] = {"passing": passing, "failing": failing}
    hard = subprocess.run([sys.executable, "-m", "pytest", "tests/test_hardening.py", "-p", "no:cacheprovider", "-q",
                           "-k", "killed or concurrent or recover"], cwd=ROOT, capture_output=True, text=True)
    result = {"machine": machine(), "examples_per_test": args.examples, "fuzz_passed": fuzz.returncode == 0,
              "readers": readers, "kill_points": 4, "kill_signals": ["SIGKILL", "SIGINT", "SIGKILL", "SIGTERM"],
              "concurrent_builds": {"same folder": 2, "different folders": 2}, "hardening_passed": hard.returncode == 0,
              "hardening_summary": hard.stdout.strip().splitlines()[-1] if hard.stdout.strip() else hard.stderr[-300:]}
    print(json.dumps(result, indent=1))
    (Path(__file__).parent / "results" / "fuzz.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
