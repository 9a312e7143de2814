"""Vocoder options on the same espeak-ng mels: the learned iSTFT vocoder vs Griffin-Lim.

Both get espeak-ng's log-mel of the same N OOV words (never trained on); we compare
one-thread latency per word, MCD against espeak-ng's audio, and pocketsphinx accuracy on each
relative to its accuracy on espeak-ng's own audio (same words, same grammar).

    python bench/bench_vocoder.py --checkpoint runs/full/student_its.safetensors --n 200
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from common import machine

from its_mobile.checkpoint import load_model
from its_mobile.constants import HOP, MAX_FRAMES, N_FFT, SAMPLE_RATE
from its_mobile.data import espeak, lexicon
from its_mobile.data.audio import to_model_rate
from its_mobile.data.mel import log_mel, mel_basis
from its_mobile.evaluate.asr import recognize
from its_mobile.evaluate.metrics import speech_distances
from its_mobile.model.acoustic import SILENCE


def griffin_lim(mel: torch.Tensor, iters: int) -> torch.Tensor:
    """Log-mel (N_MELS, T) -> waveform: pseudo-inverse mel filters, then `iters` rounds of
    Griffin-Lim phase recovery at the mel's own STFT settings."""
    mel = torch.cat([mel, torch.full_like(mel[:, :1], SILENCE)], dim=1)  # the STFT's extra end frame
    mag = (torch.linalg.pinv(mel_basis()) @ torch.exp(mel)).clamp(min=0)
    win = torch.hann_window(N_FFT)
    phase = torch.exp(2j * torch.pi * torch.rand(mag.shape, generator=torch.Generator().manual_seed(0)))
    n = (mel.shape[1] - 1) * HOP
    for _ in range(iters):
        wav = torch.istft(mag * phase, N_FFT, HOP, window=win, length=n)
        spec = torch.stft(wav, N_FFT, HOP, window=win, return_complex=True)
        phase = spec / spec.abs().clamp(min=1e-8)
    return torch.istft(mag * phase, N_FFT, HOP, window=win, length=n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--gl-iters", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.checkpoint)
    words = [w for w in lexicon.load_words() if lexicon.is_oov(w)][: args.n * 2]
    refs, mels = [], []
    for w in words:
        a = to_model_rate(espeak.speak(w).audio)
        frames = -(-len(a) // HOP)
        if frames > MAX_FRAMES:
            continue
        a = np.pad(a, (0, frames * HOP - len(a)))
        refs.append(a)
        mels.append(log_mel(torch.from_numpy(a))[:, :frames])
        if len(refs) == args.n:
            break
    words = words[: len(refs)]
    rows = {}
    options = {
        "learned iSTFT (ours)": lambda m: model.vocoder(
            torch.nn.functional.pad(m, (0, MAX_FRAMES - m.shape[1]), value=SILENCE).unsqueeze(0)
        )[0, : m.shape[1] * HOP],
        f"Griffin-Lim x{args.gl_iters}": lambda m: griffin_lim(m, args.gl_iters),
    }
    vocab = sorted(set(words) | set(lexicon.load_words()[::60]))
    heard_ref = recognize(refs, vocab)
    acc_ref = np.mean([h == w for h, w in zip(heard_ref, words)])
    for name, fn in options.items():
        wavs, times = [], []
        with torch.inference_mode():
            for m in mels:
                t = time.perf_counter()
                wavs.append(fn(m).numpy())
                times.append((time.perf_counter() - t) * 1000)
        heard = recognize(wavs, vocab)
        acc = np.mean([h == w for h, w in zip(heard, words)])
        mcd = np.mean([speech_distances(w, r)[1] for w, r in zip(wavs, refs)])
        rows[name] = {"ms_p50": float(np.median(times)), "mcd_db": float(mcd), "asr": float(acc),
                      "intelligibility": float(acc / acc_ref)}
    print(json.dumps({"machine": machine(), "n": len(words), "asr_espeak": float(acc_ref), "grammar": len(vocab), "options": rows}, indent=1))


if __name__ == "__main__":
    main()
