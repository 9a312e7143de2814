"""espeak-ng through its C API: IPA phonemes of a word and speech with exact phoneme timings.

Phoneme events report where each phoneme starts in the audio, so durations need no aligner.
The library comes from the `espeakng-loader` wheel (it carries libespeak-ng and its data).
"""

from __future__ import annotations

import ctypes
import functools
import unicodedata
from dataclasses import dataclass

import numpy as np

from its_mobile.constants import ESPEAK_RATE, VOICE
from its_mobile.errors import MissingDependency

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002  # phoneme events carry IPA names, like --ipa prints
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PHONEMES_IPA = 0x02
_SEPARATOR = "_"


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Speech:
    """espeak-ng's rendering of one word at ESPEAK_RATE."""

    phonemes: tuple[str, ...]  # IPA, stress marks attached to their vowel: ("ɹ", "ˈiː", ...)
    audio: np.ndarray  # int16 (n,)
    starts: np.ndarray  # int (len(phonemes),) first sample of each phoneme; starts[0] == 0


class _Engine:
    """The process-wide espeak-ng instance (the C library holds global state)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader

            lib_path, data_path = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
        except ImportError as e:
            raise MissingDependency("espeak-ng is missing: pip install espeakng-loader") from e
        self.lib = ctypes.CDLL(lib_path)
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA
        )
        if rate != ESPEAK_RATE:
            raise MissingDependency(f"espeak-ng failed to start (rate {rate})")
        if self.lib.espeak_SetVoiceByName(VOICE.encode()) != 0:
            raise MissingDependency(f"espeak-ng has no voice {VOICE!r}")
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _Callback(self._on_audio)  # kept alive: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                self._events.append((events[i].sample, events[i].id.string.decode("utf-8", "replace")))
            i += 1
        return 0

    def phonemes(self, word: str) -> tuple[str, ...]:
        text = ctypes.c_char_p(word.encode())
        out = self.lib.espeak_TextToPhonemes(ctypes.pointer(text), 1, _PHONEMES_IPA | ord(_SEPARATOR) << 8)
        ipa = (out or b"").decode().strip()
        return tuple(p for p in ipa.split(_SEPARATOR) if p)

    def speak(self, word: str) -> Speech:
        phonemes = self.phonemes(word)
        self._chunks, self._events = [], []
        text = word.encode() + b"\0"
        self.lib.espeak_Synth(text, len(text), 0, 0, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        # Pauses come as phoneme events with an empty name; they join the phoneme before them.
        timed = [(s, p) for s, p in self._events if p]
        if len(timed) != len(phonemes):
            timed = _join_modifiers(timed)
        if len(timed) != len(phonemes) or not phonemes:
            raise ValueError(f"espeak-ng timing does not match phonemes for {word!r}")
        starts = np.array([0] + [s for s, _ in timed[1:]], dtype=np.int64)
        return Speech(phonemes, audio.astype(np.int16), starts)


def _join_modifiers(timed: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Synthesis can time a modifier on its own ('ɡ', 'ʲ' for 'argyll') where the phoneme string
    writes one phoneme ('ɡʲ'): such an event belongs to the phoneme before it."""
    out: list[tuple[int, str]] = []
    for sample, name in timed:
        if out and all(unicodedata.category(c) in ("Lm", "Mn", "Sk") for c in name):
            out[-1] = (out[-1][0], out[-1][1] + name)
        else:
            out.append((sample, name))
    return out


@functools.cache
def _engine() -> _Engine:
    return _Engine()


def phonemize(word: str) -> tuple[str, ...]:
    """IPA phonemes of `word` for the en-us voice (what `espeak-ng -v en-us --ipa` prints, split)."""
    return _engine().phonemes(word)


def speak(word: str) -> Speech:
    """espeak-ng's audio for `word` with the first sample of each phoneme.

    Not bit-exact between calls: espeak-ng carries state from one utterance to the next, so a
    word's length can vary by a few samples. After restart(), the same words spoken in the same
    order give the same samples in any process.
    """
    return _engine().speak(word)


def restart() -> None:
    """Unload libespeak-ng and let the next call load it afresh: a clean copy of its state.

    No API call resets that state: seeding its random generator (espeak_ng_SetRandSeed and
    libc srand), re-selecting the voice, espeak_Cancel, and Terminate + Initialize were all
    tried, and the next utterance still differed. Unloading the library resets its static data;
    it takes about 5 ms.
    """
    import _ctypes

    if _engine.cache_info().currsize:
        lib = _engine().lib
        lib.espeak_Terminate()
        _engine.cache_clear()
        _ctypes.dlclose(lib._handle)
