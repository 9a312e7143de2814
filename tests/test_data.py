import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from its_mobile.constants import EOS, HOP, IMG_H, IMG_W, MAX_PHONES
from its_mobile.data import espeak, lexicon, render
from its_mobile.data.dataset import EVAL_SPLITS, generate, load, merge_shards, phones_to_ipa
from tests.conftest import TINY_SPEC


def test_espeak_ipa_with_stress_and_timings():
    s = espeak.speak("reading")
    assert "".join(s.phonemes) == "ɹˈiːdɪŋ"  # what `espeak-ng -v en-us -q --ipa reading` prints
    assert s.starts[0] == 0 and np.all(np.diff(s.starts) > 0) and s.starts[-1] < len(s.audio)


def test_a_modifier_timed_apart_joins_its_phoneme():
    # Synthesis times 'ɡ' and 'ʲ' apart where the phoneme string has one 'ɡʲ'
    s = espeak.speak("argyll")
    assert s.phonemes == ("ˈɑːɹ", "ɡʲ", "aɪ", "l")
    assert len(s.starts) == 4 and np.all(np.diff(s.starts) > 0)


def test_same_seed_same_data(tiny_data, tmp_path):
    again = generate(tmp_path / "again", TINY_SPEC, progress=False)
    # The same process spoke these words before: each speech chunk restarts espeak-ng, whose
    # samples would otherwise depend on what it said earlier.
    for name in [*BYTE_EQUAL, "meta.json"]:
        assert (tiny_data / name).read_bytes() == (again / name).read_bytes(), name
    other = generate(tmp_path / "other", TINY_SPEC.__class__(**{**TINY_SPEC.__dict__, "seed": 8}), progress=False)
    assert (other / "train_images.npy").read_bytes() != (tiny_data / "train_images.npy").read_bytes()


def test_splits_are_disjoint(tiny_data):
    data = load(tiny_data)
    _, train_words = data.split("train")
    assert not data.word_oov[train_words].any(), "an OOV word was trained on"
    assert not data.word_oov[data.speech()["words"]].any()
    for split in EVAL_SPLITS:
        images, words = data.split(split)
        assert images.shape == (TINY_SPEC.n_eval, IMG_H, IMG_W)
        assert data.word_oov[words].all() == ("oov" in split)
    fonts = json.loads((tiny_data / "meta.json").read_text())["fonts"]
    train_fonts, eval_fonts = render.find_fonts()
    if set(train_fonts) != set(eval_fonts):  # machines with one font family cannot hold one out
        assert not set(fonts["train"]) & set(fonts["eval"])
    assert all(lexicon.is_oov(data.words[i]) for i in np.flatnonzero(data.word_oov))


def test_targets_are_consistent(tiny_data):
    data = load(tiny_data)
    sp = data.speech()
    offsets = np.asarray(sp["mel_offsets"])
    for k in range(len(sp["words"])):
        phones = data.word_phones[sp["words"][k]].tolist()
        n = phones.index(EOS)
        durations = sp["durations"][k]
        assert durations[:n].sum() == offsets[k + 1] - offsets[k]  # durations tile the mel exactly
        assert not durations[n:].any()
    assert len(sp["audio"]) == offsets[data.meta["n_audio_words"]] * HOP
    word = data.words[sp["words"][0]]
    assert phones_to_ipa(data.word_phones[sp["words"][0]], data.meta["inventory"]) == "".join(espeak.phonemize(word))
    assert data.word_phones.shape[1] == MAX_PHONES


BYTE_EQUAL = ["words.txt", "word_phones.npy", "word_oov.npy",
              *[f"speech_{a}.npy" for a in ("words", "durations", "mel", "mel_offsets", "audio")],
              *[f"{s}_{kind}.npy" for s in ("train", *EVAL_SPLITS) for kind in ("images", "words")]]


def test_shards_merge_into_one_runs_data(tiny_data, tmp_path):
    """Shards 0..2 merged equal the single run to the byte, speech targets included, and a shard
    is the same whether made by one worker or two."""
    shards = [generate(tmp_path / f"s{i}", TINY_SPEC, progress=False, shard=(i, 3)) for i in range(3)]
    merged = merge_shards(shards, tmp_path / "merged")
    for name in BYTE_EQUAL:
        assert (tiny_data / name).read_bytes() == (merged / name).read_bytes(), name
    assert load(tiny_data).meta == load(merged).meta
    two = generate(tmp_path / "s1-two-workers", TINY_SPEC, workers=2, progress=False, shard=(1, 3))
    for name in BYTE_EQUAL:
        assert (shards[1] / name).read_bytes() == (two / name).read_bytes(), name


def test_bad_shards(tiny_data, tmp_path):
    from tests.test_cli import cli

    r = cli("data", "--n", "8", "--shards", "2", "--shard-index", "2", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "out of range" in r.stderr and "Traceback" not in r.stderr
    small = TINY_SPEC.__class__(**{**TINY_SPEC.__dict__, "n": 64, "n_speech": 20, "n_audio": 4})
    s0 = generate(tmp_path / "a0", small, progress=False, shard=(0, 2))
    other = generate(tmp_path / "b1", small.__class__(**{**small.__dict__, "seed": 9}), progress=False, shard=(1, 2))
    for shards, message in (([s0, other], "different runs"), ([s0], "indexes 0..1"), ([s0, tiny_data], "not an its-mobile data shard")):
        r = cli("data", "--merge", "--out", str(tmp_path / "m"), *map(str, shards))
        assert r.returncode == 2 and message in r.stderr and not (tmp_path / "m").exists(), r.stderr
    s1 = generate(tmp_path / "a1", small, progress=False, shard=(1, 2))
    with open(s1 / "train_images.npy", "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x7f")
    r = cli("data", "--merge", "--out", str(tmp_path / "m"), str(s0), str(s1))
    assert r.returncode == 2 and "does not match its sha256" in r.stderr


def test_gpu_render_writes_what_data_writes(tiny_data, tmp_path):
    """bench/gpu/render_train.py, for machines without espeak-ng: packed here and rendered from
    the carried files alone, its data directory is the one `its-mobile data` wrote."""
    script = [sys.executable, str(Path(__file__).parents[1] / "bench" / "gpu" / "render_train.py")]
    subprocess.run(script + ["pack", str(tiny_data), str(tmp_path / "carry")], check=True)
    assert not (tmp_path / "carry" / "data" / "train_images.npy").exists()
    subprocess.run(script + ["render", str(tmp_path / "carry"), str(tmp_path / "out"), str(TINY_SPEC.n),
                             str(TINY_SPEC.seed)], check=True, capture_output=True)
    for name in BYTE_EQUAL:
        assert (tiny_data / name).read_bytes() == (tmp_path / "out" / name).read_bytes(), name
    assert load(tiny_data).meta == load(tmp_path / "out").meta
