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

import hashlib
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
from its_mobile.data import jobs, lexicon, render
from its_mobile.data.mel import log_mel
from its_mobile.errors import BadInput

FORMAT_VERSION = 1
EVAL_SPLITS = ("eval_iv_clean", "eval_iv_noisy", "eval_oov_clean", "eval_oov_noisy")
_SPLIT_ID = {"train": 0, **{s: i + 1 for i, s in enumerate(EVAL_SPLITS)}}
NOISY_SHARE = 0.6  # of training images
SPEECH_ARRAYS = ("words", "durations", "mel", "mel_offsets", "audio")
# Words per speech job: small, so that both workers stay busy to the end (jobs of 256 words
# left one idle), and fixed, because the samples depend on the chunk (see jobs.speak_chunk).
SPEECH_CHUNK = 32
SHARD_FILE = "shard.json"  # a shard's manifest: spec, index, meta and the sha256 of every file


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


def _lexicon(pool) -> tuple[list[str], list[tuple[str, ...]]]:
    """Lexicon words that fit the model, with their phonemes (phonemized by the pool's workers)."""
    everything = list(lexicon.load_words())
    chunks = [everything[a : a + 4096] for a in range(0, len(everything), 4096)]
    words, phones = [], []
    for chunk, result in zip(chunks, pool.imap(jobs.phonemize_chunk, chunks)):
        for w, p in zip(chunk, result):
            if lexicon.fits(p) and not any(" " in x for x in p):  # a space: espeak-ng reads two words
                words.append(w)
                phones.append(p)
    return words, phones


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(arr))


def _part(n: int, shard: tuple[int, int]) -> tuple[int, int]:
    """Shard I of K holds items [n*I//K, n*(I+1)//K) of a list of n."""
    i, k = shard
    return n * i // k, n * (i + 1) // k


def draw_words(seed: int, split: str, pool_ids: np.ndarray, n: int) -> np.ndarray:
    """The ids of the n words a split of this seed shows, drawn from pool_ids."""
    # Eval splits of a seed show the same words clean and noisy (one stream per word pool).
    stream = [seed, 98] if split == "train" else [seed, 99, int("oov" in split)]
    return pool_ids[np.random.default_rng(stream).integers(len(pool_ids), size=n)]


def image_jobs(seed: int, split: str, words: list[str], word_ids: np.ndarray, lo: int,
               fonts: list[Path], noisy_share: float) -> list[tuple]:
    """jobs.render_chunk's 512-image jobs for a split's images lo .. lo + len(word_ids)."""
    # Each job carries only its own words: the whole lexicon (116k strings) pickled into
    # every job kept the parent process busy and the workers waiting.
    hi = lo + len(word_ids)
    return [(seed, _SPLIT_ID[split], a, min(a + 512, hi), [words[i] for i in word_ids[a - lo : a - lo + 512]],
             fonts, noisy_share) for a in range(lo, hi, 512)]


def generate(out: Path, spec: DataSpec, workers: int = 1, progress: bool = True,
             shard: tuple[int, int] = (0, 1)) -> Path:
    """Write a complete data directory at `out` (built in a temporary sibling, then renamed).

    With shard=(I, K), write shard I of K instead: the same samples' slice of every split and
    of the speech words, with SHARD_FILE in place of meta.json; `merge_shards` joins K shards
    into the bytes one run writes."""
    out = Path(out)
    shard_index, shard_count = shard
    if not 0 <= shard_index < shard_count:
        raise BadInput(f"shard index {shard_index} is out of range for {shard_count} shards (0..{shard_count - 1})")
    done_file = "meta.json" if shard_count == 1 else SHARD_FILE
    if out.exists() and not (out / done_file).exists():
        raise BadInput(f"{out} exists and is not an its-mobile data {'directory' if shard_count == 1 else 'shard'}")
    tmp = out.with_name(out.name + ".partial")
    # An interrupted run of the same spec resumes: its finished splits are kept.
    spec_json = json.dumps({**asdict(spec), "shard": list(shard)}, sort_keys=True)
    if not (tmp / "spec.json").is_file() or (tmp / "spec.json").read_text() != spec_json:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "spec.json").write_text(spec_json)

    # Spawned workers (each with its own espeak-ng) also phonemize the lexicon, the serial part.
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else _Inline()
    words, phones = _lexicon(pool)
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

    with pool:
        # One stream of 512-image jobs over every split still to make, so that the small
        # evaluation splits do not leave a worker idle at each split's end.
        images, left, job_list = {}, {}, []
        for split, (n, pool_ids, fonts, noisy_share) in plans.items():
            if (tmp / f"{split}_words.npy").is_file():
                continue
            word_ids = draw_words(spec.seed, split, pool_ids, n)
            lo, hi = _part(n, shard)
            word_ids = word_ids[lo:hi]
            images[split] = (np.lib.format.open_memmap(tmp / f"{split}_images.npy", "w+", np.uint8,
                                                       (hi - lo, IMG_H, IMG_W)), word_ids, lo)
            split_jobs = [(split, job) for job in image_jobs(spec.seed, split, words, word_ids, lo, fonts, noisy_share)]
            left[split] = len(split_jobs)
            job_list += split_jobs
        bar = tqdm(total=sum(len(w) for _, w, _ in images.values()), desc="images", unit="img", disable=not progress)
        for (split, job), arr in zip(job_list, pool.imap(jobs.render_chunk, [j for _, j in job_list])):
            array, word_ids, lo = images[split]
            array[job[2] - lo : job[3] - lo] = arr
            bar.update(len(arr))
            left[split] -= 1
            if not left[split]:  # a finished split is kept if the run is interrupted later
                array.flush()
                del images[split], array
                _save(tmp / f"{split}_words.npy", word_ids.astype(np.int32))
        bar.close()

        speech_rng = np.random.default_rng([spec.seed, 97])
        speech_ids = np.sort(speech_rng.choice(iv_ids, size=min(spec.n_speech, len(iv_ids)), replace=False))
        # Fixed chunks of words, each spoken from a fresh espeak-ng (jobs.speak_chunk): a shard
        # takes whole chunks, so its speech is the same bytes as in one run, whoever speaks it.
        chunks = [speech_ids[a : a + SPEECH_CHUNK] for a in range(0, len(speech_ids), SPEECH_CHUNK)]
        chunks = chunks[slice(*_part(len(chunks), shard))]
        speech_ids = np.concatenate(chunks) if chunks else speech_ids[:0]
        # A shard keeps every word's audio: which words are the first n_audio kept is known at merge.
        max_audio = spec.n_audio if shard_count == 1 else len(speech_ids)
        kept, durations, mels, audios = [], [], [], []
        bar = tqdm(total=len(speech_ids), desc="speech", unit="word", disable=not progress)
        for ids, results in zip(chunks, pool.imap(jobs.speak_chunk, [[words[i] for i in ids] for ids in chunks])):
            for i, r in zip(ids, results):
                if r is None:
                    continue
                d, audio = r
                kept.append(i)
                durations.append(np.pad(d, (0, MAX_PHONES - len(d))))
                mels.append(log_mel(torch.from_numpy(audio))[:, : len(audio) // HOP].T.numpy().astype(np.float16))
                if len(audios) < max_audio:
                    audios.append((audio * 32767).astype(np.int16))
            bar.update(len(ids))
        bar.close()

    offsets = np.cumsum([0] + [len(m) for m in mels]).astype(np.int64)
    _save(tmp / "speech_words.npy", np.array(kept, np.int32))
    _save(tmp / "speech_durations.npy", np.stack(durations).astype(np.int16) if durations
          else np.zeros((0, MAX_PHONES), np.int16))
    _save(tmp / "speech_mel.npy", np.concatenate(mels).astype(np.float16) if mels else np.zeros((0, N_MELS), np.float16))
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
    if shard_count == 1:
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    else:
        files = {f.name: _sha256(f) for f in sorted(tmp.iterdir()) if f.name != "spec.json"}
        (tmp / SHARD_FILE).write_text(json.dumps({"format": FORMAT_VERSION, "shard": list(shard), "spec": asdict(spec),
                                                  "meta": meta, "files": files}, indent=1))
    (tmp / "spec.json").unlink()
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_shards(dirs: list[Path]) -> list[tuple[Path, dict]]:
    """Shards sorted by index, checked: readable, one spec, every index once, files intact."""
    shards = []
    for d in map(Path, dirs):
        try:
            m = json.loads((d / SHARD_FILE).read_text())
            index, count = m["shard"]
            if not (type(index) is int and type(count) is int and 0 <= index < count):
                raise ValueError("bad shard index")
            shards.append((d, m, (index, count), json.dumps(m["spec"], sort_keys=True)))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BadInput(f"{d} is not an its-mobile data shard (no readable {SHARD_FILE})") from e
    if not shards:
        raise BadInput("no shards given to merge")
    if len({s[3] for s in shards}) > 1 or len({s[2][1] for s in shards}) > 1:
        raise BadInput("the shards come from different runs (their specs or shard counts differ)")
    k = shards[0][2][1]
    indexes = sorted(s[2][0] for s in shards)
    if indexes != list(range(k)):
        raise BadInput(f"shards of {k} must be indexes 0..{k - 1} once each, got {indexes}")
    needed = {"words.txt", "word_phones.npy", "word_oov.npy", *[f"speech_{k}.npy" for k in SPEECH_ARRAYS],
              *[f"{s}_{kind}.npy" for s in ("train", *EVAL_SPLITS) for kind in ("images", "words")]}
    for d, m, _, _ in shards:
        if not isinstance(m.get("files"), dict) or not isinstance(m.get("meta"), dict) or needed - set(m["files"]):
            raise BadInput(f"{d / SHARD_FILE} does not list every file of a shard")
        for name, digest in m["files"].items():
            if not (d / name).is_file() or _sha256(d / name) != digest:
                raise BadInput(f"{d / name} is missing or does not match its sha256 in {SHARD_FILE}")
    return [(d, m) for d, m, _, _ in sorted(shards, key=lambda s: s[2][0])]


def merge_shards(dirs: list[Path], out: Path) -> Path:
    """Join shards 0..K-1 of one spec into the data directory one run writes, byte for byte."""
    out = Path(out)
    if out.exists() and not (out / "meta.json").exists():
        raise BadInput(f"{out} exists and is not an its-mobile data directory")
    shards = _read_shards(dirs)
    spec = shards[0][1]["spec"]
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("words.txt", "word_phones.npy", "word_oov.npy"):
        if len({m["files"][name] for _, m in shards}) > 1:
            raise BadInput(f"the shards' {name} differ: they were made with different lexicons")
        shutil.copyfile(shards[0][0] / name, tmp / name)

    def joined(name: str) -> np.ndarray:
        return np.concatenate([np.load(d / name, mmap_mode="r") for d, _ in shards])

    for split in ("train", *EVAL_SPLITS):
        _save(tmp / f"{split}_images.npy", joined(f"{split}_images.npy"))
        _save(tmp / f"{split}_words.npy", joined(f"{split}_words.npy"))
    lengths = np.concatenate([np.diff(np.load(d / "speech_mel_offsets.npy")) for d, _ in shards])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n_audio = min(spec["n_audio"], len(lengths))
    for name in ("speech_words.npy", "speech_durations.npy", "speech_mel.npy"):
        _save(tmp / name, joined(name))
    _save(tmp / "speech_mel_offsets.npy", offsets)
    _save(tmp / "speech_audio.npy", joined("speech_audio.npy")[: offsets[n_audio] * HOP])
    meta = {**shards[0][1]["meta"], "n_speech": len(lengths), "n_audio_words": n_audio}
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

    def training_word_ids(self) -> np.ndarray:
        """Ids of the words training may see: every word but the held-out (OOV) ones."""
        return np.flatnonzero(~np.asarray(self.word_oov))

    def speech(self) -> dict[str, np.ndarray]:
        return {k: np.load(self.root / f"speech_{k}.npy", mmap_mode="r") for k in SPEECH_ARRAYS}


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
