"""`its-mobile eval`: how well the model reads and speaks held-out images.

Per split (in-vocabulary words in held-out fonts, OOV words; clean and noisy):
exact phoneme-sequence accuracy, phoneme error rate (PER), duration error against espeak-ng's
phoneme timings (words read exactly), mel L1 and mel-cepstral distortion (MCD) of the model's
audio against espeak-ng's after DTW alignment, and ASR round-trip intelligibility: pocketsphinx
accuracy on the model's audio divided by its accuracy on espeak-ng's audio, same words and
grammar.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm import tqdm

from its_mobile.constants import EOS, HOP, N_FFT, N_MELS, SAMPLE_RATE
from its_mobile.data import espeak
from its_mobile.data.audio import to_model_rate
from its_mobile.data.mel import log_mel
from its_mobile.data.dataset import EVAL_SPLITS, Data
from its_mobile.infer import speak_pixels
from its_mobile.model.its import ITS

ASR_DISTRACTORS = 1500  # extra lexicon words in the recogniser's grammar
_MCD_CONST = 10.0 / math.log(10.0) * math.sqrt(2.0)


def edit_distance(a: list, b: list) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def _dtw_path(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Optimal alignment of frame sequences a (n, d) and b (m, d) under Euclidean cost."""
    cost = np.linalg.norm(a[:, None] - b[None], axis=-1)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    path, i, j = [], n, m
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        step = np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]])
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    return path[::-1]


def _cepstrum(logmel: np.ndarray, n: int = 13) -> np.ndarray:
    """Mel cepstrum c1..c(n-1) per frame (DCT-II of the log-mel), (frames, n - 1)."""
    k = np.arange(N_MELS)
    dct = np.cos(np.pi / N_MELS * (k[None, :] + 0.5) * np.arange(1, n)[:, None])
    return (logmel.T @ dct.T) * math.sqrt(2.0 / N_MELS)


def speech_distances(model_audio: np.ndarray, ref_audio: np.ndarray) -> tuple[float, float]:
    """(mel L1, MCD in dB) of two waveforms at SAMPLE_RATE, DTW-aligned on the cepstrum."""
    # A word read as one short phoneme can be shorter than the STFT's reflect padding allows:
    # pad it with silence to one window.
    padded = [np.pad(np.asarray(a, np.float32), (0, max(0, N_FFT + 1 - len(a)))) for a in (model_audio, ref_audio)]
    mels = [log_mel(torch.from_numpy(a)).numpy() for a in padded]
    ceps = [_cepstrum(m) for m in mels]
    path = _dtw_path(ceps[0], ceps[1])
    i, j = np.array(path).T
    l1 = float(np.abs(mels[0][:, i] - mels[1][:, j]).mean())
    mcd = float(_MCD_CONST * np.sqrt(((ceps[0][i] - ceps[1][j]) ** 2).sum(1)).mean())
    return l1, mcd


def phoneme_lists(phones: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    """Each row of a static-shape read (ids, mask) trimmed to its length, as a list of ids."""
    return [p[: int(m.sum())].tolist() for p, m in zip(phones, mask)]


def targets(data: Data, word_ids: np.ndarray) -> list[list[int]]:
    """espeak-ng's phoneme ids of each word, without the end marker."""
    out = []
    for row in data.word_phones[word_ids]:
        row = row.tolist()
        out.append(row[: row.index(EOS)] if EOS in row else row)
    return out


def evaluate_split(model: ITS, inventory: list[str], data: Data, split: str, n: int | None, asr_vocab) -> dict:
    images, word_ids = data.split(split)
    if n is not None:
        images, word_ids = images[:n], word_ids[:n]
    words = [data.words[i] for i in word_ids]
    expected = targets(data, word_ids)
    spoken = []
    for a in range(0, len(images), 50):
        spoken += speak_pixels(model, inventory, np.asarray(images[a : a + 50]))
    exact = [s.phonemes == t for s, t in zip(spoken, expected)]
    errors = sum(edit_distance(s.phonemes, t) for s, t in zip(spoken, expected))
    dur_err, l1s, mcds, refs = [], [], [], []
    for word, s, ok in zip(tqdm(words, desc=f"speech {split}", leave=False), spoken, exact):
        ref = espeak.speak(word)
        ref_audio = to_model_rate(ref.audio)
        refs.append(ref_audio)
        if ok:
            bounds = np.round(ref.starts * (320 / 441) / HOP)
            ref_frames = np.diff(np.append(bounds, math.ceil(len(ref_audio) / HOP)))
            dur_err.append(float(np.abs(s.durations - ref_frames).mean()) * HOP / SAMPLE_RATE * 1000)
        if len(s.audio) >= HOP:
            l1, mcd = speech_distances(s.audio, ref_audio)
            l1s.append(l1)
            mcds.append(mcd)
    result = {
        "split": split,
        "n": len(words),
        "exact": float(np.mean(exact)),
        # A model with a speaker reads letters first: how often those are right tells reading
        # errors from pronouncing ones.
        "letters_exact": None if spoken[0].letters is None else float(np.mean([s.letters == w for s, w in zip(spoken, words)])),
        "per": errors / max(1, sum(len(t) for t in expected)),
        "duration_err_ms": float(np.mean(dur_err)) if dur_err else None,
        "mel_l1": float(np.mean(l1s)) if l1s else None,
        "mcd_db": float(np.mean(mcds)) if mcds else None,
        "ms_per_image": float(np.mean([s.ms for s in spoken])),
        "errors": [{"word": w, **({} if s.letters is None else {"letters": s.letters}), "ipa": s.ipa,
                    "expected": "".join(inventory[i] for i in t)}
                   for w, s, t, ok in zip(words, spoken, expected, exact) if not ok][:20],
    }
    if asr_vocab is not None:
        from its_mobile.evaluate.asr import recognize

        heard_model = recognize([s.audio for s in spoken], asr_vocab)
        heard_ref = recognize(refs, asr_vocab)
        acc_model = float(np.mean([h == w for h, w in zip(heard_model, words)]))
        acc_ref = float(np.mean([h == w for h, w in zip(heard_ref, words)]))
        result.update(asr_model=acc_model, asr_espeak=acc_ref,
                      intelligibility=acc_model / acc_ref if acc_ref > 0 else None)
    return result


def evaluate_model(model: ITS, inventory: list[str], data: Data, n: int | None = None, asr: bool = True) -> dict:
    vocab = None
    if asr:
        eval_words = {data.words[i] for s in EVAL_SPLITS for i in data.split(s)[1][:n]}
        rng = np.random.default_rng(0)
        extra = {data.words[i] for i in rng.choice(len(data.words), size=ASR_DISTRACTORS, replace=False)}
        vocab = sorted(eval_words | extra)
    splits = [evaluate_split(model, inventory, data, s, n, vocab) for s in EVAL_SPLITS]
    return {"splits": splits, "asr_grammar_words": len(vocab) if vocab else 0,
            "params": sum(p.numel() for p in model.parameters())}


def format_table(results: dict) -> str:
    cols = ("split", "n", "exact", "per", "duration_err_ms", "mel_l1", "mcd_db", "intelligibility", "letters_exact")
    head = (f"{'split':16} {'n':>5} {'exact':>7} {'PER':>7} {'dur ms':>7} {'mel L1':>7} {'MCD dB':>7} {'intell.':>8} "
            f"{'letters':>7}")
    lines = [head, "-" * len(head)]
    for r in results["splits"]:
        v = [r.get(c) for c in cols]
        fmt = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
        lines.append(f"{v[0]:16} {v[1]:5d} {fmt(v[2], '7.1%')} {fmt(v[3], '7.2%')} {fmt(v[4], '7.1f')} "
                     f"{fmt(v[5], '7.3f')} {fmt(v[6], '7.2f')} {fmt(v[7], '8.2f')} {fmt(v[8], '7.1%')}")
    lines.append(f"params {results['params']:,}; ASR grammar {results['asr_grammar_words']} words "
                 "(intelligibility = pocketsphinx accuracy on model audio / on espeak-ng audio; "
                 "letters = words whose letters a model with a speaker read exactly)")
    return "\n".join(lines)
