"""Log-mel spectrograms (torch): the acoustic model's targets, the vocoder's training loss and
the evaluation's mel distances all use this one definition."""

from __future__ import annotations

import functools

import numpy as np
import torch

from its_mobile.constants import HOP, LOG_MEL_FLOOR, MEL_FMAX, MEL_FMIN, N_FFT, N_MELS, SAMPLE_RATE


@functools.cache
def mel_basis(n_fft: int = N_FFT, n_mels: int = N_MELS) -> torch.Tensor:
    """Slaney-style triangular mel filters, (n_mels, n_fft // 2 + 1)."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, SAMPLE_RATE / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(MEL_FMIN), hz_to_mel(MEL_FMAX), n_mels + 2))
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    fb = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.tensor(fb, dtype=torch.float32)


def log_mel(wav: torch.Tensor) -> torch.Tensor:
    """Log-mel spectrogram, (..., samples) -> (..., N_MELS, samples // HOP + 1)."""
    shape = wav.shape
    spec = torch.stft(
        wav.reshape(-1, shape[-1]),
        N_FFT,
        HOP,
        window=torch.hann_window(N_FFT, device=wav.device),
        center=True,
        return_complex=True,
    ).abs()
    mel = mel_basis().to(wav.device) @ spec
    return torch.log(mel.clamp_min(LOG_MEL_FLOOR)).reshape(*shape[:-1], N_MELS, -1)
