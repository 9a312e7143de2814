"""An independent speech recogniser for round-trip intelligibility of single synthesized words.

PocketSphinx (the `pocketsphinx` wheel, its bundled en-us acoustic model and CMUdict) decodes
each clip against a finite-state grammar that accepts exactly one word of the given
vocabulary, with optional silence and fillers around it. It shares nothing with our model or
with espeak-ng, so a word it gets right was intelligible, not merely self-consistent.
"""

from __future__ import annotations

import re

import numpy as np

from its_mobile.constants import SAMPLE_RATE
from its_mobile.errors import MissingDependency

PAD_SECONDS = 0.2  # silence on both sides: without it, 31 instead of 38 of 100 espeak-ng words
# Synthetic audio holds digital silence (exact zeros), which PocketSphinx's features and
# silence model never saw; a faint Gaussian floor this far below the clip's RMS lifts espeak-ng
# words from 38 to 84 of 100 right (30..40 dB all do as well). The floor is seeded per clip,
# so a clip's word does not depend on the run or on the other clips of the call.
NOISE_SNR_DB = 35.0
_NOISE_MIN = 1.0 / 32767  # one int16 step, so that an all-zero clip gets a floor too
_ALT_PRON = re.compile(r"\(\d+\)$")  # CMUdict marks alternative pronunciations "word(2)"


def _decoder(vocabulary: list[str]):
    """A quiet decoder whose only search is a one-word grammar over `vocabulary`."""
    try:
        import pocketsphinx
    except ImportError as e:
        raise MissingDependency("the ASR needs pocketsphinx: pip install pocketsphinx") from e
    # lm=None: no language model, the grammar below is the only search; FATAL keeps stderr quiet.
    decoder = pocketsphinx.Decoder(lm=None, samprate=SAMPLE_RATE, loglevel="FATAL")
    unknown = [w for w in vocabulary if decoder.lookup_word(w) is None]
    if unknown:
        raise ValueError(f"words missing from the pronunciation dictionary: {unknown[:10]}")
    # A grammar built from transitions, not JSGF text: JSGF reserves words such as "public".
    p = 1.0 / len(vocabulary)
    fsg = decoder.create_fsg("vocabulary", 0, 1, [(0, 1, p, w) for w in vocabulary])
    decoder.add_fsg("vocabulary", fsg)
    decoder.activate_search("vocabulary")
    return decoder


def _pcm(wav: np.ndarray) -> bytes:
    """float32 [-1, 1] at 16 kHz -> padded, noise-floored little-endian int16 bytes."""
    wav = np.asarray(wav, np.float64).reshape(-1)
    rms = float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0
    pad = np.zeros(int(PAD_SECONDS * SAMPLE_RATE))
    audio = np.concatenate([pad, wav, pad])
    audio += np.random.default_rng(0).normal(0.0, max(rms * 10 ** (-NOISE_SNR_DB / 20), _NOISE_MIN), audio.shape)
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def recognize(wavs: list[np.ndarray], vocabulary: list[str]) -> list[str]:
    """The vocabulary word heard in each wav (float32 mono 16 kHz, one word), "" when none.

    The decoder is built once per call, so pass all the clips of one vocabulary together.
    Vocabulary words must be lowercase CMUdict words; a missing one raises ValueError.
    """
    vocabulary = list(dict.fromkeys(w.strip().lower() for w in vocabulary if w.strip()))
    if not vocabulary or not wavs:
        return [""] * len(wavs)
    allowed = set(vocabulary)
    decoder = _decoder(vocabulary)
    out = []
    for wav in wavs:
        decoder.start_utt()
        decoder.process_raw(_pcm(wav), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        word = _ALT_PRON.sub("", hyp.hypstr.strip()) if hyp is not None else ""
        out.append(word if word in allowed else "")
    return out
