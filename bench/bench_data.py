"""Data generation with 1 worker against 2, side by side in one run, and sharded generation
(2 shards made one after the other, then merged) against one run; the issue's target is
>= 1.8x with 2 workers on this 2-core machine.

    python bench/bench_data.py [--n 20000 --n-speech 400 --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402


def main() -> None:
    # Imported here, not at the top: spawned workers re-import this script, and they should
    # load only what their jobs need (its_mobile.data.jobs), as under `its-mobile data`.
    from its_mobile.data.dataset import DataSpec, generate, merge_shards

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--n-speech", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3, help="1 then 2 workers, this many times; medians reported")
    args = ap.parse_args()
    spec = DataSpec(n=args.n, n_eval=100, n_speech=args.n_speech, n_audio=100, seed=3)
    runs: dict[str, list[float]] = {"1 worker(s)": [], "2 worker(s)": []}
    with tempfile.TemporaryDirectory() as tmp:
        # Interleaved rounds: this shared machine's speed drifts by 20% and more within minutes.
        for r in range(args.rounds):
            for workers in (1, 2):
                out = Path(tmp) / f"w{workers}"
                shutil.rmtree(out, ignore_errors=True)
                t = time.perf_counter()
                generate(out, spec, workers=workers, progress=False)
                runs[f"{workers} worker(s)"].append(round(time.perf_counter() - t, 1))
            print(runs, flush=True)
        t = time.perf_counter()
        shards = [generate(Path(tmp) / f"s{i}", spec, workers=2, progress=False, shard=(i, 2)) for i in range(2)]
        merge_shards(shards, Path(tmp) / "merged")
        runs["2 shards of 2 workers, one after the other, + merge"] = [round(time.perf_counter() - t, 1)]
        names = sorted(f.name for f in (Path(tmp) / "w1").iterdir())
        same = all((Path(tmp) / "w1" / f).read_bytes() == (Path(tmp) / d / f).read_bytes()
                   for d in ("w2", "merged") for f in names)
    rows = {k: float(np.median(v)) for k, v in runs.items()}
    result = {"machine": machine(), "spec": spec.__dict__, "seconds": rows, "runs": runs,
              "speedup_2_workers": round(rows["1 worker(s)"] / rows["2 worker(s)"], 2), "files_identical": same,
              "files": names}
    print(result)
    (Path(__file__).parent / "results" / "data.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
