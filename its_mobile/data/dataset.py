"""Generate and load the training and evaluation data (`its-mobile data --n N --out DIR`).

Layout of DIR (numpy .npy files, memory-mapped when read):
  meta.json                     seed, sizes, phoneme inventory, fonts of each split
  words.txt                     every lexicon word kept, one per line (index = word id)
  word_phones.npy   int16 (W, MAX_PHONES)  phoneme ids, EOS after the last phoneme
  word_oov.npy      bool  (W,)             held-out words, never trained on
  {split}_images.npy uint8 (N, IMG_H, IMG_W), {split}_words.npy int32 (N,)
      splits: train; eval_iv_clean, eval_iv_noisy (training words, held-out fonts);
      eval_oov_clean, eval_oov_noisy (held-out words, held-out fonts)
  speech_words.npy int32 (S,), speech_durations.npy int16 (S, MAX_PHONES) in mel frames,
  speech_mel.npy float16 (sum of frames, N_MELS), speech_mel_offsets.npy int64 (S + 1)
  speech_audio.npy int16 (sum of samples), for the first vocoder words; offsets = mel offsets x HOP

Every sample is a pure function of (seed, split, index), so the output does not depend on
how many worker processes made it.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from its_mobile.constants import EOS, HOP, IMG_H, IMG_W, MAX_FRAMES, MAX_PHONES, N_MELS, N_SPECIAL, PAD
from its_mobile.data import espeak, lexicon, render
from its_mobile.data.audio import log_mel, to_model_rate
from its_mobile.errors import BadInput

FORMAT_VERSION = 1
EVAL_SPLITS = ("eval_iv_clean", "eval_iv_noisy", "eval_oov_clean", "eval_oov_noisy")
_SPLIT_ID = {"train": 0, **{s: i + 1 for i, s in enumerate(EVAL_SPLITS)}}
NOISY_SHARE = 0.6  # of training images


@dataclass(frozen=True)
class DataSpec:
    n: int = 200_000  # training images
    n_eval: int = 200  # images per evaluation split
    n_speech: int = 30_000  # words with mel and duration targets
    n_audio: int = 4_000  # of those, words whose audio is kept for the vocoder
    seed: int = 0


def phoneme_inventory(phones: list[tuple[str, ...]]) -> list[str]:
    """Specials then every phoneme seen, sorted: ids are stable for a given lexicon."""
    return ["<pad>", "<eos>"] + sorted({p for ps in phones for p in ps})


def encode(phones: tuple[str, ...], index: dict[str, int]) -> np.ndarray:
    ids = np.full(MAX_PHONES, EOS, np.int16)
    ids[: len(phones)] = [index[p] for p in phones]
    return ids


def _lexicon() -> tuple[list[str], list[tuple[str, ...]]]:
    words, phones = [], []
    for w in lexicon.load_words():
        p = espeak.phonemize(w)
        if lexicon.fits(p) and not any(" " in x for x in p):  # a space: espeak-ng reads two words
            words.append(w)
            phones.append(p)
    return words, phones


def _render_chunk(args) -> np.ndarray:
    seed, split, start, stop, word_ids, words, fonts, noisy_share = args
    out = np.empty((stop - start, IMG_H, IMG_W), np.uint8)
    for k, i in enumerate(range(start, stop)):
        rng = np.random.default_rng([seed, _SPLIT_ID[split], i])
        font = fonts[int(rng.integers(len(fonts)))]
        noisy = rng.random() < noisy_share
        out[k] = render.render(words[word_ids[k]], font, rng, noisy)
    return out


def _speech_chunk(words: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """(durations in frames, log-mel (frames, N_MELS), int16 audio at SAMPLE_RATE) per word."""
    out = []
    for w in words:
        s = espeak.speak(w)
        audio = to_model_rate(s.audio)
        frames = -(-len(audio) // HOP)
        if frames > MAX_FRAMES:
            out.append(None)
            continue
        audio = np.pad(audio, (0, frames * HOP - len(audio)))
        mel = log_mel(torch.from_numpy(audio))[:, :frames].T.numpy()
        bounds = np.round(s.starts * (320 / 441) / HOP).astype(np.int64)
        durations = np.diff(np.append(np.minimum(bounds, frames), frames))
        out.append((durations.astype(np.int16), mel.astype(np.float16), (audio * 32767).astype(np.int16)))
    return out


def _one_thread() -> None:
    """Workers are the parallelism: torch's own threads would only fight over the cores."""
    torch.set_num_threads(1)


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(arr))


def generate(out: Path, spec: DataSpec, workers: int = 1, progress: bool = True) -> Path:
    """Write a complete data directory at `out` (built in a temporary sibling, then renamed)."""
    out = Path(out)
    if out.exists() and not (out / "meta.json").exists():
        raise BadInput(f"{out} exists and is not an its-mobile data directory")
    tmp = out.with_name(out.name + ".partial")
    # An interrupted run of the same spec resumes: its finished splits are kept.
    spec_json = json.dumps(asdict(spec), sort_keys=True)
    if not (tmp / "spec.json").is_file() or (tmp / "spec.json").read_text() != spec_json:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "spec.json").write_text(spec_json)

    words, phones = _lexicon()
    inventory = phoneme_inventory(phones)
    index = {p: i for i, p in enumerate(inventory)}
    oov = np.array([lexicon.is_oov(w) for w in words])
    (tmp / "words.txt").write_text("\n".join(words) + "\n")
    _save(tmp / "word_phones.npy", np.stack([encode(p, index) for p in phones]))
    _save(tmp / "word_oov.npy", oov)
    iv_ids, oov_ids = np.flatnonzero(~oov), np.flatnonzero(oov)
    train_fonts, eval_fonts = render.find_fonts()

    plans = {"train": (spec.n, iv_ids, train_fonts, NOISY_SHARE)}
    for split in EVAL_SPLITS:
        pool_ids = oov_ids if "oov" in split else iv_ids
        plans[split] = (spec.n_eval, pool_ids, eval_fonts, 1.0 if split.endswith("noisy") else 0.0)

    with mp.get_context("spawn").Pool(workers, initializer=_one_thread) if workers > 1 else _Inline() as pool:
        for split, (n, pool_ids, fonts, noisy_share) in plans.items():
            if (tmp / f"{split}_words.npy").is_file():
                continue
            # Eval splits of a seed show the same words clean and noisy (one stream per word pool).
            stream = [spec.seed, 98] if split == "train" else [spec.seed, 99, int("oov" in split)]
            word_ids = pool_ids[np.random.default_rng(stream).integers(len(pool_ids), size=n)]
            images = np.lib.format.open_memmap(tmp / f"{split}_images.npy", "w+", np.uint8, (n, IMG_H, IMG_W))
            chunk = 512
            jobs = [
                (spec.seed, split, a, min(a + chunk, n), word_ids[a : a + chunk], words, fonts, noisy_share)
                for a in range(0, n, chunk)
            ]
            bar = tqdm(total=n, desc=f"images {split}", unit="img", disable=not progress)
            for job, arr in zip(jobs, pool.imap(_render_chunk, jobs)):
                images[job[2] : job[3]] = arr
                bar.update(len(arr))
            bar.close()
            images.flush()
            del images
            _save(tmp / f"{split}_words.npy", word_ids.astype(np.int32))

        speech_rng = np.random.default_rng([spec.seed, 97])
        speech_ids = np.sort(speech_rng.choice(iv_ids, size=min(spec.n_speech, len(iv_ids)), replace=False))
        kept, durations, mels, audios = [], [], [], []
        chunks = [speech_ids[a : a + 256] for a in range(0, len(speech_ids), 256)]
        bar = tqdm(total=len(speech_ids), desc="speech", unit="word", disable=not progress)
        for ids, results in zip(chunks, pool.imap(_speech_chunk, [[words[i] for i in ids] for ids in chunks])):
            for i, r in zip(ids, results):
                if r is None:
                    continue
                d, mel, audio = r
                kept.append(i)
                durations.append(np.pad(d, (0, MAX_PHONES - len(d))))
                mels.append(mel)
                if len(audios) < spec.n_audio:
                    audios.append(audio)
            bar.update(len(ids))
        bar.close()

    offsets = np.cumsum([0] + [len(m) for m in mels]).astype(np.int64)
    _save(tmp / "speech_words.npy", np.array(kept, np.int32))
    _save(tmp / "speech_durations.npy", np.stack(durations).astype(np.int16))
    _save(tmp / "speech_mel.npy", np.concatenate(mels).astype(np.float16))
    _save(tmp / "speech_mel_offsets.npy", offsets)
    _save(tmp / "speech_audio.npy", np.concatenate(audios) if audios else np.zeros(0, np.int16))
    meta = {
        "format": FORMAT_VERSION,
        "spec": asdict(spec),
        "inventory": inventory,
        "n_words": len(words),
        "n_oov_words": int(oov.sum()),
        "n_speech": len(kept),
        "n_audio_words": len(audios),
        "fonts": {"train": [p.name for p in train_fonts], "eval": [p.name for p in eval_fonts]},
        "shapes": {"image": [IMG_H, IMG_W], "max_phones": MAX_PHONES, "max_frames": MAX_FRAMES, "n_mels": N_MELS},
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


class _Inline:
    """A pool of one that runs in this process (no spawn cost for small jobs)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap(self, fn, jobs):
        return map(fn, jobs)


@dataclass
class Data:
    """A loaded data directory: arrays are memory-mapped."""

    root: Path
    meta: dict
    words: list[str]
    word_phones: np.ndarray
    word_oov: np.ndarray

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images uint8 (N, IMG_H, IMG_W), word ids (N,)) of a split."""
        return (np.load(self.root / f"{name}_images.npy", mmap_mode="r"), np.load(self.root / f"{name}_words.npy"))

    def speech(self) -> dict[str, np.ndarray]:
        names = ("words", "durations", "mel", "mel_offsets", "audio")
        return {k: np.load(self.root / f"speech_{k}.npy", mmap_mode="r") for k in names}


def load(root: Path) -> Data:
    root = Path(root)
    try:
        meta = json.loads((root / "meta.json").read_text())
    except (OSError, ValueError) as e:
        raise BadInput(f"{root} is not an its-mobile data directory (run `its-mobile data`)") from e
    if meta.get("format") != FORMAT_VERSION:
        raise BadInput(f"{root}: data format {meta.get('format')} is not {FORMAT_VERSION}; regenerate it")
    words = (root / "words.txt").read_text().split()
    return Data(root, meta, words, np.load(root / "word_phones.npy"), np.load(root / "word_oov.npy"))


def phones_to_ipa(ids, inventory: list[str]) -> str:
    """Phoneme ids up to the first EOS as espeak-ng IPA ("ɹˈiːdɪŋ")."""
    out = []
    for i in ids:
        i = int(i)
        if i == EOS:
            break
        if i >= N_SPECIAL and i != PAD:
            out.append(inventory[i])
    return "".join(out)
