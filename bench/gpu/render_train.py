"""Render fresh training images on a machine that has neither espeak-ng nor the lexicon.

`its-mobile data` needs both; the lent GPU machines have neither, but 16 cores. So:

  pack SRC CARRY          (here) copy SRC's small files (words, phonemes, OOV flags, eval and
                          speech splits) and its training fonts into CARRY;
  render CARRY OUT N SEED (there) write a data directory with N training images of seed SEED,
                          the bytes `its-mobile data --n N --seed SEED` would render for them.
"""
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from its_mobile.constants import IMG_H, IMG_W
from its_mobile.data import jobs, render
from its_mobile.data.dataset import NOISY_SHARE, draw_words, image_jobs

TRAIN_FILES = ("meta.json", "train_images.npy", "train_words.npy")


def pack(src: Path, carry: Path) -> None:
    meta = json.loads((src / "meta.json").read_text())
    train_fonts, _ = render.find_fonts()
    if [f.name for f in train_fonts] != meta["fonts"]["train"]:
        sys.exit(f"this machine's training fonts are not the ones {src} was rendered with")
    (carry / "fonts").mkdir(parents=True)
    for i, f in enumerate(train_fonts):  # numbered: several fonts share a file name
        shutil.copy(f, carry / "fonts" / f"{i:02d}_{f.name}")
    shutil.copytree(src, carry / "data", ignore=lambda d, names: [n for n in names if n in TRAIN_FILES[1:]])


def render_split(carry: Path, out: Path, n: int, seed: int) -> None:
    meta = json.loads((carry / "data" / "meta.json").read_text())
    fonts = sorted((carry / "fonts").iterdir())
    assert [f.name[3:] for f in fonts] == meta["fonts"]["train"], "carried fonts do not match meta.json"
    shutil.copytree(carry / "data", out, ignore=lambda d, names: [n for n in names if n == "meta.json"])
    words = (out / "words.txt").read_text().split()
    word_ids = draw_words(seed, "train", np.flatnonzero(~np.load(out / "word_oov.npy")), n)
    images = np.lib.format.open_memmap(out / "train_images.npy", "w+", np.uint8, (n, IMG_H, IMG_W))
    job_list = image_jobs(seed, "train", words, word_ids, 0, fonts, NOISY_SHARE)
    t = time.time()
    with mp.get_context("fork").Pool(os.cpu_count()) as pool:
        for job, arr in zip(job_list, pool.imap(jobs.render_chunk, job_list, chunksize=1)):
            images[job[2] : job[3]] = arr
    images.flush()
    np.save(out / "train_words.npy", word_ids.astype(np.int32))
    meta["spec"] = {**meta["spec"], "n": n, "seed": seed}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))  # last: it marks the directory complete
    print(f"rendered {n} images in {time.time() - t:.1f} s on {os.cpu_count()} cores", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "pack":
        pack(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 6 and sys.argv[1] == "render":
        render_split(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)
