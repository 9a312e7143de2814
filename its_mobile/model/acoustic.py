"""Acoustic model: phoneme ids -> durations -> length regulator -> log-mel frames.

Non-autoregressive (FastSpeech-like) with convolutions only, so every shape is static:
MAX_PHONES phoneme slots in, MAX_FRAMES frames out, with lengths as tensors.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from its_mobile.constants import LOG_MEL_FLOOR, MAX_FRAMES, MAX_PHONES, N_MELS
from its_mobile.model.dims import AcousticDims

SILENCE = math.log(LOG_MEL_FLOOR)


class ConvBlock(nn.Module):
    """x + pointwise(GELU(conv_k(LN(x)))), over (B, C, T), zeroing padded steps."""

    def __init__(self, width: int, kernel: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.point = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return (x + self.point(F.gelu(self.conv(h)))) * mask


class Acoustic(nn.Module):
    def __init__(self, dims: AcousticDims, n_phones: int):
        super().__init__()
        w = dims.width
        self.embed = nn.Embedding(n_phones, w)
        self.pos = nn.Parameter(torch.randn(1, w, MAX_PHONES) * 0.02)
        self.phone_blocks = nn.ModuleList(ConvBlock(w, dims.kernel) for _ in range(dims.phone_layers))
        self.dur_conv = nn.Conv1d(w, w, 3, padding=1)
        self.dur_out = nn.Conv1d(w, 1, 1)
        self.rel = nn.Parameter(torch.randn(1, w, 1) * 0.02)  # position within the phoneme
        self.mel_blocks = nn.ModuleList(ConvBlock(w, dims.kernel) for _ in range(dims.mel_layers))
        self.mel_out = nn.Conv1d(w, N_MELS, 1)

    def forward(
        self, phones: torch.Tensor, phone_mask: torch.Tensor, durations: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """phones (B, P) ids, phone_mask (B, P) 1 for real phonemes, durations (B, P) frames to
        force (training) or None to predict.

        -> mel (B, N_MELS, F) log-mel with silence past the end, log_dur (B, P) predicted
        log(1 + frames), durations (B, P) used, n_frames (B,).
        """
        m = phone_mask.unsqueeze(1).float()  # (B, 1, P)
        h = (self.embed(phones).transpose(1, 2) + self.pos) * m  # (B, w, P)
        for block in self.phone_blocks:
            h = block(h, m)
        log_dur = self.dur_out(F.gelu(self.dur_conv(h))).squeeze(1) * phone_mask  # (B, P)
        if durations is None:
            durations = (torch.exp(log_dur) - 1.0).round().clamp(min=0.0) * phone_mask
        durations = durations.float()
        ends = torch.cumsum(durations, dim=1)  # (B, P)
        starts = ends - durations
        t = torch.arange(MAX_FRAMES, dtype=torch.float32, device=phones.device).view(1, -1, 1)  # (1, F, 1)
        align = ((t >= starts.unsqueeze(1)) & (t < ends.unsqueeze(1))).float()  # (B, F, P)
        frames = h @ align.transpose(1, 2)  # (B, w, F)
        frame_start = (align @ starts.unsqueeze(2)).squeeze(2)  # (B, F)
        frame_dur = (align @ durations.unsqueeze(2)).squeeze(2)
        rel = (t.squeeze(2) - frame_start) / frame_dur.clamp(min=1.0)  # (B, F) in [0, 1)
        frame_mask = align.sum(2, keepdim=True).transpose(1, 2)  # (B, 1, F)
        x = (frames + self.rel * rel.unsqueeze(1)) * frame_mask
        for block in self.mel_blocks:
            x = block(x, frame_mask)
        mel = self.mel_out(x) * frame_mask + SILENCE * (1 - frame_mask)
        n_frames = frame_mask.sum((1, 2)).to(torch.int64)
        return mel, log_dur, durations, n_frames
