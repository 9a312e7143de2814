"""TFLite (.tflite via litert-torch): dense float32, or packed with the ternary weights as
INT2 (weight-only, per-tensor scale, float32 activations) via ai-edge-quantizer, and the
checkpoint's int8-stored high-precision weights as INT8 with a scale per output channel;
every other tensor stays float32. Runs in the LiteRT interpreter."""

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

from conversion.wrap import ExportITS, int8_names, ternary_stats
from its_mobile.compress.int8 import quantize_rows
from its_mobile.compress.ternary import HIGH_PRECISION
from its_mobile.model.its import OUTPUT_NAMES

BITS = {19: 2, 17: 4, 9: 8}  # tflite TensorType INT2, INT4, INT8 -> bits


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


def _regex(model: nn.Module, names) -> str:
    """Op scopes of the named submodules that the model has (a small preset may have no
    widening projection)."""
    present = dict(model.named_modules())
    return "|".join(_scope_regex(model, n) for n in sorted(names) if n in present)


def _keep_float_regex(model: nn.Module) -> str:
    """Op scopes of the layers ternary.py keeps in high precision."""
    # The vocoder's own linear with the fixed iSTFT basis (an op of the Vocoder itself, not of a
    # submodule; the quantizer's scope is the output tensor's name plus ";") is float maths.
    return _regex(model, HIGH_PRECISION) + r"|\.Vocoder_vocoder;\d*;$"


def quantize_weights(float_path: str, out_path: str, model: nn.Module, int8: list[str], bits: int = 2,
                     activations: str = "float32") -> None:
    """Ternary weights as int2 codes (int4 or int8 with `bits`), and the `int8` weights (names of
    high-precision weights) as int8 with a scale per output channel. activations "float32":
    weight-only, every op computes in float (the exported form); "int8": dynamic range,
    activations quantized to int8 at run time (measured in bench/bench_int8.py, not exported)."""
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    op = qtyping.TFLOperationName
    compute = {"float32": qtyping.ComputePrecision.FLOAT, "int8": qtyping.ComputePrecision.INTEGER}[activations]

    def config(num_bits: int, granularity) -> qtyping.OpQuantizationConfig:
        # No recipe in 0.10.0 is weight-only int2 (policy: weightonly_wi8/wi4, dynamic_wi2 only),
        # so the config is written by hand; skip_checks lets it past the policy check.
        weight = qtyping.TensorQuantizationConfig(num_bits=num_bits, symmetric=True, granularity=granularity)
        return qtyping.OpQuantizationConfig(weight_tensor_config=weight, compute_precision=compute,
                                            explicit_dequantize=activations == "float32", skip_checks=True)

    # Symmetric min-max on a ternary tensor gives scale = max|w| = the ternary scale, codes -1/0/1;
    # on an int8-stored row, max|row| / 127 = the checkpoint's scale and its codes. Both exact up
    # to float rounding of the division (verify_packed checks codes and scales).
    q = quantizer.Quantizer(float_path)
    kinds = (op.FULLY_CONNECTED, op.CONV_2D)  # Linear -> FC; Conv1d/Conv2d -> CONV_2D
    rules = [(".*", config(bits, qtyping.QuantGranularity.TENSORWISE)),
             (_keep_float_regex(model), None),  # later rules win: the high-precision layers ...
             (_regex(model, [n.removesuffix(".weight") for n in int8]),  # ... stored in 8 bits
              config(8, qtyping.QuantGranularity.CHANNELWISE))]
    for regex, cfg in rules:
        if regex:
            for kind in kinds:
                q.update_quantization_recipe(regex, kind, cfg, *([] if cfg else [AlgorithmName.NO_QUANTIZE]))
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


def _quantized_tensors(path: str) -> list[dict]:
    """Every int2/int4/int8 weight in the file, decoded: {shape, bits, scale, zero_point, codes}."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    m = fb.read_model(path)
    out = []
    for t in m.subgraphs[0].tensors:
        if t.type not in BITS or not t.buffer or m.buffers[t.buffer].data is None:
            continue
        bits = BITS[t.type]
        raw = np.asarray(m.buffers[t.buffer].data, np.uint8)
        n = int(np.prod(t.shape))
        if bits == 8:
            v = raw.view(np.int8)[:n].astype(np.int16)
        else:
            v = np.stack([(raw >> (bits * k)) & ((1 << bits) - 1) for k in range(8 // bits)], 1).reshape(-1)[:n]
            v = np.where(v >= 1 << (bits - 1), v.astype(np.int16) - (1 << bits), v)
        out.append({"shape": tuple(t.shape), "bits": bits, "scale": np.asarray(t.quantization.scale, np.float32),
                    "zero_point": np.asarray(t.quantization.zeroPoint), "codes": v.astype(np.int8).reshape(t.shape)})
    return out


def verify_packed(path: str, model: nn.Module, names: list[str], int8: list[str]) -> dict:
    """Every ternary weight is in the file as int2 codes -1/0/1 with its own scale, every `int8`
    weight as int8 with the checkpoint's codes and scales per output channel, and no other
    weight is quantized."""
    stats = ternary_stats(model, names)
    want = sorted((s["numel"], s["counts"], s["scale"]) for s in stats.values())
    params = dict(model.named_parameters())
    want8 = {n: quantize_rows(params[n]) for n in int8}
    got, problems, matched8, rel8 = [], [], set(), 0.0
    for t in _quantized_tensors(path):
        if np.any(t["zero_point"] != 0):
            problems.append(f"{t['shape']}: not symmetric")
        codes = t["codes"]
        if t["bits"] == 8:
            # litert-torch keeps a Linear's (out, in) and lays a conv out OHWI: rows are axis 0 either way
            rows = codes.reshape(codes.shape[0], -1)
            name = next((n for n, (c, _) in want8.items() if n not in matched8 and c.numel() == rows.size
                         and np.array_equal(np.moveaxis(c.numpy(), 1, -1).reshape(rows.shape), rows)), None)
            if name is None:
                problems.append(f"{t['shape']}: int8 codes are no int8-stored weight's")
                continue
            matched8.add(name)
            rel8 = max(rel8, float(np.max(np.abs(t["scale"] / want8[name][1].float().numpy() - 1))))
            continue
        if t["scale"].size != 1:
            problems.append(f"{t['shape']}: not per-tensor")
        if codes.min() < -1 or codes.max() > 1:
            problems.append(f"{t['shape']}: codes outside -1..1")
        got.append((codes.size, tuple(int((codes == c).sum()) for c in (-1, 0, 1)), float(t["scale"].ravel()[0])))
    got.sort()
    same_codes = [g[:2] for g in got] == [w[:2] for w in want]
    scale_rel = max((abs(g[2] - w[2]) / w[2] for g, w in zip(got, want)), default=0.0) if same_codes else None
    # The quantizer recomputes every scale: 1 ulp at most.
    return {"ternary_tensors": len(want), "int2_tensors": len(got), "int2_weights": sum(g[0] for g in got),
            "codes_match": same_codes, "scale_max_rel_err": scale_rel,
            "int8_tensors": len(matched8), "int8_scale_max_rel_err": rel8,
            "match": same_codes and scale_rel is not None and scale_rel < 1e-6 and matched8 == set(int8)
            and rel8 < 1e-6 and not problems, "problems": problems[:5]}


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
            int8 = int8_names(model, ternary)
            quantize_weights(dense, str(path), model, int8)
        else:
            shutil.copyfile(dense, path)
    strip_names(str(path))
    info = {"signature": signature(str(path)), **delegated_partitions(str(path))}
    if ternary is not None:
        info["int8_weights"] = int8
        info["verify"] = verify_packed(str(path), model, ternary, int8)
        if not info["verify"]["match"]:
            raise RuntimeError(f"quantized weights in {path} are not the model's: {info['verify']}")
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
