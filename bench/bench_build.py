"""`its-mobile build` from the embedded default, every target and runtime in one run: wall time
of the whole command (a fresh process, as a user runs it), bundle zip size and model size.
The issue's targets: android <= 60 s on 2 cores, zip <= 3 MB.

    python bench/bench_build.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

COMBOS = [("android", "litert"), ("android", "executorch"), ("ios", "coreml")]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for target, runtime in COMBOS:
            out = Path(tmp) / f"{target}-{runtime}"
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "its_mobile", "build", "--target", target, "--runtime", runtime,
                            "-o", str(out)], check=True, capture_output=True)
            seconds = time.perf_counter() - t
            (r,) = json.loads((out / "build-report.json").read_text())["targets"]
            rows.append({"target": target, "runtime": runtime, "seconds": round(seconds, 1), "zip_bytes": r["zip_bytes"],
                         "model_file": r["model_file"], "model_bytes": r["model_bytes"], "weights": r["weights"],
                         "bits_per_ternary_weight": r["bits_per_ternary_weight"], "parity": r["parity"]["level"]
                         + (" pass" if r["parity"]["passed"] else " FAIL"), "host_p50_ms": r["host_latency"].get("p50_ms")})
            print(rows[-1], flush=True)
    result = {"machine": machine(), "rows": rows}
    out = Path(__file__).parent / "results" / "build.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
