"""How well can a network of the student's scale pronounce words from their letters alone? A
probe for the OOV targets: a small transformer over letters with a CTC phoneme head (the
phoneme head's loss; each letter spread over two slots, since a letter can say two phonemes),
trained on the training words' espeak-ng phonemes, then asked for the OOV words (never trained
on) and a sample of training words. The model reads letters well (bench_letters.py); this says
what spelling to sound alone can reach at this size and this much CPU time.

    python bench/bench_g2p.py --data D [--minutes 20] [--width 128] [--depth 4] [--save P]
    python bench/bench_g2p.py --data D --model M

D: a data directory (its words, phonemes and OOV split). Writes bench/results/g2p_wW_dD.json (one
per size); `--save` keeps the network for `bench_letters.py --g2p P` and `bench_lexicon.py --g2p P`,
which feed it the letters read from images. With `--model M` (a whole-model checkpoint with a
speaker), no probe is trained: the model's own speaker is measured the same way, from the true
letters, into bench/results/g2p_model.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.nn import functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from its_mobile import checkpoint  # noqa: E402
from its_mobile.data.dataset import load  # noqa: E402
from its_mobile.evaluate.metrics import edit_distance, phoneme_lists, targets  # noqa: E402
from its_mobile.model.encoder import ctc_greedy  # noqa: E402
from its_mobile.model.speaker import letter_ids  # noqa: E402

SLOTS = 2  # CTC slots per letter


class LettersToPhonemes(nn.Module):
    def __init__(self, n_letters: int, n_phones: int, width: int, depth: int, max_len: int):
        super().__init__()
        self.embed = nn.Embedding(n_letters + 1, width, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(1, max_len * SLOTS, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_phones + 1)  # index 0: CTC's blank

    def forward(self, letters: torch.Tensor) -> torch.Tensor:
        """letters (B, L), 0 = padding -> log-probabilities (B, L * SLOTS, 1 + phonemes)."""
        pad = (letters == 0).repeat_interleave(SLOTS, 1)
        x = self.embed(letters).repeat_interleave(SLOTS, 1) + self.pos[:, : letters.shape[1] * SLOTS]
        return F.log_softmax(self.head(self.norm(self.body(x, src_key_padding_mask=pad))), -1)


def encode(words: list[str], index: dict[str, int], max_len: int) -> torch.Tensor:
    """Letters as ids (0 pads); letters outside the alphabet are dropped, words cut at max_len."""
    out = torch.zeros(len(words), max_len, dtype=torch.long)
    for i, w in enumerate(words):
        ids = [index[c] for c in w if c in index][:max_len]
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def save(model: LettersToPhonemes, config: dict, path: Path) -> None:
    save_file(model.state_dict(), str(path), metadata={"g2p": json.dumps(config)})


def load_g2p(path: Path) -> tuple[LettersToPhonemes, dict]:
    """A probe saved by `--save`: safetensors, its config in the metadata (no pickle)."""
    with safe_open(str(path), "pt") as f:
        config = json.loads(f.metadata()["g2p"])
    model = LettersToPhonemes(len(config["alphabet"]), config["n_phones"], config["width"], config["depth"],
                              config["max_len"])
    model.load_state_dict(load_file(str(path)))
    return model.eval(), config


def pronounce(model: LettersToPhonemes, config: dict, words: list[str]) -> list[list[int]]:
    """Phoneme ids for each spelling (an empty spelling gets none)."""
    index = {c: i + 1 for i, c in enumerate(config["alphabet"])}
    letters = encode(words, index, config["max_len"])
    got = []
    with torch.no_grad():
        for a in range(0, len(words), 500):
            x = letters[a : a + 500]
            got += greedy(model(x), (x != 0).sum(1) * SLOTS)
    return got


def greedy(logp: torch.Tensor, slots: torch.Tensor) -> list[list[int]]:
    """Collapse CTC paths, reading only each word's own slots (padded slots are not masked as queries)."""
    out = []
    for row, n in zip(logp.argmax(-1).tolist(), slots.tolist()):
        seq, prev = [], 0
        for i in row[:n]:
            if i not in (0, prev):
                seq.append(i - 1)
            prev = i
        out.append(seq)
    return out


def speaker_says(model: nn.Module, words: list[str]) -> list[list[int]]:
    """Phoneme ids that a whole model's speaker says for each spelling."""
    got = []
    with torch.no_grad():
        for a in range(0, len(words), 500):
            letters = torch.from_numpy(letter_ids(words[a : a + 500]))
            phones, mask = ctc_greedy(model.speaker(letters, (letters != 0).long()))
            got += phoneme_lists(phones, mask)
    return got


def measure_model(path: Path, data, phones: list[list[int]], oov: np.ndarray, iv_sample: np.ndarray) -> None:
    model, info = checkpoint.load_model(path)
    if not hasattr(model, "speaker"):
        sys.exit(f"{path} has no speaker (its encoder reads phonemes)")
    run, trained = info["training"], None
    while run and trained is None:  # the newest run that trained it, or the older runs summed
        trained = run.get("stages", {}).get("speaker")
        if trained is None and "speaker" in run.get("earlier", {}).get("stages", {}):
            trained = {**run["earlier"]["stages"]["speaker"], "summed_runs": run["earlier"]["runs"]}
        run = run.get("continued_from")
    out = {"machine": machine(), "data": data.meta["spec"], "model": str(path), "training": trained,
           "params": sum(p.numel() for p in model.speaker.parameters()),
           **{name: score(speaker_says(model, [data.words[i] for i in ids]), [phones[i] for i in ids])
              for name, ids in (("oov_words", oov), ("training_words_sample", iv_sample))}}
    (Path(__file__).parent / "results" / "g2p_model.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("params", "oov_words", "training_words_sample")}, indent=1))


def score(got: list[list[int]], want: list[list[int]]) -> dict:
    return {"n": len(want), "exact": float(np.mean([g == w for g, w in zip(got, want)])),
            "per": sum(edit_distance(g, w) for g, w in zip(got, want)) / sum(len(w) for w in want)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, default=None, help="keep the trained probe here (.safetensors)")
    ap.add_argument("--model", type=Path, default=None, help="measure this whole model's speaker instead")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    data = load(args.data)
    ids = np.arange(len(data.words))
    phones = targets(data, ids)
    alphabet = "".join(sorted({c for w in data.words for c in w}))
    index = {c: i + 1 for i, c in enumerate(alphabet)}
    max_len = max(len(w) for w in data.words)
    letters = encode(data.words, index, max_len)
    train = ids[~data.word_oov]
    oov = ids[data.word_oov]
    rng = np.random.default_rng(args.seed)
    iv_sample = rng.choice(train, 2000, replace=False)
    if args.model:
        return measure_model(args.model, data, phones, oov, iv_sample)
    model = LettersToPhonemes(len(alphabet), len(data.meta["inventory"]), args.width, args.depth, max_len)
    opt = torch.optim.AdamW(model.parameters(), args.lr, weight_decay=0.01)
    start, step, curve = time.perf_counter(), 0, []
    budget = args.minutes * 60
    bar = tqdm(total=int(budget), desc="g2p probe", unit="s")
    while (elapsed := time.perf_counter() - start) < budget:
        lr = args.lr * min(1.0, (step + 1) / 500) * 0.5 * (1 + np.cos(np.pi * min(1.0, elapsed / budget)))
        for g in opt.param_groups:
            g["lr"] = lr
        pick = rng.choice(train, args.batch, replace=False)
        x = letters[pick]
        lengths = (x != 0).sum(1)
        x = x[:, : int(lengths.max())]
        logp = model(x).transpose(0, 1)
        want = [phones[i] for i in pick]
        loss = F.ctc_loss(logp, torch.tensor([p + 1 for w in want for p in w]), lengths * SLOTS,
                          torch.tensor([len(w) for w in want]), zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 200 == 0:
            curve.append([step, round(loss.item(), 4)])
            bar.update(int(time.perf_counter() - start) - bar.n)
        step += 1
    bar.close()
    seconds = time.perf_counter() - start
    model.eval()
    config = {"alphabet": alphabet, "n_phones": len(data.meta["inventory"]), "width": args.width,
              "depth": args.depth, "max_len": max_len}
    if args.save:
        save(model, config, args.save)
    out = {"machine": machine(), "data": data.meta["spec"], "width": args.width, "depth": args.depth,
           "params": sum(p.numel() for p in model.parameters()), "batch": args.batch, "lr": args.lr,
           "seed": args.seed, "steps": step, "seconds": round(seconds), "loss_curve": curve,
           "oov_words": score(pronounce(model, config, [data.words[i] for i in oov]), [phones[i] for i in oov]),
           "training_words_sample": score(pronounce(model, config, [data.words[i] for i in iv_sample]),
                                          [phones[i] for i in iv_sample])}
    (Path(__file__).parent / "results" / f"g2p_w{args.width}_d{args.depth}.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("params", "steps", "seconds", "oov_words", "training_words_sample")}, indent=1))


if __name__ == "__main__":
    main()
