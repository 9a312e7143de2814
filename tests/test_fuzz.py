"""Property tests of every reader of user-supplied files: random bytes, truncations, flipped
bytes, huge dimensions and odd JSON give the documented one-line errors (BadInput and its
kinds), never another exception. ITS_FUZZ_EXAMPLES sets the cases per reader
(bench/bench_fuzz.py runs many more)."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from its_mobile import checkpoint
from its_mobile.data.dataset import SHARD_FILE, merge_shards
from its_mobile.errors import BadInput
from its_mobile.export import REPORT
from its_mobile.images import load_image
from its_mobile.parity import parity

EXAMPLES = int(os.environ.get("ITS_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


def png(width: int, height: int, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), 200).save(buf, "PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def mutate(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data[: max(1, cut % (len(data) + 1))])
    for pos, val in flips:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


FLIPS = st.lists(st.tuples(st.integers(0, 1 << 22), st.integers(0, 255)), max_size=6)


def write(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


@FUZZ
@given(data=st.binary(max_size=2048) | st.builds(mutate, st.sampled_from([png(40, 12), png(9, 9, "RGBA"), png(3, 70, "P")]),
                                                  st.integers(0, 4096), FLIPS))
def test_image_loader(tmp_path_factory, data):
    path = write(tmp_path_factory.mktemp("img"), "x.png", data)
    try:
        out = load_image(path)
    except BadInput:
        return
    assert out.shape == (32, 128) and out.dtype == np.uint8


@FUZZ
@given(size=st.tuples(st.integers(1, 1 << 20), st.integers(1, 1 << 20)).filter(lambda s: s[0] * s[1] > 40_000_000))
def test_image_loader_refuses_huge_dimensions(tmp_path_factory, size):
    path = write(tmp_path_factory.mktemp("bomb"), "bomb.png", png_header_only(*size))
    with pytest.raises(BadInput):
        load_image(path)


@pytest.fixture(scope="module")
def packed_bytes(tiny_packed) -> bytes:
    return Path(tiny_packed).read_bytes()


@FUZZ
@given(cut=st.integers(0, 1 << 22), flips=FLIPS)
def test_checkpoint_reader(tmp_path_factory, packed_bytes, cut, flips):
    path = write(tmp_path_factory.mktemp("ckpt"), "m.safetensors", mutate(packed_bytes, cut, flips))
    try:
        checkpoint.load_model(path)
    except BadInput:
        return


@FUZZ
@given(data=st.binary(max_size=512))
def test_checkpoint_reader_random_bytes(tmp_path_factory, data):
    path = write(tmp_path_factory.mktemp("ckpt"), "r.safetensors", data)
    with pytest.raises(BadInput):
        checkpoint.load_model(path)


@FUZZ
@given(report=JSON | st.binary(max_size=256))
def test_export_report_reader(tmp_path_factory, report):
    d = tmp_path_factory.mktemp("exp")
    (d / REPORT).write_bytes(report if isinstance(report, bytes) else json.dumps(report).encode())
    try:
        result = parity(d)
    except BadInput:
        return
    assert isinstance(result, dict)


@FUZZ
@given(manifest=JSON | st.binary(max_size=256))
def test_shard_manifest_reader(tmp_path_factory, manifest):
    root = tmp_path_factory.mktemp("shard")
    (root / "s").mkdir()
    (root / "s" / SHARD_FILE).write_bytes(manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode())
    with pytest.raises(BadInput):
        merge_shards([root / "s"], root / "out")
    assert not (root / "out").exists()
