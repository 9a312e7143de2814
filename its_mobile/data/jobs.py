"""The parts of data generation that run in worker processes: phonemize words, render word
images, speak words.

Torch-free on purpose: a spawned worker imports only this (numpy, PIL, scipy, espeak-ng) and
starts in a fraction of a second. Importing torch cost each worker about 2 s before its first
job, which kept 2 workers short of twice the speed of one; the mel spectrograms of the spoken
words are computed by the parent instead (dataset.py).
"""

from __future__ import annotations

import numpy as np

from its_mobile.constants import HOP, IMG_H, IMG_W, MAX_FRAMES
from its_mobile.data import espeak, render
from its_mobile.data.audio import to_model_rate


def phonemize_chunk(words: list[str]) -> list[tuple[str, ...]]:
    return [espeak.phonemize(w) for w in words]


def render_chunk(args) -> np.ndarray:
    """Images start..stop-1 of one split; each is a pure function of (seed, split_id, index)."""
    seed, split_id, start, stop, words, fonts, noisy_share = args
    out = np.empty((stop - start, IMG_H, IMG_W), np.uint8)
    for k, i in enumerate(range(start, stop)):
        rng = np.random.default_rng([seed, split_id, i])
        font = fonts[int(rng.integers(len(fonts)))]
        noisy = rng.random() < noisy_share
        out[k] = render.render(words[k], font, rng, noisy)
    return out


def speak_chunk(words: list[str]) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """(durations in mel frames, float32 audio at SAMPLE_RATE padded to whole frames) per word;
    None for a word longer than MAX_FRAMES or one whose audio espeak-ng does not time phoneme by
    phoneme (rare: the word is left out of the speech set, not the run). The chunk starts from a freshly loaded espeak-ng, so
    its samples do not depend on what the process spoke before (see espeak.restart)."""
    espeak.restart()
    out = []
    for w in words:
        try:
            s = espeak.speak(w)
        except ValueError:
            out.append(None)
            continue
        audio = to_model_rate(s.audio)
        frames = -(-len(audio) // HOP)
        if frames > MAX_FRAMES:
            out.append(None)
            continue
        bounds = np.round(s.starts * (320 / 441) / HOP).astype(np.int64)
        durations = np.diff(np.append(np.minimum(bounds, frames), frames))
        out.append((durations.astype(np.int16), np.pad(audio, (0, frames * HOP - len(audio)))))
    return out
