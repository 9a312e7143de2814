"""conversion/mil_numpy.py: the exported .mlpackage's MIL program, run by the NumPy interpreter,
agrees with PyTorch; the agreement can fail; ops follow MIL's documented semantics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conversion import SETTINGS, mil_numpy
from its_mobile.export import ternary_model
from its_mobile.model.its import OUTPUT_NAMES
from its_mobile.parity import compare, parity_images


@pytest.fixture(scope="module")
def coreml(exported) -> dict:
    """The exported packages' programs, a few built-in parity images and PyTorch's outputs on them."""
    from conversion.coreml import _load_program

    report = json.loads((exported / "export-report.json").read_text())
    checkpoint = None if report["checkpoint"] is None else Path(report["checkpoint"])
    model, _, _ = ternary_model(checkpoint, report.get("tier"))
    images = parity_images()[1][::3]  # clean and noisy, four words
    with torch.inference_mode():
        refs = [{k: v.numpy() for k, v in zip(OUTPUT_NAMES, model(torch.from_numpy(img[None])))} for img in images]
    programs = {a["weights"]: _load_program(str(exported / a["path"]))[1]
                for a in report["artifacts"] if a["format"] == "coreml"}
    assert sorted(programs) == ["dense", "packed"]
    return {"images": images, "refs": refs, "programs": programs}


def _compare(interp: mil_numpy.Interpreter, coreml: dict) -> list[dict]:
    return [compare(ref, interp({"pixels": img[None]}), SETTINGS["coreml"])
            for ref, img in zip(coreml["refs"], coreml["images"])]


@pytest.mark.parametrize("weights", ["packed", "dense"])
def test_package_matches_pytorch(coreml, weights):
    prog = coreml["programs"][weights]
    out = mil_numpy.run(prog, {"pixels": coreml["images"][0][None]})
    assert sorted(out) == sorted(OUTPUT_NAMES)
    results = _compare(mil_numpy.prepare(prog), coreml)
    for r in results:
        assert all(r["equal"].values()), r  # phonemes and every length exactly
        assert r["mel_max_abs"] <= SETTINGS["coreml"]["mel_atol"], r
        assert r["waveform_max_abs"] <= SETTINGS["coreml"]["waveform_atol"], r
        assert r["ok"]


@pytest.mark.parametrize("weights", ["packed", "dense"])
def test_perturbed_weight_fails(coreml, weights):
    """Negating one ternary weight tensor (a LUT decoded with the wrong sign) is caught. The
    tensor is the first conv weight after the phoneme embedding (gather): mel follows the
    acoustic model's weights continuously, while the image encoder only reaches it through
    argmax, where a small change may not show."""
    prog = coreml["programs"][weights]
    ops = list(prog.functions["main"].operations)
    start = next(i for i, op in enumerate(ops) if op.op_type == "gather")
    weight = next(op.weight for op in ops[start:] if op.op_type == "conv")
    assert weight.op.op_type == ("constexpr_lut_to_dense" if weights == "packed" else "const")
    interp = mil_numpy.prepare(prog)
    assert all(r["ok"] for r in _compare(interp, coreml))
    interp.values[weight.name] = -interp.values[weight.name]
    # An image read as no phonemes is silence whatever the acoustic weights: judge the others.
    results = [r for r, ref in zip(_compare(interp, coreml), coreml["refs"]) if ref["n_phonemes"].item() > 0]
    assert len(results) >= 3
    assert not any(r["ok"] for r in results)
    assert min(r["mel_max_abs"] for r in results) > 100 * SETTINGS["coreml"]["mel_atol"]


# Single-op programs built with coremltools' builder: the semantics of parameters our model
# does not use, checked against coremltools' own value inference (what the builder computes
# when every input is a constant) or, where it has none or a wrong one, against the docs.

def _one_op(op_type: str, x: np.ndarray, first: str = "x", **params):
    """A program of `op_type` on its input "x_in" (as `first`), the other inputs constants."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(x.shape, dtype=types.numpy_type_to_builtin_type(x.dtype))],
                opset_version=ct.target.iOS18)
    def prog(x_in):
        return getattr(mb, op_type)(**{first: x_in}, **params)

    return prog


def _value_inference(op_type: str, x: np.ndarray, first: str = "x", **params) -> np.ndarray:
    """What coremltools' builder computes for the op when every input is a constant."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    folded = {}

    @mb.program(input_specs=[mb.TensorSpec((1,))], opset_version=ct.target.iOS18)
    def prog(unused):
        folded["val"] = getattr(mb, op_type)(**{first: x}, **params).val
        return unused

    return folded["val"]


def _run_one(prog, x: np.ndarray) -> np.ndarray:
    (out,) = mil_numpy.run(prog, {"x_in": x}).values()
    return out


_rng = np.random.default_rng(0)
_X = _rng.standard_normal((2, 3, 4)).astype(np.float32)
_XI = _rng.integers(-5, 5, (2, 3, 4)).astype(np.int32)
_F = np.float32

VALUE_INFERENCE_CASES = [
    ("gelu", _X, dict(mode="EXACT")),
    ("gelu", _X, dict(mode="TANH_APPROXIMATION")),
    ("gelu", _X, dict(mode="SIGMOID_APPROXIMATION")),
    ("softmax", _X, dict(axis=0)),
    ("layer_norm", _X, dict(axes=[1], gamma=_rng.standard_normal(3).astype(_F), beta=_rng.standard_normal(3).astype(_F),
                            epsilon=_F(1e-3))),
    ("pad", _X, dict(pad=np.array([1, 2, 0, 3]), mode="reflect")),
    ("pad", _X, dict(pad=np.array([1, 2, 0, 3]), mode="replicate")),
    ("pad", _X, dict(pad=np.array([1, 2]), mode="constant", constant_val=_F(7))),
    ("gather", _X, dict(indices=np.array([[2, 0], [1, 1]], np.int32), axis=2, batch_dims=1)),
    ("gather_along_axis", _X, dict(indices=_rng.integers(-4, 4, (2, 3, 2)).astype(np.int32), axis=2)),
    ("log", np.abs(_X) + _F(0.1), {}),
    ("less_equal", _X, dict(y=_X[:1])),
    ("slice_by_index", _X, dict(begin=np.array([1, -2, 3], np.int32), end=np.array([0, 3, 0], np.int32),
                                stride=np.array([1, 1, -2], np.int32), end_mask=[True, False, True],
                                squeeze_mask=[True, False, False])),
    ("slice_by_index", _X, dict(begin=np.array([0, 1, 1], np.int32), end=np.array([2, 3, 4], np.int32),
                                stride=np.array([1, 2, 2], np.int32), begin_mask=[False, True, False])),
    ("reshape", _X, dict(shape=np.array([1, 0, -1, 0], np.int32))),
    ("matmul", _X, dict(y=_rng.standard_normal((1, 5, 3)).astype(_F), transpose_x=True, transpose_y=True)),
    ("linear", _X, dict(weight=_rng.standard_normal((5, 4)).astype(_F))),
    ("reduce_sum", _XI, dict(axes=[0, 2], keep_dims=True)),
    ("reduce_mean", _X, dict(axes=[0])),
    ("reduce_mean", _X, dict(axes=[-1, 1], keep_dims=True)),
    ("reduce_max", _X, dict(axes=[-1], keep_dims=True)),
    ("reduce_max", _X, dict(axes=[0, 2])),
    ("reduce_argmax", _X, dict(axis=1, keep_dims=True)),
    ("cumsum", _XI, dict(axis=2, reverse=True)),
    ("tile", _X, dict(reps=np.array([1, 2, 3], np.int32))),
    ("squeeze", _X[:1, :, :1], {}),
    ("expand_dims", _X, dict(axes=[-1, 0])),
    ("cast", _X * 3, dict(dtype="int32")),
    ("clip", _X, dict(alpha=_F(-0.5), beta=_F(0.25))),
    ("transpose", _X, dict(perm=[2, 0, 1])),
    ("select", _X > 0, dict(a=_X, b=_F(-1))),
]


@pytest.mark.parametrize("op_type,x,params", VALUE_INFERENCE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(VALUE_INFERENCE_CASES)])
def test_op_matches_value_inference(op_type, x, params):
    first = "cond" if op_type == "select" else "x"
    want = _value_inference(op_type, x, first, **params)
    got = _run_one(_one_op(op_type, x, first, **params), x)
    assert got.dtype == np.asarray(want).dtype and got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_ops_documented_cases():
    # round: ties to even ("0.5 is rounded to 0")
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49], np.float32)
    assert _run_one(_one_op("round", x), x).tolist() == [-2, -2, 0, 0, 2, 2, 0]
    # cumsum exclusive (coremltools' value inference of it raises): the first sum is 0
    x = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    prog = _one_op("cumsum", x, axis=1, exclusive=True)
    assert _run_one(prog, x).tolist() == [[0, 1, 3], [0, 4, 9]]
    prog = _one_op("cumsum", x, axis=1, exclusive=True, reverse=True)
    assert _run_one(prog, x).tolist() == [[5, 3, 0], [11, 6, 0]]
    # concat interleave: the docstring's example (coremltools' value inference ignores interleave)
    in1 = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    in2 = np.array([[7, 8], [9, 10], [11, 12]], np.float32)
    assert mil_numpy.OPS["concat"](values=[in1, in2], axis=0, interleave=True).tolist() == \
        [[1, 2], [7, 8], [3, 4], [9, 10], [5, 6], [11, 12]]
    # fill_like takes the value's dtype, not the reference tensor's
    prog = _one_op("fill_like", _X, "ref_tensor", value=np.int32(3))
    got = _run_one(prog, _X)
    assert got.dtype == np.int32 and got.shape == _X.shape and np.all(got == 3)


@pytest.mark.parametrize("pad_type,pads", [("same", [(1, 1), (0, 1)]), ("same_lower", [(1, 1), (1, 0)]),
                                           ("custom", [(2, 0), (1, 3)]), ("valid", [(0, 0), (0, 0)])])
def test_conv_matches_torch(pad_type, pads):
    """2-D conv, stride 2, dilation (1, 2), 2 groups, against PyTorch on the input padded by the
    amounts MIL's docs give: "same" pads so that out = ceil(in / stride), odd extra after;
    "same_lower", before (here in (7, 8), kernel (3, 2) dilated to (3, 3))."""
    x = _rng.standard_normal((1, 4, 7, 8)).astype(np.float32)
    w = _rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = _rng.standard_normal(6).astype(np.float32)
    params = dict(weight=w, bias=b, strides=[2, 2], dilations=[1, 2], groups=2, pad_type=pad_type)
    if pad_type == "custom":
        params["pad"] = [p for pair in pads for p in pair]
    got = _run_one(_one_op("conv", x, **params), x)
    xp = torch.nn.functional.pad(torch.from_numpy(x), [p for pair in reversed(pads) for p in pair])
    want = torch.nn.functional.conv2d(xp, torch.from_numpy(w), torch.from_numpy(b), stride=2, dilation=(1, 2), groups=2)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_unknown_op_names_it(monkeypatch):
    prog = _one_op("gelu", _X)
    monkeypatch.delitem(mil_numpy.OPS, "gelu")
    with pytest.raises(NotImplementedError, match=r"MIL op gelu \("):
        mil_numpy.run(prog, {"x_in": _X})
