"""Vocos-like vocoder: log-mel -> magnitude and phase per STFT frame -> inverse STFT.

The inverse STFT is a matmul with a fixed cosine/sine basis followed by an overlap-add of
shifted slices (no complex ops, no FFT), so it exports to every phone runtime. It runs at
VOC_SUBFRAMES STFT frames per mel frame. (As a conv_transpose1d over the same basis it was
the same maths, but XNNPACK's deconvolution made it ~90% of an exported model's time.)

The basis covers half a frame: with p = N/2 + m, cos(2 pi k p / N) = (-1)^k cos(2 pi k m / N)
and likewise sine, so the frame's second half is the first half's unwindowed sum over the
spectrum with every odd bin negated. One basis of N/2 rows, applied to the spectrum and to its
sign-alternated copy, then the two window halves: half the bytes (1 MB -> 0.5 MB in float32)
and half the multiply-adds, with no reversal op (which XNNPACK lacks). It is applied with
F.linear, and it and the window envelope are computed by traceable functions, so that an
ExecuTorch program can compute them at load instead of storing them (0.58 MB in float32).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from its_mobile.constants import HOP, MAX_FRAMES, N_MELS, VOC_HOP, VOC_N_FFT, VOC_SUBFRAMES
from its_mobile.model.dims import VocoderDims

N_BINS = VOC_N_FFT // 2 + 1
HALF = VOC_N_FFT // 2


class ISTFT(NamedTuple):
    basis: torch.Tensor  # (HALF, 2 * N_BINS): real and imaginary parts -> unwindowed samples 0..HALF-1
    signs: torch.Tensor  # (2, 2 * N_BINS): 1, and (-1)^k, per bin: the spectrum of each frame half
    window: torch.Tensor  # (2, HALF): the Hann window's two halves
    inv_env: torch.Tensor  # (mel_frames * HOP,): 1 / overlap-added squared windows


def _const(value: float) -> torch.Tensor:
    # A float scalar operand would do, but executorch 1.5.1 mis-orders the constants it lifts
    # from them in a method that writes a buffer (SpecViolationError at lowering).
    return torch.full((1,), value, dtype=torch.float64)


def fourier_basis() -> torch.Tensor:
    """ISTFT.basis: the inverse real DFT's first HALF samples, weights of F.linear. The angle's
    integer part is reduced mod N before it becomes a float (exact, and small enough for cos
    to be accurate), in ops that ExecuTorch's portable kernels run."""
    k = torch.arange(N_BINS)
    turns = ((torch.arange(HALF).unsqueeze(1) * k) % VOC_N_FFT).to(torch.float64)
    angle = turns * _const(2 * math.pi / VOC_N_FFT)
    # DC and Nyquist appear once in a real signal's spectrum, every other bin twice
    scale = (_const(2.0) - ((k == 0) | (k == N_BINS - 1)).to(torch.float64)) * _const(1 / VOC_N_FFT)
    return torch.cat([scale * torch.cos(angle), -scale * torch.sin(angle)], dim=1).float()


def _hann() -> torch.Tensor:
    """The periodic Hann window, sin^2(pi n / N), in float64."""
    s = torch.sin(torch.arange(VOC_N_FFT).to(torch.float64) * _const(math.pi / VOC_N_FFT))
    return s * s


def window_envelope(mel_frames: int = MAX_FRAMES) -> torch.Tensor:
    """ISTFT.inv_env: 1 / the overlap-added squared windows over mel_frames (torch.istft divides
    it out too), traceable like fourier_basis."""
    square = _hann() * _hann()
    frames = square.expand(1, mel_frames * VOC_SUBFRAMES, VOC_N_FFT)
    env = overlap_add(frames).flatten()[VOC_N_FFT // 2 : VOC_N_FFT // 2 + mel_frames * HOP]
    return torch.reciprocal(env.clamp(min=1e-3)).float()


def istft_basis(mel_frames: int = MAX_FRAMES) -> ISTFT:
    """The fixed tensors of the inverse STFT (see ISTFT and the module docstring)."""
    alternate = (-1.0) ** torch.arange(N_BINS, dtype=torch.float64)
    signs = torch.stack([torch.ones(2 * N_BINS, dtype=torch.float64), alternate.repeat(2)])
    return ISTFT(fourier_basis(), signs.float(), _hann().reshape(2, HALF).float(), window_envelope(mel_frames))


def overlap_add(frames: torch.Tensor) -> torch.Tensor:
    """(B, T', VOC_N_FFT) frames VOC_HOP apart -> (B, (T' + overlap - 1) * VOC_HOP) their sum,
    as shifted slices (XNNPACK ran conv_transpose1d 8x slower)."""
    b, t, _ = frames.shape
    overlap = VOC_N_FFT // VOC_HOP
    hops = frames.reshape(b, t, overlap, VOC_HOP)  # each frame's 4 hops
    return sum(F.pad(hops[:, :, j].reshape(b, t * VOC_HOP), (j * VOC_HOP, (overlap - 1 - j) * VOC_HOP))
               for j in range(overlap))


def overlap_add_frames(spec: torch.Tensor, istft: ISTFT) -> torch.Tensor:
    """(B, T', 2 * N_BINS) real and imaginary parts per frame -> (B, (T' + overlap - 1) * VOC_HOP)
    samples: each frame's windowed samples (one matmul for both halves), summed where frames
    overlap."""
    b, t, _ = spec.shape
    halves = F.linear(spec.unsqueeze(2) * istft.signs, istft.basis)  # (B, T', 2, HALF)
    return overlap_add((halves * istft.window).reshape(b, t, VOC_N_FFT))


class ConvNeXtBlock(nn.Module):
    def __init__(self, width: int, mlp_ratio: float):
        super().__init__()
        self.dw = nn.Conv1d(width, width, 7, padding=3, groups=width)
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, round(mlp_ratio * width))
        self.fc2 = nn.Linear(round(mlp_ratio * width), width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        h = self.norm(self.dw(x).transpose(1, 2))
        return x + self.fc2(F.gelu(self.fc1(h))).transpose(1, 2)


class Vocoder(nn.Module):
    def __init__(self, dims: VocoderDims):
        super().__init__()
        w = dims.width
        self.inp = nn.Conv1d(N_MELS, w, 7, padding=3)
        self.blocks = nn.ModuleList(ConvNeXtBlock(w, dims.mlp_ratio) for _ in range(dims.layers))
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, VOC_SUBFRAMES * 2 * N_BINS)
        for name, value in istft_basis()._asdict().items():
            self.register_buffer(name, value, persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, N_MELS, T) -> waveform (B, T * HOP)."""
        b, _, t = mel.shape
        x = self.inp(mel)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.norm(x.transpose(1, 2)))  # (B, T, SUB * 2 * BINS)
        x = x.reshape(b, t * VOC_SUBFRAMES, 2, N_BINS)  # (B, T', 2, BINS) one STFT frame per row
        mag = torch.exp(x[:, :, 0].clamp(max=6.0))
        phase = x[:, :, 1]
        spec = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=2)  # (B, T', 2 * BINS)
        wav = overlap_add_frames(spec, ISTFT(self.basis, self.signs, self.window, self.inv_env))
        # Training crops are shorter than MAX_FRAMES; their last window overlaps fewer frames.
        inv_env = self.inv_env if t == MAX_FRAMES else window_envelope(t).to(wav.device)
        return wav[:, VOC_N_FFT // 2 : VOC_N_FFT // 2 + t * HOP] * inv_env
