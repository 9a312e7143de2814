"""Can the lexicon mend what the reader misreads, and what does that cost OOV words? The letter
probe of bench_letters.py reads each held-out image; a reading that is not a lexicon word is
replaced by the lexicon word within two edits that the letter head's CTC likes best, if that
word is at most `margin` nats less likely than the reading itself. Then the phonemes: the
lexicon's for a lexicon word, else those of the read letters said by bench_g2p.py's network
(`--g2p`) or the model's own. A wider margin mends more misread in-vocabulary words and turns
more OOV words into lexicon words they are not: the table is the trade, margin by margin.

    python bench/bench_lexicon.py --data D --eval E [--g2p P] [--steps 3000]

D, E as for bench_letters.py. Writes bench/results/lexicon.json.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))
from bench_g2p import load_g2p, pronounce  # noqa: E402
from bench_letters import (EVAL_SPLITS, features_and_phonemes, greedy_letters, probe_arguments,  # noqa: E402
                           probe_inputs, train_probe)
from common import machine  # noqa: E402

from its_mobile.evaluate.metrics import edit_distance, targets  # noqa: E402

MARGINS = (0.0, 1.0, 2.0, 4.0, 8.0, float("inf"))  # nats; 0 mends only readings the head likes less
MAX_EDITS = 2


def deletions(word: str) -> set[str]:
    """The word and every word one deletion away: two words within two edits share one (SymSpell)."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def deletion_index(words) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for w in words:
        for d in deletions(w):
            index.setdefault(d, []).append(w)
    return index


def neighbours(read: str, index: dict[str, list[str]]) -> list[str]:
    found = {w for d in deletions(read) for w in index.get(d, ())}
    return sorted(w for w in found if edit_distance(list(read), list(w)) <= MAX_EDITS)


def ctc_nll(logp: torch.Tensor, words: list[str], letter_ids: dict[str, int]) -> torch.Tensor:
    """-log P(spelling | image) under CTC for each word, from one image's letter log-probs (T, C)."""
    t, c = logp.shape
    return F.ctc_loss(logp.unsqueeze(1).expand(t, len(words), c),
                      torch.tensor([letter_ids[ch] for w in words for ch in w], dtype=torch.long),
                      torch.full((len(words),), t, dtype=torch.long),
                      torch.tensor([len(w) for w in words], dtype=torch.long), reduction="none")


def read_split(encoder, head, images, alphabet: str, lex: dict, index: dict) -> tuple[list, list, list, list]:
    """Per image: the greedy reading, the best lexicon neighbour (or None), how many nats less
    likely that neighbour is than the reading, and the model's own phonemes."""
    letter_ids = {ch: i + 1 for i, ch in enumerate(alphabet)}
    reads, best, gap, phones = [], [], [], []
    for a in range(0, len(images), 200):
        feats, got = features_and_phonemes(encoder, images[a : a + 200], "head")
        with torch.no_grad():
            logits = head(feats).transpose(1, 2)  # (B, T, C)
        phones += got
        for row, read in zip(F.log_softmax(logits, -1), greedy_letters(logits, alphabet)):
            reads.append(read)
            near = [] if read in lex else neighbours(read, index)
            if not near:
                best.append(None)
                gap.append(float("inf"))
                continue
            nll = ctc_nll(row, [read, *near], letter_ids)
            k = int(nll[1:].argmin())
            best.append(near[k])
            gap.append(float(nll[1 + k] - nll[0]))
    return reads, best, gap, phones


def main() -> None:
    args = probe_arguments(__doc__.splitlines()[0]).parse_args()
    encoder, info, train, held, alphabet, lex = probe_inputs(args)
    index = deletion_index(lex)
    speaker = partial(pronounce, *load_g2p(args.g2p)) if args.g2p else None
    head, _ = train_probe(encoder, train, alphabet, args.steps, args.batch, args.seed, "head")
    splits = {}
    for split in EVAL_SPLITS:
        images, word_ids = held.split(split)
        words, want = [held.words[i] for i in word_ids], targets(held, word_ids)
        reads, best, gap, phones = read_split(encoder, head, images, alphabet, lex, index)
        fallback = speaker(reads) if speaker else phones
        rows = []
        for m in MARGINS:
            final = [b if b is not None and g <= m else r for r, b, g in zip(reads, best, gap)]
            said = [lex[f] if f in lex else p for f, p in zip(final, fallback)]
            rows.append({"margin": m if np.isfinite(m) else None,
                         "mended": float(np.mean([f != r for f, r in zip(final, reads)])),
                         "letters_exact": float(np.mean([f == w for f, w in zip(final, words)])),
                         "phonemes_exact": float(np.mean([s == w for s, w in zip(said, want)]))})
        splits[split] = {"n": len(words), "read_exact": float(np.mean([r == w for r, w in zip(reads, words)])),
                         "margins": rows}
    out = {"machine": machine(), "checkpoint": str(args.checkpoint or "the embedded default"), "tier": info["tier"],
           "eval_data": held.meta["spec"], "steps": args.steps, "seed": args.seed, "lexicon_words": len(lex),
           "max_edits": MAX_EDITS, "fallback": (f"bench_g2p.py's network ({args.g2p.name}) saying the reading" if args.g2p
                        else "the model's own"),
           "splits": splits}
    (Path(__file__).parent / "results" / "lexicon.json").write_text(json.dumps(out, indent=1))
    for split, v in splits.items():
        print(split, " ".join(f"{r['margin']}:{r['phonemes_exact']:.3f}" for r in v["margins"]))


if __name__ == "__main__":
    main()
