"""Speaker: the letters the encoder read -> phoneme scores (spelling to sound).

Why it exists: probes on the encoder's frozen features (bench/bench_letters.py) read the letters
of 95.5% of unseen-font words exactly while its own phonemes were exact for 57.7%; reading was
not what failed, pronouncing was. So a model with a speaker reads letters (the encoder's head
scores letters) and says them with this small transformer, trained on the lexicon's text alone
(cheap: no images), like bench/bench_g2p.py's probe.

Each letter becomes SLOTS tokens, since one letter can say two phonemes ("x": k s), and every
token scores the phonemes plus CTC's blank; phonemes are read with the same greedy rule as the
encoder's. Padding tokens are hidden from attention and score only the blank, so a word reads
the same alone or in a batch, and CTC may run over every slot; no token ever says EOS.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from its_mobile.constants import BLANK, EOS, MAX_WORD_LEN
from its_mobile.model.dims import SpeakerDims
from its_mobile.model.encoder import Block

ALPHABET = "abcdefghijklmnopqrstuvwxyz"  # every lexicon word is [a-z]{2,MAX_WORD_LEN} (data/lexicon.py)
N_LETTERS = len(ALPHABET) + 1  # id 0: CTC's blank, and padding after the last letter
SLOTS = 2  # phoneme tokens per letter
HIDDEN = -1e4  # attention bias of a padding token (fits float16)


def letter_ids(words: list[str]) -> np.ndarray:
    """Words -> (W, MAX_WORD_LEN) int64 letter ids, 0 after the last (letters outside ALPHABET
    are dropped, longer words cut)."""
    index = {c: i + 1 for i, c in enumerate(ALPHABET)}
    out = np.zeros((len(words), MAX_WORD_LEN), np.int64)
    for i, w in enumerate(words):
        ids = [index[c] for c in w.lower() if c in index][:MAX_WORD_LEN]
        out[i, : len(ids)] = ids
    return out


class Speaker(nn.Module):
    def __init__(self, dims: SpeakerDims, n_phones: int):
        super().__init__()
        w = dims.width
        self.embed = nn.Embedding(N_LETTERS, w)
        self.pos = nn.Parameter(torch.randn(1, MAX_WORD_LEN * SLOTS, w) * 0.02)
        self.blocks = nn.ModuleList(Block(w, dims.heads, dims.mlp_ratio) for _ in range(dims.depth))
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, n_phones)
        one_hot = nn.functional.one_hot(torch.tensor([BLANK, EOS]), n_phones).float()
        self.register_buffer("blank", one_hot[0], persistent=False)
        self.register_buffer("eos", one_hot[1], persistent=False)

    def forward(self, letters: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """letters (B, MAX_WORD_LEN) ids, mask (B, MAX_WORD_LEN) 1 for real letters ->
        logits (B, MAX_WORD_LEN * SLOTS, n_phones), index BLANK being CTC's blank."""
        b, n = letters.shape
        x = self.embed(letters).unsqueeze(2).expand(-1, -1, SLOTS, -1).reshape(b, n * SLOTS, -1) + self.pos
        pad = 1.0 - mask.float().unsqueeze(2).expand(-1, -1, SLOTS).reshape(b, n * SLOTS)  # (B, T) 1 for padding
        bias = (pad * HIDDEN).view(b, 1, 1, n * SLOTS)
        for block in self.blocks:
            x = block(x, bias)
        # EOS marks the end of the phoneme slots, never a phoneme: it is never said.
        return self.head(self.norm(x)) + (pad * -HIDDEN).unsqueeze(2) * self.blank + HIDDEN * self.eos
