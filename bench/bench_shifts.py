"""How many readings of each image the model should average (dims.spelling.shifts): the
letters the default reads exactly, per evaluation split, when its encoder reads the image as it
is, moved by rows (up or down) or by columns (sideways), the readings' letter log-probabilities
averaged before spelling; and, for the shipped shifts, the spelling's weight and bonus around
theirs. Run it on a set results are not reported on (the tuning set is seed 13):

    python bench/bench_shifts.py --data D     # D from `its-mobile data --seed 13 --n-eval 1000`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from its_mobile.checkpoint import load_model  # noqa: E402
from its_mobile.data.dataset import EVAL_SPLITS, load  # noqa: E402
from its_mobile.model.dims import READING  # noqa: E402
from its_mobile.model.encoder import shift_rows  # noqa: E402
from its_mobile.model.speaker import ALPHABET  # noqa: E402

# (rows, columns) each reading moves the image by
VIEWS = {
    "as it is": [(0, 0)],
    "1 row down and up (shipped)": [(1, 0), (-1, 0)],
    "as it is, 1 row down and up": [(0, 0), (1, 0), (-1, 0)],
    "as it is, 2 rows down and up": [(0, 0), (2, 0), (-2, 0)],
    "as it is, 1 and 2 rows down and up": [(0, 0), (1, 0), (-1, 0), (2, 0), (-2, 0)],
    "as it is, 2 columns left and right": [(0, 0), (0, 2), (0, -2)],
}
GRID = [(w, b) for w in (0.4, 0.6, 0.8, 1.0) for b in (0.3, 0.5, 0.7, 0.9)]


def log_probs(model, pixels: torch.Tensor, views: list[tuple[int, int]]) -> torch.Tensor:
    # torch.roll for columns: a sideways move is only compared here, never shipped
    return torch.stack([torch.log_softmax(model.encoder(torch.roll(shift_rows(pixels, r), c, dims=3)), -1)
                        for r, c in views]).mean(0)


def spelled(spelling, lp: torch.Tensor) -> list[str]:
    ids, mask = spelling(lp)
    return ["".join(ALPHABET[i - 1] for i, m in zip(row, keep) if m) for row, keep in zip(ids.tolist(), mask.tolist())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "shifts.json"))
    args = ap.parse_args()
    model, _ = load_model()
    data = load(Path(args.data))
    shipped = [(r, 0) for r in READING.shifts]
    views, grid = {k: {} for k in VIEWS}, {f"{w} / {b}": {} for w, b in GRID}
    with torch.no_grad():
        for split in EVAL_SPLITS:
            images, word_ids = data.split(split)
            words = [data.words[i] for i in word_ids]
            pixels = torch.from_numpy(np.asarray(images, np.float32)).unsqueeze(1)
            for name, v in VIEWS.items():
                lp = torch.cat([log_probs(model, pixels[a : a + 200], v) for a in range(0, len(pixels), 200)])
                views[name][split] = float(np.mean([s == w for s, w in zip(spelled(model.spelling, lp), words)]))
                if v == shipped:
                    for w, b in GRID:
                        model.spelling.weight, model.spelling.bonus = w, b
                        got = spelled(model.spelling, lp)
                        grid[f"{w} / {b}"][split] = float(np.mean([s == x for s, x in zip(got, words)]))
                    model.spelling.weight, model.spelling.bonus = model.dims.spelling.weight, model.dims.spelling.bonus
    result = {"machine": machine(), "data": data.meta["spec"], "shipped_weight_bonus": f"{model.dims.spelling.weight} / "
              f"{model.dims.spelling.bonus}", "views": views, "weight_bonus": grid}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
