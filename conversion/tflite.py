"""TFLite (.tflite via litert-torch): dense float32, or packed with the ternary weights as
INT2 (weight-only, per-tensor scale, float32 activations) via ai-edge-quantizer; every other
tensor stays float32. Runs in the LiteRT interpreter."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from conversion.wrap import ExportITS, ternary_stats
from its_mobile.compress.ternary import HIGH_PRECISION
from its_mobile.model.its import OUTPUT_NAMES

INT2, INT4 = 19, 17  # tflite TensorType


def _scope_regex(model: nn.Module, name: str) -> str:
    """The op scope of submodule `name`: litert-torch names each module on the path after its
    class and attribute, e.g. '.../its_mobile.model.encoder.Block_last/.../torch.nn.modules.linear.
    Linear_qkv;1'. The whole path is matched, since `qkv` alone is in every block; containers
    (ModuleList, Sequential) are left to the wildcard between components, whether named or not."""
    parts, path = [], ""
    for attr in name.split("."):
        path = f"{path}.{attr}" if path else attr
        sub = model.get_submodule(path)
        if not isinstance(sub, (nn.ModuleList, nn.Sequential)):
            parts.append(re.escape(f"{type(sub).__name__}_{attr}"))
    return r"\." + r"/(?:[^/;]*/)*?[\w.]*\.".join(parts) + r"(;|/|$)"


def _keep_float_regex(model: nn.Module) -> str:
    """Op scopes of the layers ternary.py keeps in float."""
    # The vocoder's own linear with the fixed iSTFT basis (an op of the Vocoder itself, not of a
    # submodule; the quantizer's scope is the output tensor's name plus ";") is float maths.
    present = dict(model.named_modules())  # a small preset may have no widening projection
    return "|".join(_scope_regex(model, n) for n in sorted(HIGH_PRECISION) if n in present) + r"|\.Vocoder_vocoder;\d*;$"


def quantize_weights(float_path: str, out_path: str, model: nn.Module, bits: int = 2, activations: str = "float32") -> None:
    """Ternary weights as int2 codes (int4 or int8 with `bits`). activations "float32": weight-only, every op
    computes in float (the exported form); "int8": dynamic range, activations quantized to int8
    at run time (measured in bench/bench_int8.py, not exported)."""
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    op = qtyping.TFLOperationName
    # No recipe in 0.10.0 is weight-only int2 (policy: weightonly_wi8/wi4, dynamic_wi2 only),
    # so the config is written by hand; skip_checks lets it past the policy check. Symmetric
    # min-max on a ternary tensor gives scale = max|w| = the ternary scale, codes -1/0/1: exact.
    weight = qtyping.TensorQuantizationConfig(num_bits=bits, symmetric=True,
                                              granularity=qtyping.QuantGranularity.TENSORWISE)
    compute = {"float32": qtyping.ComputePrecision.FLOAT, "int8": qtyping.ComputePrecision.INTEGER}[activations]
    cfg = qtyping.OpQuantizationConfig(weight_tensor_config=weight, compute_precision=compute,
                                       explicit_dequantize=activations == "float32", skip_checks=True)
    q = quantizer.Quantizer(float_path)
    for kind in (op.FULLY_CONNECTED, op.CONV_2D):  # Linear -> FC; Conv1d/Conv2d -> CONV_2D
        q.update_quantization_recipe(".*", kind, cfg)
    for kind in (op.FULLY_CONNECTED, op.CONV_2D):  # later rules win: keep the float layers float
        q.update_quantization_recipe(_keep_float_regex(model), kind, None, AlgorithmName.NO_QUANTIZE)
    q.quantize(enable_progress_report=False).export_model(out_path, overwrite=True)


def strip_names(path: str) -> None:
    """Drop every tensor name but the signature's inputs/outputs (litert-torch names are long
    module paths: ~200 KB of strings, 1.2 bits per ternary weight) and empty quantization tables."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    m = fb.read_model(path)
    for sg in m.subgraphs:
        keep = set(sg.inputs) | set(sg.outputs)
        for i, t in enumerate(sg.tensors):
            if i not in keep:
                t.name = None
            q = t.quantization  # the object API writes an empty table for every float tensor
            if q is not None and q.scale is None and q.zeroPoint is None and q.min is None and q.details is None:
                t.quantization = None
    fb.write_model(m, path)


def _int2_tensors(path: str) -> list[dict]:
    """Every int2/int4 weight in the file, decoded: {shape, scale, codes}."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    m = fb.read_model(path)
    out = []
    for t in m.subgraphs[0].tensors:
        if t.type not in (INT2, INT4) or not t.buffer or m.buffers[t.buffer].data is None:
            continue
        bits = 2 if t.type == INT2 else 4
        raw = np.asarray(m.buffers[t.buffer].data, np.uint8)
        n = int(np.prod(t.shape))
        v = np.stack([(raw >> (bits * k)) & ((1 << bits) - 1) for k in range(8 // bits)], 1).reshape(-1)[:n]
        v = np.where(v >= 1 << (bits - 1), v.astype(np.int16) - (1 << bits), v)
        scale = np.asarray(t.quantization.scale, np.float32)
        zp = np.asarray(t.quantization.zeroPoint)
        out.append({"shape": tuple(t.shape), "scale": scale, "zero_point": zp, "codes": v.astype(np.int8)})
    return out


def verify_packed(path: str, model: nn.Module, names: list[str]) -> dict:
    """Every ternary weight is in the file as int2 codes -1/0/1 with its own scale, and nothing else is."""
    stats = ternary_stats(model, names)
    want = sorted((s["numel"], s["counts"], s["scale"]) for s in stats.values())
    got, problems = [], []
    for t in _int2_tensors(path):
        if t["scale"].size != 1 or np.any(t["zero_point"] != 0):
            problems.append(f"{t['shape']}: not per-tensor symmetric")
        codes = t["codes"]
        if codes.min() < -1 or codes.max() > 1:
            problems.append(f"{t['shape']}: codes outside -1..1")
        got.append((codes.size, tuple(int((codes == c).sum()) for c in (-1, 0, 1)), float(t["scale"].ravel()[0])))
    got.sort()
    same_codes = [g[:2] for g in got] == [w[:2] for w in want]
    scale_rel = max((abs(g[2] - w[2]) / w[2] for g, w in zip(got, want)), default=0.0) if same_codes else None
    return {"ternary_tensors": len(want), "int2_tensors": len(got), "int2_weights": sum(g[0] for g in got),
            "codes_match": same_codes, "scale_max_rel_err": scale_rel,  # the quantizer recomputes max|w|: 1 ulp
            "match": same_codes and scale_rel is not None and scale_rel < 1e-6 and not problems, "problems": problems[:5]}


def convert_float(model: nn.Module, example, path: str) -> None:
    """The float .tflite as litert-torch writes it (full tensor names: the quantizer's rules match them)."""
    import litert_torch

    wrapped = ExportITS(model, keep_ternary=True, named=True).eval()
    litert_torch.convert(wrapped, sample_kwargs={"pixels": example[0]}).export(path)


def export(model: nn.Module, example: tuple, path: Path, ternary: list[str] | None, settings: dict) -> dict:
    """Convert `model` to `path`; with `ternary` (the ternary weights' names), int2-quantize them."""
    with tempfile.TemporaryDirectory() as tmp:
        dense = os.path.join(tmp, "dense.tflite")
        convert_float(model, example, dense)
        if ternary is not None:
            quantize_weights(dense, str(path), model)
        else:
            shutil.copyfile(dense, path)
    strip_names(str(path))
    info = {"signature": signature(str(path)), **delegated_partitions(str(path))}
    if ternary is not None:
        info["verify"] = verify_packed(str(path), model, ternary)
        if not info["verify"]["match"]:
            raise RuntimeError(f"int2 weights in {path} are not the model's ternary weights: {info['verify']}")
    return info


def runner(path: Path, settings: dict, threads: int | None = None) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Load once; the returned function runs the default signature on one pixels array, outputs
    in OUTPUT_NAMES order (integers come back int32: litert-torch narrows int64)."""
    signature_runner = _interpreter(str(path), threads or 1).get_signature_runner()

    def run(pixels: np.ndarray) -> list[np.ndarray]:
        out = signature_runner(pixels=np.asarray(pixels, np.float32))
        return [out[k] for k in OUTPUT_NAMES]

    return run


def _interpreter(path: str, threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=path, num_threads=threads)


def signature(path: str) -> dict:
    it = _interpreter(path)
    runner = it.get_signature_runner()
    return {"inputs": {k: (v["shape"].tolist(), np.dtype(v["dtype"]).name) for k, v in runner.get_input_details().items()},
            "outputs": {k: (v["shape"].tolist(), np.dtype(v["dtype"]).name) for k, v in runner.get_output_details().items()}}


def interface(path: Path) -> dict:
    """The default signature's tensors, outputs in OUTPUT_NAMES order (LiteRT binds them by name)."""
    sig = signature(str(path))
    rank = {n: i for i, n in enumerate(OUTPUT_NAMES)}

    def tensors(group: dict, order) -> list[dict]:
        return [{"name": k, "shape": shape, "dtype": dtype} for k, (shape, dtype) in sorted(group.items(), key=order)]

    return {"inputs": tensors(sig["inputs"], lambda kv: kv[0]),
            "outputs": tensors(sig["outputs"], lambda kv: (rank.get(kv[0], len(rank)), kv[0]))}


def delegated_partitions(path: str) -> dict:
    """How XNNPACK split the graph (DEQUANTIZE of int2/int4 is not delegated)."""
    it = _interpreter(path)
    it.allocate_tensors()
    ops = [o["op_name"] for o in it._get_ops_details()]
    return {"xnnpack_partitions": ops.count("DELEGATE"), "dequantize_ops": ops.count("DEQUANTIZE")}
