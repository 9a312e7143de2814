"""The word list (CMUdict, shipped inside the pocketsphinx wheel), its in-vocabulary /
out-of-vocabulary split, and the phoneme inventory.

The split is a pure function of the word (a hash), so it is the same on every machine, for
every seed and however much data is made: an OOV word is never trained on.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from its_mobile.constants import MAX_PHONES, MAX_WORD_LEN
from its_mobile.errors import MissingDependency

OOV_PERCENT = 3  # share of the lexicon held out to measure pronunciation of unseen spellings
_WORD = re.compile(r"[a-z]{2,%d}" % MAX_WORD_LEN)


def cmudict_path() -> Path:
    try:
        import pocketsphinx
    except ImportError as e:
        raise MissingDependency("the lexicon needs pocketsphinx: pip install pocketsphinx") from e
    return Path(pocketsphinx.__file__).parent / "model" / "en-us" / "cmudict-en-us.dict"


def load_words() -> list[str]:
    """Sorted, de-duplicated lowercase alphabetic CMUdict words of 2..MAX_WORD_LEN letters."""
    words = set()
    with open(cmudict_path(), encoding="utf-8") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if _WORD.fullmatch(head):
                words.add(head)
    return sorted(words)


def is_oov(word: str) -> bool:
    """True for the held-out words (OOV_PERCENT of the lexicon, chosen by hash)."""
    return int(hashlib.sha1(word.encode()).hexdigest()[:8], 16) % 100 < OOV_PERCENT


def fits(phonemes: tuple[str, ...]) -> bool:
    """A phoneme sequence that fits the model's slots (one is kept for the end marker)."""
    return 0 < len(phonemes) < MAX_PHONES
