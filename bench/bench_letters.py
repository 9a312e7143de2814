"""Is the model failing to read the word, or to pronounce it? A probe: a letter head (a 5-token
conv with CTC, shaped like the phoneme head) trained on the frozen features that the phoneme
head reads, then both heads on the same held-out images, side by side. Letters read far better
than phonemes: the encoder has read the word, and spelling -> sound is what fails. In-vocabulary
words reading no better than OOV ones says the model has learned rules, not the lexicon. And
what a lexicon would give: the read letters looked up among the training words (the model's own
phonemes where they are not there), with the lexicon's compressed size. With `--g2p P` (a probe
saved by bench_g2p.py), also the read letters said by that letters -> phonemes network, alone
and behind the lexicon: a reader followed by a speaker, measured on images.

    python bench/bench_letters.py --data D --eval E [--checkpoint P] [--tier T] [--steps 3000]
                                  [--features head|widen] [--g2p P]

D: a data directory to train the probe on (its train split); E: one whose evaluation splits to
read (e.g. `its-mobile data --n 1 --n-eval 1000 --seed 11`). Writes bench/results/letters.json, or
letters_widen.json with `--features widen` (the probe on the 96-wide tokens before the last block,
which says whether a reader of letters needs that 192-wide block).
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from bench_g2p import greedy, load_g2p, pronounce  # noqa: E402
from common import machine  # noqa: E402

from its_mobile import checkpoint  # noqa: E402
from its_mobile.data.dataset import load  # noqa: E402
from its_mobile.evaluate.metrics import phoneme_lists, targets  # noqa: E402
from its_mobile.model.encoder import ctc_greedy  # noqa: E402

EVAL_SPLITS = ("eval_iv_clean", "eval_iv_noisy", "eval_oov_clean", "eval_oov_noisy")
STRESS = ("ˈ", "ˌ")


# Where the probe reads: the input of the phoneme head (the last block's output, 192 wide, stored
# (B, C, T)) or of `widen` (the tokens before the last block, 96 wide, stored (B, T, C)).
TAPS = {"head": False, "widen": True}  # module -> is its input tokens-last


def features_and_phonemes(encoder: nn.Module, images: np.ndarray, tap: str) -> tuple[torch.Tensor, list[list[int]]]:
    """(the features at `tap` (B, C, T), the phonemes the model reads) of each image."""
    tokens_last = TAPS[tap]
    seen = []
    hook = getattr(encoder, tap).register_forward_hook(
        lambda _m, inputs, _out: seen.append(inputs[0].transpose(1, 2) if tokens_last else inputs[0]))
    try:
        with torch.no_grad():
            phones, mask = ctc_greedy(encoder(torch.from_numpy(np.asarray(images, np.float32)).unsqueeze(1)))
    finally:
        hook.remove()
    return seen[0], phoneme_lists(phones, mask)


def greedy_letters(logits: torch.Tensor, alphabet: str) -> list[str]:
    """CTC's greedy rule on letter logits (B, T, 1 + letters), index 0 the blank."""
    every_slot = torch.full((len(logits),), logits.shape[1])
    return ["".join(alphabet[i] for i in ids) for ids in greedy(logits, every_slot)]


def train_probe(encoder: nn.Module, data, alphabet: str, steps: int, batch: int, seed: int,
                tap: str) -> tuple[nn.Module, list]:
    images, word_ids = data.split("train")
    index = {c: i + 1 for i, c in enumerate(alphabet)}
    channels = encoder.head.in_channels if tap == "head" else encoder.widen.in_features
    head = nn.Conv1d(channels, len(alphabet) + 1, encoder.head.kernel_size[0], padding=encoder.head.padding[0])
    opt = torch.optim.AdamW(head.parameters(), 3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    rng = np.random.default_rng(seed)
    curve = []
    for step in tqdm(range(steps), desc="letter probe"):
        pick = np.sort(rng.choice(len(word_ids), batch, replace=False))
        feats, _ = features_and_phonemes(encoder, images[pick], tap)
        words = [data.words[i] for i in word_ids[pick]]
        logp = F.log_softmax(head(feats), 1).permute(2, 0, 1)  # (T, B, C)
        loss = F.ctc_loss(logp, torch.tensor([index[c] for w in words for c in w]),
                          torch.full((batch,), logp.shape[0]), torch.tensor([len(w) for w in words]), zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            curve.append([step, round(float(loss), 4)])
    return head.eval(), curve


def unstressed(ids: list[int], inventory: list[str]) -> list[str]:
    out = []
    for i in ids:
        p = inventory[i]
        for mark in STRESS:
            p = p.replace(mark, "")
        out.append(p)
    return out


def lexicon(data) -> dict[str, list[int]]:
    """Every in-vocabulary word of `data` (what training may read) -> its phoneme ids."""
    words = [i for i, oov in enumerate(data.word_oov) if not oov]
    return dict(zip((data.words[i] for i in words), targets(data, np.array(words))))


def lexicon_bytes(lex: dict[str, list[int]]) -> int:
    """The lexicon as one line per word (the word, then its phoneme ids as bytes 128 + id, which
    no letter, tab or newline can be), xz-compressed."""
    lines = b"\n".join(w.encode() + bytes(128 + i for i in ids) for w, ids in sorted(lex.items()))
    return len(lzma.compress(lines, preset=9 | lzma.PRESET_EXTREME))


def compare(encoder: nn.Module, head: nn.Module, data, alphabet: str, inventory: list[str],
            lex: dict[str, list[int]], tap: str, speaker=None) -> dict:
    """`speaker`: a spelling -> phonemes function (bench_g2p's probe) to say the read letters with."""
    rows = {}
    for split in EVAL_SPLITS:
        images, word_ids = data.split(split)
        letters, phones = [], []
        for a in range(0, len(word_ids), 200):
            feats, got = features_and_phonemes(encoder, images[a : a + 200], tap)
            with torch.no_grad():
                letters += greedy_letters(head(feats).transpose(1, 2), alphabet)
            phones += got
        words = [data.words[i] for i in word_ids]
        want = targets(data, word_ids)
        read = np.array([g == w for g, w in zip(letters, words)])
        said = np.array([g == w for g, w in zip(phones, want)])
        # The read letters looked up in the lexicon; the model's own phonemes where they are not in it
        looked_up = np.array([lex.get(r, p) == w for r, p, w in zip(letters, phones, want)])
        stress_only = np.array([not s and unstressed(g, inventory) == unstressed(w, inventory)
                                for g, w, s in zip(phones, want, said)])
        rows[split] = {"n": len(words), "letters_exact": float(read.mean()), "phonemes_exact": float(said.mean()),
                       "phonemes_exact_when_letters_exact": float(said[read].mean()) if read.any() else None,
                       "wrong_in_stress_only": float(stress_only.mean()),
                       "letters_in_lexicon": float(np.mean([r in lex for r in letters])),
                       "with_lexicon_exact": float(looked_up.mean())}
        if speaker:
            spoken = speaker(letters)
            rows[split]["letters_then_g2p_exact"] = float(np.mean([g == w for g, w in zip(spoken, want)]))
            rows[split]["lexicon_then_g2p_exact"] = float(np.mean([lex.get(r, g) == w
                                                                   for r, g, w in zip(letters, spoken, want)]))
    return rows


def probe_arguments(description: str) -> argparse.ArgumentParser:
    """What every letter-probe benchmark takes (this one and bench_lexicon.py)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", type=Path, required=True, help="data directory whose train split trains the probe")
    ap.add_argument("--eval", type=Path, required=True, help="data directory whose evaluation splits are read")
    ap.add_argument("--checkpoint", type=Path, default=None, help="model (default: the embedded one)")
    ap.add_argument("--tier", default=None)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--g2p", type=Path, default=None,
                    help="a letters -> phonemes network saved by bench_g2p.py --save: say the read letters with it")
    return ap


def probe_inputs(args: argparse.Namespace):
    """-> (frozen encoder, model info, train data, held-out data, alphabet, lexicon of the training words)."""
    torch.manual_seed(args.seed)
    model, info = checkpoint.load_model(args.checkpoint, args.tier)
    train, held = load(args.data), load(args.eval)
    if train.meta["inventory"] != info["inventory"]:
        sys.exit(f"{args.data}: its phoneme inventory is not the model's")
    alphabet = "".join(sorted({c for w in train.words for c in w}))
    return model.encoder.eval().requires_grad_(False), info, train, held, alphabet, lexicon(train)


def main() -> None:
    ap = probe_arguments(__doc__.splitlines()[0])
    ap.add_argument("--features", choices=sorted(TAPS), default="head",
                    help="read letters from what the phoneme head reads, or from the tokens before the last block")
    args = ap.parse_args()
    encoder, info, train, held, alphabet, lex = probe_inputs(args)
    speaker = None
    if args.g2p:
        g2p, g2p_config = load_g2p(args.g2p)
        speaker = partial(pronounce, g2p, g2p_config)
    start = time.perf_counter()
    head, curve = train_probe(encoder, train, alphabet, args.steps, args.batch, args.seed, args.features)
    seconds = time.perf_counter() - start
    out = {"machine": machine(), "checkpoint": str(args.checkpoint or "the embedded default"), "tier": info["tier"],
           "train_data": train.meta["spec"], "eval_data": held.meta["spec"], "alphabet": alphabet,
           "features": args.features, "steps": args.steps, "batch": args.batch, "seed": args.seed, "probe_seconds": round(seconds),
           "loss_curve": curve, "lexicon_words": len(lex), "lexicon_xz_bytes": lexicon_bytes(lex),
           "g2p": {"file": args.g2p.name, **{k: g2p_config[k] for k in ("width", "depth")},
                   "params": sum(t.numel() for t in g2p.parameters())} if args.g2p else None,
           "splits": compare(encoder, head, held, alphabet, info["inventory"], lex, args.features, speaker)}
    name = "letters" if args.features == "head" else f"letters_{args.features}"
    (Path(__file__).parent / "results" / f"{name}.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out["splits"], indent=1))


if __name__ == "__main__":
    main()
