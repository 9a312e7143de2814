"""Audio helpers without torch (data-generation workers import them): resampling espeak-ng's
audio to the model's rate, and 16-bit wav files. Log-mel spectrograms are in mel.py."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from its_mobile.constants import ESPEAK_RATE, SAMPLE_RATE


def to_model_rate(audio_int16: np.ndarray) -> np.ndarray:
    """espeak-ng's 22050 Hz int16 audio as float32 in [-1, 1] at SAMPLE_RATE (16000 = 22050 * 320/441)."""
    # Imported here: scipy.signal takes about a second to import, and a data worker that only
    # renders images never needs it.
    from scipy.signal import resample_poly

    x = audio_int16.astype(np.float32) / 32768.0
    return resample_poly(x, 320, 441).astype(np.float32) if ESPEAK_RATE != SAMPLE_RATE else x


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
