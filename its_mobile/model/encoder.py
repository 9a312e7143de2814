"""ViTSTR-style image encoder: a grayscale word image -> letter (or phoneme) scores per column.

A small conv stem turns 32x128 pixels into N_TOKENS = 32 column tokens (4 pixels wide each;
a conv stem trains much faster than a linear patch embedding on little data), a ViT mixes
them with global attention, and every token scores the letters plus a blank; the speaker
(model/speaker.py) then says them. Models from before the speaker score phonemes here instead.
Either is read in parallel with CTC's greedy rule. Reading from fixed output slots, as ViTSTR
does for characters, stalled here (for phonemes): the k-th phoneme's place in the image
depends on how many came before it, which attention learns slowly; CTC lets each column say
what it shows.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from its_mobile.constants import BLANK, EOS, IMG_H, IMG_W, MAX_PHONES, PIXEL_MEAN, PIXEL_STD
from its_mobile.model.dims import EncoderDims

N_TOKENS = IMG_W // 4  # the stem keeps one token per 4-pixel column: 32


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, C); bias (B, 1, 1, T) added to the attention scores (a large negative one
        hides a padding token)."""
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, T, hs)
        scores = (q @ k.transpose(-1, -2)) * (c // self.heads) ** -0.5
        att = torch.softmax(scores if bias is None else scores + bias, dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, round(mlp_ratio * width))
        self.fc2 = nn.Linear(round(mlp_ratio * width), width)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), bias)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Encoder(nn.Module):
    def __init__(self, dims: EncoderDims, n_outputs: int):
        """n_outputs: the ids the head scores, CTC's blank included (phonemes, or letters for a
        model with a speaker)."""
        super().__init__()
        s, w = dims.stem_width, dims.width
        self.stretch = dims.stretch
        self.stem = nn.Sequential(
            nn.Conv2d(1, s, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(s, 2 * s, 3, stride=2, padding=1),
            nn.GELU(),
            # Widen each token's view to ~23 px (two letters): with a 7 px view the ViT stalled.
            nn.Conv2d(2 * s, 2 * s, (3, 5), padding=(1, 2)),
            nn.GELU(),
            nn.Conv2d(2 * s, w, (IMG_H // 4, 1)),  # a whole column of the 8 x 32 map -> one token
        )
        self.pos = nn.Parameter(torch.randn(1, N_TOKENS, w) * 0.02)
        self.blocks = nn.ModuleList(Block(w, dims.heads, dims.mlp_ratio) for _ in range(dims.depth - 1))
        self.widen = nn.Linear(w, dims.last_width) if dims.last_width != w else nn.Identity()
        self.last = Block(dims.last_width, dims.heads, dims.mlp_ratio)
        self.norm = nn.LayerNorm(dims.last_width)
        # A 5-token conv reads each phoneme from its neighbourhood (~40 px): with a per-token
        # linear readout, CTC sat on its all-blank plateau far longer on 2 cores.
        self.head = nn.Conv1d(dims.last_width, n_outputs, 5, padding=2)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 1, IMG_H, IMG_W) grey levels in [0, 255] -> logits (B, N_TOKENS, n_outputs),
        index BLANK being CTC's blank."""
        return self.read(self.embed(pixels))

    # Two halves, split after any block: nested tiers share the stem and some leading blocks,
    # which training then runs once for the tiers of a step.
    def embed(self, pixels: torch.Tensor, blocks: int = 0) -> torch.Tensor:
        """pixels -> tokens (B, N_TOKENS, width): the stem, the positions and the first `blocks` blocks."""
        if self.stretch:
            pixels = pixels + self.stretch * (stretch_contrast(pixels) - pixels)
        x = self.stem((pixels / 255.0 - PIXEL_MEAN) / PIXEL_STD)  # (B, w, 1, 32)
        # contiguous: tokens in the stem's (B, w, T) memory order made a Linear fed straight
        # from the residual stream (widen) a batched matmul in export, whose weight Core ML's
        # converter then copied once per image of a batch.
        x = x.flatten(2).transpose(1, 2).contiguous() + self.pos
        for block in self.blocks[:blocks]:
            x = block(x)
        return x

    def read(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """The tokens after `start` blocks -> logits: the other blocks and the phoneme head."""
        x = tokens
        for block in self.blocks[start:]:
            x = block(x)
        x = self.last(self.widen(x))
        return self.head(self.norm(x).transpose(1, 2)).transpose(1, 2)


def stretch_contrast(pixels: torch.Tensor) -> torch.Tensor:
    """Each image's grey levels (B, 1, H, W) spread so that its darkest pixel is 0 and its
    lightest 255 (a flat image becomes 0).

    Why: faded and low-contrast words were the encoder's commonest misreads on noisy images;
    stretched, the shipped default (trained without it) read more of them (bench/RESULTS.md:
    the default, continued). Extremes are last-dim max reductions, the form every backend's
    delegate takes."""
    flat = pixels.flatten(1)
    hi = flat.amax(-1, keepdim=True)
    lo = -(-flat).amax(-1, keepdim=True)
    # A division, not a reciprocal: Core ML's inverse adds 1e-4 to what it inverts.
    span = (hi - lo).clamp(min=1.0).view(-1, 1, 1, 1)
    return (pixels - lo.view(-1, 1, 1, 1)) / span * 255.0


def shift_rows(pixels: torch.Tensor, rows: int) -> torch.Tensor:
    """Images (B, 1, H, W) moved down by `rows` (up when negative), the edge row repeated into
    the gap."""
    if rows == 0:
        return pixels
    h = pixels.shape[2]
    if rows > 0:
        return torch.cat([pixels[:, :, :1].expand(-1, -1, rows, -1), pixels[:, :, : h - rows]], dim=2)
    return torch.cat([pixels[:, :, -rows:], pixels[:, :, -1:].expand(-1, -1, -rows, -1)], dim=2)


def ctc_collapse(logits: torch.Tensor, slots: int, fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC's greedy rule with static shapes: best id per step, repeats merged, blanks dropped.

    logits (B, T, V) -> ids (B, slots), `fill` after the last; mask (B, slots) 1 for real ids.
    Ids past `slots` are dropped.
    """
    return ctc_collapse_ids(logits.argmax(-1), slots, fill)


def ctc_collapse_ids(best: torch.Tensor, slots: int, fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ctc_collapse of a path of ids (B, T) (BLANK between letters) instead of scores."""
    prev = torch.cat([torch.full_like(best[:, :1], BLANK), best[:, :-1]], dim=1)
    keep = ((best != BLANK) & (best != prev)).to(torch.int64)  # (B, T)
    slot = torch.cumsum(keep, dim=1) - 1  # where each kept id goes
    where = torch.arange(slots, device=best.device).view(1, 1, -1)
    place = ((slot.unsqueeze(2) == where) & (keep.unsqueeze(2) == 1)).to(torch.int64)  # (B, T, slots)
    mask = place.sum(1)  # (B, slots) 1 where an id landed
    return (place * best.unsqueeze(2)).sum(1) + fill * (1 - mask), mask


def ctc_greedy(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Phoneme scores (B, T, V) -> phonemes (B, MAX_PHONES) ids with EOS after the last, mask
    (B, MAX_PHONES) 1 for real phonemes. Phonemes past MAX_PHONES - 1 are dropped (no lexicon
    word has them)."""
    phones, mask = ctc_collapse(logits, MAX_PHONES - 1, EOS)
    pad = torch.full_like(phones[:, :1], EOS)
    return torch.cat([phones, pad], dim=1), torch.cat([mask, torch.zeros_like(pad)], dim=1)
