"""Spelling: the encoder's letter scores -> the spelling a letter model of the lexicon likes best
among the greedy reading and its one-column variants.

Why: CTC's greedy rule takes each image column's best letter alone, so on noisy images one
smudged letter made a word the speaker then said wrong ("revolntionists", "burnimg"). Here every
column in turn is given its second-best label instead (a letter for another, a letter dropped
or one added), and of those 33 readings the one with the best sum of CTC path score, weighted
letter-trigram score and a bonus per letter wins. The trigram knows English letter sequences,
not words, so it mends misread letters of unseen words too (bench/RESULTS.md: the default
before and after it was fitted). A full Viterbi pass over CTC's paths with the same trigram
read no better on the tuning set and cost 7 ms a word in the .pte; this costs a few dozen
small ops.

The trigram's oldest letter is one of a few classes of letters (merged where the lexicon's counts
lose least), so its table is CLASSES x 27 x 27 numbers instead of 27^3; with it the model stays
within 2.5M parameters.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from its_mobile.constants import MAX_WORD_LEN, PAD
from its_mobile.model.dims import SpellingDims
from its_mobile.model.encoder import N_TOKENS, ctc_collapse_ids

V = 27  # CTC's blank (0) and the letters; in the letter model 0 is the word's start and end
DEAD = -1e4  # below any log-probability (fits float16)
SMOOTHING = 5.0  # pseudo-counts of a context before its own counts outweigh the bigram
UNIGRAM_ADD = 0.1  # pseudo-count of every letter, so that one the words never use keeps a little mass


class Spelling(nn.Module):
    def __init__(self, dims: SpellingDims):
        super().__init__()
        self.weight = dims.weight
        self.bonus = dims.bonus
        # Fitted from a lexicon (fit_letter_model), never by gradients; parameters so that they are counted,
        # saved and packed with the rest of the model. log p(c | class(a), b) sits at row
        # class(a) * V + b: 2-d, so that packing keeps a scale per row.
        self.table = nn.Parameter(torch.zeros(dims.classes * V, V), requires_grad=False)
        self.classes = nn.Parameter(torch.zeros(V, dtype=torch.int64), requires_grad=False)  # a -> class
        # Index constants as buffers, not built in forward: LiteRT has no kernel for StableHLO's iota.
        self.register_buffer("ids", torch.arange(V), persistent=False)
        self.register_buffer("slots", torch.arange(MAX_WORD_LEN + 1), persistent=False)
        # Reading 0 is the greedy path; reading k + 1 swaps column k to its second-best label.
        swaps = torch.cat([torch.zeros(1, N_TOKENS, dtype=torch.bool), torch.eye(N_TOKENS, dtype=torch.bool)])
        self.register_buffer("swaps", swaps.unsqueeze(0), persistent=False)  # (1, T + 1, T)

    def forward(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Letter scores (B, T, V) -> letter ids (B, MAX_WORD_LEN), PAD after the last, and their
        mask, as ctc_collapse gives for the greedy path."""
        lp = torch.log_softmax(scores, -1)
        b, steps = lp.shape[0], lp.shape[1]
        best = lp.argmax(-1)  # (B, T)
        is_best = best.unsqueeze(2) == self.ids
        others = torch.where(is_best, torch.full_like(lp, DEAD), lp)
        second = others.argmax(-1)
        margin = lp.gather(2, best.unsqueeze(2)).squeeze(2) - others.gather(2, second.unsqueeze(2)).squeeze(2)
        paths = torch.where(self.swaps, second.unsqueeze(1), best.unsqueeze(1))  # (B, T + 1, T)
        cost = (self.swaps.float() * margin.unsqueeze(1)).sum(2)  # (B, T + 1): path score lost
        ids, mask = ctc_collapse_ids(paths.reshape(b * (steps + 1), steps), MAX_WORD_LEN, PAD)
        # Trigram over <start> <start> letters <end>: MAX_WORD_LEN + 1 predictions, those up to
        # the end counted (the PAD after the last letter is the end).
        edge = torch.zeros_like(ids[:, :1])
        seq = torch.cat([edge, edge, ids, edge], dim=1)
        at = (self.classes[seq[:, :-2]] * V + seq[:, 1:-1]) * V + seq[:, 2:]
        n = mask.sum(1, keepdim=True)
        counted = (self.slots.unsqueeze(0) <= n).float()
        letters = (self.table.reshape(-1)[at] * counted).sum(1) * self.weight + n.squeeze(1).float() * self.bonus
        pick = (letters.reshape(b, steps + 1) - cost).argmax(1, keepdim=True).unsqueeze(2).expand(-1, 1, MAX_WORD_LEN)
        ids, mask = (x.reshape(b, steps + 1, MAX_WORD_LEN).gather(1, pick).squeeze(1) for x in (ids, mask))
        return ids, mask


def _ids(word: str) -> list[int]:
    return [ord(c) - ord("a") + 1 for c in word]


def set_letter_model(spelling: Spelling, table: torch.Tensor, classes: torch.Tensor) -> None:
    """Give `spelling` a letter model from fit_letter_model."""
    with torch.no_grad():
        spelling.table.copy_(table.reshape(-1, V))
        spelling.classes.copy_(classes)


def fit_letter_model(words: list[str], classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(table (classes, V, V) of log p(c | class(a), b), classes (V,) a -> class) from `words`:
    counts of letter triples (0 = start and end), the oldest letters merged greedily into
    `classes` groups where the counts' likelihood drops least, each context's own estimate
    interpolated with the bigram's."""
    n = np.zeros((V, V, V))
    for w in words:
        ids = [0, 0, *_ids(w), 0]
        np.add.at(n, (ids[:-2], ids[1:-1], ids[2:]), 1)

    def loglik(m: np.ndarray) -> float:
        total = m.sum(-1, keepdims=True)
        return float(np.sum(m * np.log(np.where(m > 0, m, 1) / np.maximum(total, 1))))

    groups, rows = [[a] for a in range(V)], [n[a] for a in range(V)]
    scores = [loglik(r) for r in rows]
    while len(groups) > classes:
        _, i, j = min((scores[i] + scores[j] - loglik(rows[i] + rows[j]), i, j)
                      for i in range(len(groups)) for j in range(i + 1, len(groups)))
        groups[i], rows[i] = groups[i] + groups[j], rows[i] + rows[j]
        scores[i] = loglik(rows[i])
        del groups[j], rows[j], scores[j]
    of = np.zeros(V, np.int64)
    for k, members in enumerate(groups):
        of[members] = k
    bigram = n.sum(0)
    unigram = (bigram.sum(0) + UNIGRAM_ADD) / (bigram.sum() + UNIGRAM_ADD * V)
    total = bigram.sum(-1, keepdims=True)
    p2 = total / (total + SMOOTHING) * bigram / np.maximum(total, 1) + SMOOTHING / (total + SMOOTHING) * unigram
    counts = np.stack(rows)
    total = counts.sum(-1, keepdims=True)
    p3 = total / (total + SMOOTHING) * counts / np.maximum(total, 1) + SMOOTHING / (total + SMOOTHING) * p2[None]
    return torch.from_numpy(np.log(p3)).float(), torch.from_numpy(of)
