"""The command line end to end on the tiny model, and every bad input of the foundation issue."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import wave
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from its_mobile.constants import MAX_SAMPLES, SAMPLE_RATE


def cli(*args: str, cwd: Path | None = None, env_path: str | None = None) -> subprocess.CompletedProcess:
    """Run `its-mobile ARGS` in a fresh process (with PATH replaced by `env_path` if given)."""
    env = None if env_path is None else {**os.environ, "PATH": env_path}
    return subprocess.run([sys.executable, "-m", "its_mobile", *args], capture_output=True, text=True, cwd=cwd, env=env)


def word_png(path: Path, mode: str = "L") -> Path:
    from its_mobile.data.render import find_fonts, render

    grey = render("cat", find_fonts()[1][0], np.random.default_rng(0), noisy=False)
    img = Image.fromarray(grey)
    if mode == "I;16":
        img = Image.fromarray(grey.astype(np.uint16) * 257)
    elif mode != "L":
        img = img.convert(mode)
    img.save(path)
    return path


def test_help_and_version():
    assert cli("--version").stdout.startswith("its-mobile, version")
    for cmd in ("data", "train", "speak", "eval", "inspect", "export", "parity"):
        r = cli(cmd, "--help")
        assert r.returncode == 0 and "Usage:" in r.stdout, cmd


def test_speak_writes_valid_wavs(tiny_run, tmp_path):
    one = tmp_path / "one.wav"
    r = cli("speak", str(word_png(tmp_path / "cat.png")), "-o", str(one), "--checkpoint", str(tiny_run["student"]),
            "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"image", "ipa", "wav", "ms"} <= set(rec) and rec["wav"] == str(one)
    with wave.open(str(one)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (SAMPLE_RATE, 2, 1)
        assert w.getnframes() <= MAX_SAMPLES
    # Several images -> a directory, one wav each; every documented mode is accepted.
    images = [word_png(tmp_path / f"cat_{m.replace(';', '')}.{'tif' if m == 'CMYK' else 'png'}", m)
              for m in ("RGBA", "I;16", "P", "CMYK", "LA")]
    r = cli("speak", *map(str, images), "-o", str(tmp_path / "many"), "--checkpoint", str(tiny_run["student"]),
            "--json")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == len(images)
    assert len(list((tmp_path / "many").glob("*.wav"))) == len(images)


def test_speak_text_renders_the_word(tiny_run, tmp_path):
    r = cli("speak", "--text", "reading", "-o", str(tmp_path / "r.wav"), "--checkpoint", str(tiny_run["student"]))
    assert r.returncode == 0, r.stderr
    with wave.open(str(tmp_path / "r.wav")) as w:  # a barely trained model may say nothing yet
        assert w.getframerate() == SAMPLE_RATE and w.getnframes() <= MAX_SAMPLES


def _bomb_png(path: Path, side: int = 20000) -> Path:
    """A valid PNG header claiming side x side pixels (a decompression bomb), tiny on disk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated", "bomb"])
def test_bad_images_fail_cleanly(kind, tiny_run, tmp_path):
    img = tmp_path / "bad.png"
    if kind == "empty":
        img.write_bytes(b"")
    elif kind == "text":
        img.write_text("not an image at all")
    elif kind == "truncated":
        data = word_png(tmp_path / "ok.png").read_bytes()
        img.write_bytes(data[: len(data) // 2])
    elif kind == "bomb":
        _bomb_png(img)
    out = tmp_path / "out.wav"
    r = cli("speak", str(img), "-o", str(out), "--checkpoint", str(tiny_run["student"]))
    assert r.returncode == 2, (kind, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("kind", ["missing", "random", "foreign_safetensors", "stage", "tampered"])
def test_bad_checkpoints_fail_cleanly(kind, tiny_run, tmp_path):
    ckpt = tmp_path / "model.safetensors"
    if kind == "random":
        ckpt.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "foreign_safetensors":
        import torch
        from safetensors.torch import save_file

        save_file({"weight": torch.zeros(3, 3)}, str(ckpt))
    elif kind == "stage":
        ckpt = tiny_run["dir"] / "vocoder.safetensors"
    elif kind == "tampered":
        data = bytearray(Path(tiny_run["student"]).read_bytes())
        data[-10] ^= 0xFF  # flip bits inside the last tensor
        ckpt.write_bytes(bytes(data))
    out = tmp_path / "out.wav"
    r = cli("speak", "--text", "cat", "-o", str(out), "--checkpoint", str(ckpt))
    assert r.returncode == 2, (kind, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()
