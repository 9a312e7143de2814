"""Export and parity of the shipped default, as a user runs them: the wall time of exporting
every format with packed weights, then packed and dense twins checked in their runtimes on the
built-in images and on 200 held-out ones. Writes bench/results/export.json.

    python bench/bench_export.py OUT     # keeps OUT's artifacts for bench_export_latency.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

CLI = [sys.executable, "-m", "its_mobile"]


def its_mobile(*args: str) -> None:
    subprocess.run([*CLI, *args], check=True, stdout=subprocess.DEVNULL)


def measure(out: Path) -> dict:
    packed_only = out.with_name(out.name + "-packed")
    for d in (out, packed_only):
        shutil.rmtree(d, ignore_errors=True)
    start = time.perf_counter()
    its_mobile("export", "--format", "all", "-o", str(packed_only))
    packed_seconds = time.perf_counter() - start
    shutil.rmtree(packed_only)
    its_mobile("export", "--format", "all", "--weights", "both", "-o", str(out))
    reports = {}
    for name, extra in (("parity", ()), ("parity_held_out", ("--n", "200"))):
        its_mobile("parity", str(out), *extra)
        reports[name] = json.loads((out / "parity-report.json").read_text())
    return {"machine": machine(),
            "command": "its-mobile export --format all --weights both -o OUT && its-mobile parity OUT "
                       "(the packed default)",
            "packed_export_wall_seconds": packed_seconds,
            "export": json.loads((out / "export-report.json").read_text()), **reports}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="where the artifacts go (replaced)")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "export.json")
    args = ap.parse_args()
    result = measure(args.out)
    args.results.write_text(json.dumps(result, indent=1) + "\n")
    print(f"packed export {result['packed_export_wall_seconds']:.0f} s; parity "
          f"{'passed' if result['parity']['passed'] and result['parity_held_out']['passed'] else 'FAILED'}")


if __name__ == "__main__":
    main()
