"""Run the model on images: phonemes (as espeak-ng IPA) and a waveform per image."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from its_mobile.data.dataset import phones_to_ipa
from its_mobile.model.its import ITS
from its_mobile.model.speaker import ALPHABET


@dataclass
class Spoken:
    ipa: str  # predicted phonemes, espeak-ng en-us IPA, stress marks included
    phonemes: list[int]  # ids up to the end marker
    audio: np.ndarray  # float32 at SAMPLE_RATE
    mel: np.ndarray  # (N_MELS, frames) log-mel
    durations: np.ndarray  # frames per predicted phoneme
    ms: float  # model time for this image (batch time / batch size)
    letters: str | None = None  # what a model with a speaker read (None: its encoder reads phonemes)


@torch.inference_mode()
def speak_pixels(model: ITS, inventory: list[str], images: np.ndarray) -> list[Spoken]:
    """images (N, IMG_H, IMG_W) uint8 -> one Spoken each (one forward pass for the batch)."""
    x = torch.from_numpy(np.asarray(images, np.float32)).unsqueeze(1)
    t = time.perf_counter()
    r = model.run(x)
    ms = (time.perf_counter() - t) * 1000 / len(images)
    out = []
    for k in range(len(images)):
        n = int(r["n_phonemes"][k])
        ids = r["phonemes"][k, :n].tolist()
        out.append(
            Spoken(
                ipa=phones_to_ipa(ids, inventory),
                phonemes=ids,
                audio=r["waveform"][k, : int(r["n_samples"][k])].numpy(),
                mel=r["mel"][k, :, : int(r["n_frames"][k])].numpy(),
                durations=r["durations"][k, :n].numpy(),
                ms=ms,
                letters=None if "letters" not in r else
                "".join(ALPHABET[i - 1] for i in r["letters"][k, : int(r["n_letters"][k])].tolist()),
            )
        )
    return out
