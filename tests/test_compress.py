"""Ternary weights, weight indexing, nested tiers and the packed file (the compression issue)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import subprocess
import sys
import wave
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from its_mobile import checkpoint
from its_mobile.compress.int8 import dequantize_rows, fake_int8, quantize_rows
from its_mobile.compress.packed import TERNARY_SCALES, pack_state, unpack_state
from its_mobile.compress.packing import pack, unpack
from its_mobile.compress.ternary import HIGH_PRECISION, is_high_precision, quantize, ternary_names
from its_mobile.compress.tiers import TIERS, shared_blocks, tier_dims, tier_forward, tier_state
from its_mobile.errors import BadCheckpoint
from its_mobile.model.dims import TINY, TINY_ACOUSTIC, TINY_SPEAKER, TINY_VOCODER, ModelDims, EncoderDims
from its_mobile.model.its import ITS, example_inputs


def cli(*args):
    return subprocess.run([sys.executable, "-m", "its_mobile", *args], capture_output=True, text=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(shape, seed):
    codes = np.random.default_rng(seed).integers(-1, 2, size=shape).astype(np.int8)
    index = pack(codes)
    assert index.dtype == np.uint8 and index.size == math.ceil(codes.size / 5)
    assert index.max() <= 242
    assert np.array_equal(unpack(index, codes.size).reshape(shape), codes)


def test_quantize_is_bitnet_absmean():
    w = torch.tensor([[0.9, -0.05, 0.4], [-1.2, 0.3, 0.0]])
    codes, scale = quantize(w)
    assert scale.item() == pytest.approx(w.abs().mean().item())
    assert codes.tolist() == [[1, 0, 1], [-1, 1, 0]]


def test_high_precision_layers_are_kept():
    model = ITS(ModelDims(20, TINY, TINY_ACOUSTIC, TINY_VOCODER))
    names = ternary_names(model)
    assert names and all(n.endswith(".weight") for n in names)
    assert not any(n.rsplit(".", 1)[0] in HIGH_PRECISION for n in names)
    assert "encoder.blocks.0.fc1.weight" in names and "vocoder.blocks.0.dw.weight" not in names
    # the speaker is high precision throughout (ternary.py says why)
    with_speaker = ternary_names(ITS(ModelDims(20, TINY, TINY_ACOUSTIC, TINY_VOCODER, TINY_SPEAKER)))
    assert set(with_speaker) == set(names) and is_high_precision("speaker.blocks.0.attn.qkv")
    assert not is_high_precision("encoder.headless") and is_high_precision("encoder.head")


def _model(seed=0) -> ITS:
    torch.manual_seed(seed)
    dims = ModelDims(30, EncoderDims(width=32, depth=4, heads=2, last_width=48, stem_width=8), TINY_ACOUSTIC,
                     TINY_VOCODER)
    return ITS(dims).eval()


def _pixels():
    return torch.from_numpy(np.random.default_rng(3).integers(0, 256, (2, 1, 32, 128)).astype(np.float32))


@pytest.mark.parametrize("tier", list(TIERS))
def test_qat_forward_equals_unpacked_model(tier, tmp_path):
    model = _model()
    path = tmp_path / "p.safetensors"
    checkpoint.save_packed(path, model, [f"p{i}" for i in range(30)], {}, TIERS)
    unpacked, info = checkpoint.load_model(path, tier)
    small = ITS(tier_dims(model.dims, TIERS[tier])).eval()
    with torch.no_grad():
        qat = tier_forward(model, small, set(ternary_names(model)), _pixels())
        ref = unpacked(_pixels())
    assert info["tier"] == tier
    for a, b in zip(qat, ref):
        # float16 storage of the small high-precision tensors is the only difference
        assert torch.allclose(a.float(), b.float(), atol=2e-2), (a - b).abs().max()
    assert torch.equal(qat[2], ref[2])  # the same phonemes


def test_tiers_share_weights():
    model = _model()
    full = {k: v.clone() for k, v in model.state_dict().items()}
    outputs = {}
    for edit in (False, True):
        if edit:
            full["encoder.blocks.0.fc1.weight"][0] += 5.0  # held by every tier
        for name, tier in TIERS.items():
            small = ITS(tier_dims(model.dims, tier)).eval()
            small.load_state_dict(tier_state(full, small))
            with torch.no_grad():
                outputs.setdefault(name, []).append(small.encoder(_pixels()))
    for name, (before, after) in outputs.items():
        assert not torch.allclose(before, after), name
    assert ITS(tier_dims(model.dims, TIERS["small"])).encoder.blocks[0].fc1.out_features == 64  # half of 4 x 32


def test_packed_default_sizes(tiny_packed):
    r = cli("inspect", "--checkpoint", str(tiny_packed), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    tiers = {t["name"]: t for t in report["tiers"]}
    assert list(tiers) == ["large", "base", "small"]
    for t in tiers.values():
        assert t["ternary_params"] > 0 and t["packed_bytes"] > 0
        assert 1.585 < t["bits_per_ternary_weight"] <= 1.61 + 32 * 8 / t["ternary_params"]
    assert tiers["large"]["params"] >= tiers["base"]["params"] >= tiers["small"]["params"]
    assert report["total_bytes"] == tiny_packed.stat().st_size
    state = load_file(str(tiny_packed))
    assert any(v.dtype == torch.uint8 for v in state.values())


def test_speak_every_tier(tiny_packed, tmp_path):
    for tier in TIERS:
        r = cli("speak", "--text", "cat", "-o", str(tmp_path / f"{tier}.wav"), "--checkpoint", str(tiny_packed),
                "--tier", tier)
        assert r.returncode == 0, r.stderr
        with wave.open(str(tmp_path / f"{tier}.wav")) as w:  # a tiny model may read nothing: then it warns
            assert w.getframerate() == 16000 and (w.getnframes() > 0 or "read no phonemes" in r.stderr)


def _rewrite(src, dst, edit_tensors=None, edit_info=None):
    """A copy of a checkpoint with consistent sha256s but edited content."""
    tensors, info = checkpoint.load(src)
    if edit_tensors:
        edit_tensors(tensors)
    if edit_info:
        edit_info(info)
    info.pop("format")
    checkpoint.save(dst, tensors, info)
    return dst


def _first_ternary(tensors):
    return next(k for k, v in tensors.items() if v.dtype == torch.uint8)


def _bad_index(t):
    t[_first_ternary(t)][0] = 250


def _short_scales(t):
    t[TERNARY_SCALES] = t[TERNARY_SCALES][:-1]


def _bad_shape(info):
    name = next(iter(info["ternary"]))
    info["ternary"][name] = [info["ternary"][name][0] + 5] + info["ternary"][name][1:]


def test_bad_packed_files(tiny_packed, tmp_path):
    data = tiny_packed.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    cases = {
        "truncated": (truncated, "not an its-mobile checkpoint"),
        "sha256": (flipped, "sha256 mismatch"),
        "index": (_rewrite(tiny_packed, tmp_path / "index.safetensors", edit_tensors=_bad_index), "> 242"),
        "shape": (_rewrite(tiny_packed, tmp_path / "shape.safetensors", edit_info=_bad_shape), "bytes, its shape needs"),
        "scales": (_rewrite(tiny_packed, tmp_path / "scales.safetensors", edit_tensors=_short_scales), "ternary scales for"),
    }
    for name, (path, message) in cases.items():
        r = cli("speak", "--text", "cat", "-o", str(tmp_path / f"{name}.wav"), "--checkpoint", str(path))
        assert r.returncode == 2, (name, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
        assert not (tmp_path / f"{name}.wav").exists()
    with pytest.raises(BadCheckpoint):
        unpack(np.array([243], np.uint8), 5)


def test_format_1_checkpoints_still_load(tiny_packed, tmp_path):
    """Files written before the digests were packed into base64 (a JSON map of hex digests)."""
    tensors, info = checkpoint.load(tiny_packed)
    old = tmp_path / "old.safetensors"
    hexes = {k: hashlib.sha256(v.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
             for k, v in tensors.items()}
    save_file(tensors, str(old), metadata={"its_mobile": json.dumps({**info, "format": "its-mobile/1"}),
                                           "sha256": json.dumps(hexes)})
    again, _ = checkpoint.load(old)
    assert all(torch.equal(again[k], v) for k, v in tensors.items())
    hexes[next(iter(hexes))] = "0" * 64
    save_file(tensors, str(old), metadata={"its_mobile": json.dumps({**info, "format": "its-mobile/1"}),
                                           "sha256": json.dumps(hexes)})
    with pytest.raises(BadCheckpoint, match="sha256 mismatch"):
        checkpoint.load(old)


def test_format_2_checkpoints_still_load(tiny_packed, tmp_path):
    """Files written with whole 32-byte digests, before they were cut to 16."""
    tensors, info = checkpoint.load(tiny_packed)
    old = tmp_path / "old.safetensors"
    digests = [hashlib.sha256(tensors[k].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).digest()
               for k in sorted(tensors)]
    meta = {"its_mobile": json.dumps({**info, "format": "its-mobile/2"}), "sha256": base64.b64encode(b"".join(digests)).decode()}
    save_file(tensors, str(old), metadata=meta)
    again, _ = checkpoint.load(old)
    assert all(torch.equal(again[k], v) for k, v in tensors.items())
    digests[0] = bytes(32)
    save_file(tensors, str(old), metadata={**meta, "sha256": base64.b64encode(b"".join(digests)).decode()})
    with pytest.raises(BadCheckpoint, match="sha256 mismatch"):
        checkpoint.load(old)


def test_digests_must_cover_every_tensor(tiny_packed, tmp_path):
    tensors, info = checkpoint.load(tiny_packed)
    short = tmp_path / "short.safetensors"
    checkpoint.save(short, {k: tensors[k] for k in list(tensors)[1:]}, {k: v for k, v in info.items() if k != "format"})
    with safe_open(str(short), "pt") as f:
        meta = {"its_mobile": json.dumps(info), "sha256": f.metadata()["sha256"]}
    save_file(tensors, str(short), metadata=meta)  # one tensor more than the digests name
    with pytest.raises(BadCheckpoint, match="does not match its manifest"):
        checkpoint.load(short)


def test_unknown_tier(tiny_packed, tmp_path):
    r = cli("speak", "--text", "cat", "-o", str(tmp_path / "x.wav"), "--checkpoint", str(tiny_packed), "--tier", "huge")
    assert r.returncode == 2 and "unknown tier 'huge'" in r.stderr
    r = cli("train", "--out", str(tmp_path / "run"), "--ternary", "--tiers", "large,huge")
    assert r.returncode == 2 and "unknown tier 'huge'" in r.stderr


def test_pack_state_stores_high_precision_in_int8_or_float16():
    model = _model()
    tensors, manifest = pack_state(model)
    assert all(tensors[k].dtype == torch.uint8 for k in manifest)
    head = model.state_dict()["encoder.head.weight"]  # 30 x 48 x 5: large, so 8 bits per row
    codes, scale = tensors["encoder.head.weight"], tensors["encoder.head.weight.scale"]
    assert codes.dtype == torch.int8 and codes.shape == head.shape and int(codes.abs().max()) == 127
    assert scale.dtype == torch.float16 and scale.shape == (head.shape[0],)
    unpacked = unpack_state(tensors, manifest)["encoder.head.weight"]
    # exactly code x scale in float32: what the exports' int8 weights with a float32 scale hold
    assert torch.equal(unpacked, codes.float() * scale.float()[:, None, None])
    # half a step of rounding, plus float16 rounding of the scale (at the clamp) and of the product
    assert torch.all((unpacked - head).abs() <= scale.float()[:, None, None] * (0.5 + 2 * 127 / 2048))
    assert torch.equal(unpacked, fake_int8(head))  # what training computes with
    assert tensors["encoder.stem.0.weight"].dtype == torch.float16  # small: stays float16


@pytest.mark.parametrize("magnitude", [1e-4, 1e-2, 1.0])
def test_int8_repacking_is_exact(magnitude):
    """Continuing a packed model repacks the stages it did not train: unpacked int8 weights
    must quantize back to the same codes and scales."""
    w = torch.randn(64, 300, generator=torch.Generator().manual_seed(0)) * magnitude
    codes, scale = quantize_rows(w)
    again = quantize_rows(dequantize_rows(codes, scale))
    assert torch.equal(again[0], codes) and torch.equal(again[1], scale)


def _no_row_scale(t):
    t["encoder.head.weight.scale"] = t["encoder.head.weight.scale"][:-1]


def test_int8_tensor_without_its_scales(tiny_packed, tmp_path):
    path = _rewrite(tiny_packed, tmp_path / "scale.safetensors", edit_tensors=_no_row_scale)
    r = cli("speak", "--text", "cat", "-o", str(tmp_path / "x.wav"), "--checkpoint", str(path))
    assert r.returncode == 2 and "'encoder.head.weight' has no valid scale per row" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("step", [0, 1])  # base, then small, beside large
def test_one_stem_for_every_tier_gives_the_same_step(step):
    """Training runs the encoder's stem, and the leading blocks two tiers share, once for both:
    the loss and every gradient equal those of each tier's whole forward pass on its own."""
    from its_mobile.model.speaker import letter_ids
    from its_mobile.train.loop import StepLoss, build, step_loss
    from its_mobile.train.presets import PRESETS

    preset, n = PRESETS["full"], 12  # the full student: base keeps all but one of large's lower blocks, small none
    torch.manual_seed(0)
    network = build("student", preset, n)
    tiers = {name: build("student", preset, n, tier) for name, tier in TIERS.items()}
    lower = preset.student.depth - 1  # blocks below the widened last one
    assert [shared_blocks(tiers["large"], tiers[t]) for t in ("base", "small")] == [lower - 1, 0]
    ternary = set(ternary_names(network, "encoder."))
    batch = {"pixels": _pixels(), "letters": torch.from_numpy(letter_ids(["cde", "fg"]))}

    def grads(loss):
        network.zero_grad()
        loss.backward()
        return {k: p.grad.clone() for k, p in network.named_parameters()}

    shared = StepLoss("student", network, tiers, ternary)(batch, step)
    got = grads(shared)
    # The reference: each tier's whole forward pass from the pixels (given as its "tokens").
    smaller = tiers["base" if step == 0 else "small"]
    alone = step_loss("student", partial(tier_forward, network, tiers["large"], ternary),
                      {**batch, "tokens": batch["pixels"]}, partial(tier_forward, network, smaller, ternary))
    want = grads(alone)
    assert torch.allclose(shared, alone, rtol=1e-5), (shared, alone)
    for k in want:
        assert torch.allclose(got[k], want[k], rtol=1e-4, atol=1e-6), k


def test_tier_and_kl_weights_scale_the_smaller_tiers_own_loss_and_its_distillation():
    """--tier-weight w --kl-weight k: the step's loss is large's + w x small's own + k x small's
    distillation from large."""
    from its_mobile.model.speaker import letter_ids
    from its_mobile.train.loop import StepLoss, build, stage_loss, tier_distill
    from its_mobile.train.presets import PRESETS

    preset, n = PRESETS["tiny"], 12
    torch.manual_seed(0)
    network = build("student", preset, n)
    tiers = {name: build("student", preset, n, tier) for name, tier in TIERS.items()}
    ternary = set(ternary_names(network, "encoder."))
    batch = {"pixels": _pixels(), "letters": torch.from_numpy(letter_ids(["cde", "fg"]))}
    weights = [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.3)]
    with torch.no_grad():
        # Step 1 trains `small`: in the tiny preset `base` keeps every block, so it equals `large`.
        loss = {wk: StepLoss("student", network, tiers, ternary, *wk)(batch, 1) for wk in weights}
        inputs = {**batch, "tokens": batch["pixels"]}
        own, small = stage_loss("student", partial(tier_forward, network, tiers["small"], ternary), inputs)
        _, large = stage_loss("student", partial(tier_forward, network, tiers["large"], ternary), inputs)
        kl = tier_distill("student", small, large)
    assert own > 0 and kl > 0
    torch.testing.assert_close(loss[1.0, 0.0] - loss[0.0, 0.0], own, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss[0.5, 0.0], (loss[0.0, 0.0] + loss[1.0, 0.0]) / 2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss[0.0, 1.0] - loss[0.0, 0.0], kl, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(loss[0.0, 0.3] - loss[0.0, 0.0], 0.3 * kl, rtol=1e-3, atol=1e-6)
