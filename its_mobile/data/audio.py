"""Audio helpers shared by data generation, training losses and evaluation: resampling,
log-mel spectrograms and 16-bit wav files."""

from __future__ import annotations

import functools
import os
import wave
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly

from its_mobile.constants import ESPEAK_RATE, HOP, LOG_MEL_FLOOR, MEL_FMAX, MEL_FMIN, N_FFT, N_MELS, SAMPLE_RATE


def to_model_rate(audio_int16: np.ndarray) -> np.ndarray:
    """espeak-ng's 22050 Hz int16 audio as float32 in [-1, 1] at SAMPLE_RATE (16000 = 22050 * 320/441)."""
    x = audio_int16.astype(np.float32) / 32768.0
    return resample_poly(x, 320, 441).astype(np.float32) if ESPEAK_RATE != SAMPLE_RATE else x


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


def write_wav(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM mono wav, written to a temporary name and renamed so no half file is left."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    tmp = Path(str(path) + ".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit mono wav as float32 in [-1, 1] and its rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono wav")
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0, w.getframerate()
