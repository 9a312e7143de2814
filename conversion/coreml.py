"""ITS -> Core ML .mlpackage (mlprogram, iOS18); packed = ternary weights as Core ML's own
palettized weights (constexpr_lut_to_dense):

- a 2-bit LUT {-s, 0, s} per tensor (mode "unique"; 36 of the 44 ternary tensors), or
- where the weight has an axis of length 5 (the kernel axis of the 5-tap convs; no channel
  count is a multiple of 5), a vector LUT over 5-weight vectors: 3^5 = 243 <= 256 entries, 8 bits
  per 5 weights = 1.6 bits; its 256 x 5 LUT is itself stored int8 + one scale
  (constexpr_blockwise_shift_scale, "joint compression"), 1.3 KB instead of 2.6/5.1 KB;

and the checkpoint's int8-stored high-precision weights as int8 with a float32 scale per output
channel (constexpr_blockwise_shift_scale).

Core ML cannot run on Linux: `static_check` reads the saved package back and checks it
without a runtime, and `interpreter` evaluates its MIL program with NumPy (conversion/mil_numpy.py);
`runner` predicts with Core ML itself, which only macOS has.
"""

from __future__ import annotations

import itertools
import json
import os
import string
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from conversion import RuntimeUnavailable
from conversion.mil_numpy import decode_lut, decode_shift_scale
from conversion.wrap import ExportITS, int8_names, ternary_stats
from its_mobile.compress.int8 import quantize_rows
from its_mobile.compress.ternary import ternary_names
from its_mobile.model.its import OUTPUT_NAMES

INT_OUTPUTS = ("n_samples", "phonemes", "n_phonemes", "n_frames")
WEIGHT_USERS = ("conv", "linear", "matmul", "conv_transpose")


def _ct():
    import coremltools as ct

    return ct


def _is_ternary(v: np.ndarray) -> bool:
    s = np.abs(v).max()
    return bool(s > 0 and np.all((v == 0) | (v == s) | (v == -s)))


def _ternary_consts(prog) -> dict[str, np.ndarray]:
    """const name -> value for every conv/linear/matmul weight holding only {-s, 0, s}.
    (The converter's const names are not stable for linears, e.g. transpose_3_cast_fp16, so
    the ternary tensors are found by value; check_coreml matches them to PyTorch's.)"""
    out = {}
    for op in prog.functions["main"].operations:
        if op.op_type != "const" or op.outputs[0].val is None:
            continue
        v = np.asarray(op.outputs[0].val)
        if v.ndim >= 2 and v.dtype.kind == "f" and any(c.op_type in WEIGHT_USERS for c in op.outputs[0].child_ops) \
                and _is_ternary(v):
            out[op.name] = v
    return out


def _palettizer_configs(consts: dict[str, np.ndarray], vector: bool) -> dict:
    """const name -> OpPalettizerConfig: mode "unique" (nbits picked from the values: 2 for a
    ternary tensor, 8 for its 5-vectors)."""
    ct = _ct()
    cfgs = {}
    for name, v in consts.items():
        axis = next((a for a in range(v.ndim - 1, 0, -1) if v.shape[a] == 5), None) if vector else None
        if axis is not None:
            # channel_axis is only honoured with per_grouped_channel; one group spanning the
            # whole length-5 axis = one LUT for the tensor, vectors along that axis.
            cfgs[name] = ct.optimize.coreml.OpPalettizerConfig(
                mode="unique", cluster_dim=5, granularity="per_grouped_channel", channel_axis=axis,
                group_size=5, weight_threshold=0)
        else:
            cfgs[name] = ct.optimize.coreml.OpPalettizerConfig(mode="unique", weight_threshold=0)
    return cfgs


def _int8_consts(prog, model: nn.Module, int8: list[str]) -> dict[str, str]:
    """const name -> name of the int8-stored PyTorch weight it holds, found by value (in
    PyTorch's layout, or transposed where a Linear became a matmul)."""
    params = {n: model.get_parameter(n).detach().numpy() for n in int8}
    out = {}
    for op in prog.functions["main"].operations:
        if op.op_type == "const" and op.outputs[0].val is not None and \
                any(c.op_type in WEIGHT_USERS for c in op.outputs[0].child_ops):
            v = np.asarray(op.outputs[0].val)
            name = next((n for n, p in params.items() if n not in out.values() and _same_layout(v, p)), None)
            if name is not None:
                out[op.name] = name
    return out


def _int8_weights(ml, consts: dict[str, str]):
    """The int8-stored weights as int8 with a float32 scale per output channel
    (constexpr_blockwise_shift_scale): max |row| / 127 is the checkpoint's scale, so the codes
    and values are the checkpoint's (static_check compares them)."""
    ct = _ct()
    q = ct.optimize.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                                   weight_threshold=0)
    return ct.optimize.coreml.linear_quantize_weights(
        ml, ct.optimize.coreml.OptimizationConfig(op_name_configs={n: q for n in consts}))


def _int8_vector_luts(ml):
    """Store each vector LUT (256 x 5 floats) as int8 + a scale: exact for {-s, 0, s} entries
    up to the rounding of 127 * (s / 127)."""
    ct = _ct()
    luts = [op.lut.op.name for op in ml._mil_program.functions["main"].operations
            if op.op_type == "constexpr_lut_to_dense" and op.lut.shape[-1] > 1]
    if not luts:
        return ml
    q = ct.optimize.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_tensor",
                                                   weight_threshold=0)
    return ct.optimize.coreml.linear_quantize_weights(
        ml, ct.optimize.coreml.OptimizationConfig(op_name_configs={n: q for n in luts}), joint_compression=True)


def _short_ids():
    first = string.ascii_letters
    rest = string.ascii_letters + string.digits
    for n in itertools.count(0):
        for tail in itertools.product(rest, repeat=n):
            for c in first:
                yield c + "".join(tail)


def _compact_program(ml):
    """Deduplicate equal small consts (~300 equal shape/stride/perm consts otherwise stay apart)
    and turn a linear whose bias is all zeros into a matmul: the converter gives a bias-free
    linear (the vocoder's iSTFT basis) a stored zero bias. Short names come later, in
    _make_reproducible."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY
    from coremltools.models import utils as model_utils

    class ZeroBiasToMatmul(AbstractGraphPass):
        def apply(self, prog):
            for f in prog.functions.values():
                for op in list(f.operations):
                    bias = op.inputs.get("bias") if op.op_type == "linear" else None
                    if bias is None or bias.val is None or np.any(bias.val) or op.weight.val is None:
                        continue
                    with f:
                        out = mb.matmul(x=op.x, y=np.ascontiguousarray(op.weight.val.T), before_op=op)
                    f.replace_uses_of_var_after_op(anchor_op=op, old_var=op.outputs[0], new_var=out)
                    f.remove_ops([op])

    dedup = PASS_REGISTRY["common::const_deduplication"]
    old = dedup.const_threshold
    dedup.const_threshold = 0
    try:
        passes = [ZeroBiasToMatmul(), dedup, PASS_REGISTRY["common::dead_code_elimination"]]
        return model_utils._apply_graph_pass(ml, passes, spec_version=ml.get_spec().specificationVersion,
                                             skip_model_load=True)
    finally:
        dedup.const_threshold = old


def export(model: nn.Module, example: tuple, path: Path, ternary: list[str] | None, settings: dict) -> dict:
    """Convert `model` (ternary-valued) to an iOS18 mlprogram at `path`; with `ternary`, its
    ternary weights become palettized (LUT) weights.

    Precision float32 (backends.toml): phonemes, durations and lengths come from argmax,
    round(exp) and cumsum comparisons inside the graph; a float16 simulation flipped a phoneme
    on 1 of 13 parity images, and Core ML cannot be run here to check. float16 would halve the
    non-ternary weights and reach the Neural Engine, at that risk. Ternary weights are 2-bit
    (or 1.6-bit vectors) either way.
    """
    ct = _ct()
    wrapped = ExportITS(model, keep_ternary=False).eval()  # Core ML keeps layer_norm whole: no folding
    # Core-ATen decompositions: coremltools 9.0 has no converter for aten.__and__ (ctc_greedy's &).
    ep = torch.export.export(wrapped, tuple(example)).run_decompositions()
    ml = ct.convert(
        ep,
        inputs=[ct.TensorType(name="pixels", shape=tuple(example[0].shape), dtype=np.float32)],
        # Core ML has no int64 outputs: lengths and phoneme ids come out int32.
        outputs=[ct.TensorType(name=n, dtype=np.int32 if n in INT_OUTPUTS else np.float32) for n in OUTPUT_NAMES],
        minimum_deployment_target=getattr(ct.target, settings["deployment_target"]),
        compute_precision=getattr(ct.precision, settings["compute_precision"].upper()),
        skip_model_load=True,  # no Core ML runtime on Linux
    )
    info = {"deployment_target": settings["deployment_target"], "compute_precision": settings["compute_precision"]}
    if ternary is not None:
        consts = _ternary_consts(ml._mil_program)
        cfgs = _palettizer_configs(consts, vector=True)
        info["palettized_weights"] = len(consts)
        info["vector_palettized_weights"] = sum(c.cluster_dim > 1 for c in cfgs.values())
        ml = ct.optimize.coreml.palettize_weights(ml, ct.optimize.coreml.OptimizationConfig(op_name_configs=cfgs))
        ml = _int8_vector_luts(ml)
        int8 = int8_names(model, ternary)
        consts = _int8_consts(ml._mil_program, model, int8)
        if sorted(consts.values()) != sorted(int8):
            raise RuntimeError(f"int8-stored weights not found in the Core ML program: {sorted(set(int8) - set(consts.values()))}")
        ml = _int8_weights(ml, consts)
        info["int8_weights"] = int8
    ml = _compact_program(ml)
    ml.save(str(path))
    debug = Path(path) / "executorch_debug_handle_mapping.json"  # not in the Manifest: debug only
    debug.unlink(missing_ok=True)
    _make_reproducible(Path(path))
    return info


def _make_reproducible(package: Path) -> None:
    """Make the same model give the same package bytes. coremltools writes random UUIDs into
    Manifest.json, the conversion date into the metadata, and protobuf maps in hash order;
    here the UUIDs are derived from each item's path (Core ML only needs them unique within the
    package), the date is dropped, and the spec is re-serialized with sorted map keys."""
    from coremltools.proto import Model_pb2

    manifest = package / "Manifest.json"
    data = json.loads(manifest.read_text())
    new = {old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"its-mobile:{item['path']}"))
           for old, item in data["itemInfoEntries"].items()}
    root = data["itemInfoEntries"][data["rootModelIdentifier"]]["path"]
    data["itemInfoEntries"] = {new[old]: item for old, item in data["itemInfoEntries"].items()}
    data["rootModelIdentifier"] = new[data["rootModelIdentifier"]]
    manifest.write_text(json.dumps(data, indent=4, sort_keys=True) + "\n")
    model_file = package / "Data" / root
    spec = Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    spec.description.metadata.userDefined.pop("com.github.apple.coremltools.conversion_date", None)
    _renumber(spec.mlProgram)
    model_file.write_bytes(spec.SerializeToString(deterministic=True))


def _renumber(program) -> None:
    """Rename every op and intermediate var in file order. The graph passes leave the same ops
    in the same order from run to run, but which of them gets which short name follows
    Python's string hashing (it changes with PYTHONHASHSEED); numbering the serialized program
    itself makes the names a function of the graph alone."""
    for function in program.functions.values():
        keep = {v.name for v in function.inputs}
        for block in function.block_specializations.values():
            keep |= set(block.outputs)
        ids = (i for i in _short_ids() if i not in keep)
        renamed: dict[str, str] = {}

        def walk(block) -> None:
            for op in block.operations:
                for arg in op.inputs.values():
                    for binding in arg.arguments:
                        if binding.WhichOneof("binding") == "name" and binding.name in renamed:
                            binding.name = renamed[binding.name]
                if "name" in op.attributes:
                    op.attributes["name"].immediateValue.tensor.strings.values[0] = next(ids)
                for out in op.outputs:
                    if out.name not in keep:
                        renamed[out.name] = out.name = next(ids)
                for inner in op.blocks:
                    walk(inner)
            block.outputs[:] = [renamed.get(n, n) for n in block.outputs]

        for block in function.block_specializations.values():
            walk(block)


def runner(path: Path, settings: dict, threads: int | None = None) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Core ML prediction, which only macOS has: load once, run on one pixels array (Core ML
    picks its own threads)."""
    if sys.platform != "darwin":
        raise RuntimeUnavailable("Core ML prediction needs macOS")
    ml = _ct().models.MLModel(str(path))

    def run(pixels: np.ndarray) -> list[np.ndarray]:
        out = ml.predict({"pixels": np.asarray(pixels, np.float32)})
        return [np.asarray(out[k]) for k in OUTPUT_NAMES]

    return run


def interpreter(path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Where Core ML cannot run: the package's own MIL program, weights decoded from its LUTs,
    evaluated by conversion/mil_numpy.py. Numeric parity of the conversion and of the packed
    weights, not of Core ML's kernels. NotImplementedError names an op it does not know."""
    from conversion.mil_numpy import prepare

    program = prepare(_load_program(str(path))[1])

    def run(pixels: np.ndarray) -> list[np.ndarray]:
        out = program({"pixels": pixels})
        return [out[k] for k in OUTPUT_NAMES]

    return run


def interface(path: Path) -> dict:
    """Inputs and outputs as the package's model description declares them."""
    spec = _ct().utils.load_spec(str(path))

    def tensors(features) -> list[dict]:
        return [{"name": n, "shape": shape, "dtype": dtype.lower()} for n, shape, dtype in map(_feature, features)]

    return {"inputs": tensors(spec.description.input), "outputs": tensors(spec.description.output)}


def _load_program(path: str):
    """(MLModel without a runtime, its MIL program read back from the saved package)."""
    ct = _ct()
    from coremltools.converters.mil.frontend.milproto import load as milproto_load
    from coremltools.models import utils as model_utils

    ml = ct.models.MLModel(path, skip_model_load=True)
    prog = model_utils._convert_model_spec_to_pymil_prog(ml, ml.get_spec().specificationVersion, milproto_load.load)
    return ml, prog


def _same_layout(codes: np.ndarray, ref: np.ndarray) -> bool:
    """Core ML weight codes equal PyTorch's: same layout (conv OIHW/OIW, linear (out, in)) or the
    transposed (1, in, out) that a Linear lowered to matmul gets."""
    if codes.shape == ref.shape:
        return bool(np.array_equal(codes, ref))
    if ref.ndim == 2 and codes.squeeze().shape == ref.T.shape:
        return bool(np.array_equal(codes.squeeze(), ref.T))
    return False


def _feature(f) -> tuple[str, list[int], str]:
    ft = _ct().proto.FeatureTypes_pb2.ArrayFeatureType
    a = f.type.multiArrayType
    return f.name, list(a.shape), ft.ArrayDataType.Name(a.dataType)


def static_check(path: Path, model: nn.Module, packed: bool = True) -> dict:
    """What can be verified without macOS: the interface, and that every ternary weight is in
    the package as a LUT that decodes (by hand, and by coremltools) to {-s, 0, s} with exactly
    PyTorch's codes, s within fp16 rounding; no other weight is ternary-valued float; and every
    int8-stored weight is int8 with the checkpoint's codes, decoding to exactly its values."""
    from coremltools.converters.mil.mil import types

    ml, prog = _load_program(str(path))
    spec = ml.get_spec()
    res = {"spec_version": spec.specificationVersion,
           "inputs": [_feature(f) for f in spec.description.input],
           "outputs": [_feature(f) for f in spec.description.output]}
    with torch.no_grad():
        ref = model(torch.zeros(1, 1, 32, 128))
    want_io = [(n, list(r.shape), "INT32" if n in INT_OUTPUTS else "FLOAT32") for n, r in zip(OUTPUT_NAMES, ref)]
    res["interface_ok"] = res["inputs"] == [("pixels", [1, 1, 32, 128], "FLOAT32")] and \
        [tuple(o) for o in res["outputs"]] == want_io
    if not packed:
        return {**res, "ok": res["interface_ok"]}

    ops = list(prog.functions["main"].operations)
    luts = [op for op in ops if op.op_type == "constexpr_lut_to_dense"]
    stats = ternary_stats(model, ternary_names(model))
    want = sorted((s["numel"], s["counts"]) for s in stats.values())
    scales = {}
    for s in stats.values():
        scales.setdefault((s["numel"], s["counts"]), []).append(s["scale"])
    params = dict(model.named_parameters())
    torch_codes = {n: np.round((params[n] / stats[n]["scale"]).detach().numpy()) for n in stats}
    by_key = {}
    for n, st in stats.items():
        by_key.setdefault((st["numel"], st["counts"]), []).append(n)
    got, problems, kinds, rel, matched = [], [], {}, 0.0, set()
    for op in luts:
        w = decode_lut(op)
        src = op.lut.op  # coremltools' own decoders (materialized_val_inference needs a const lut)
        ct_lut = src.materialized_val_inference() if src.op_type == "constexpr_blockwise_shift_scale" else op.lut.val
        ct_w = op.decompress(op.indices.val, ct_lut, None if op.vector_axis is None else op.vector_axis.val)
        if not np.array_equal(w, np.asarray(ct_w)):
            problems.append(f"{op.name}: hand decoding differs from coremltools'")
        if not _is_ternary(w):
            problems.append(f"{op.name}: not ternary after decoding")
        s = float(np.abs(w).max())
        codes = np.round(w / s)
        key = (w.size, tuple(int((codes == c).sum()) for c in (-1, 0, 1)))
        got.append(key)
        placed = next((n for n in by_key.get(key, []) if _same_layout(codes, torch_codes[n])), None)
        if placed is None:
            problems.append(f"{op.name}: no PyTorch weight has these codes in this layout")
        else:
            matched.add(placed)
        if key in scales:
            rel = max(rel, min(abs(s - c) / c for c in scales[key]))
        lut_shape = op.lut.shape
        kind = f"{int(np.log2(lut_shape[-2]))}-bit index, vector {lut_shape[-1]}" + \
            (", int8 LUT" if op.lut.op.op_type == "constexpr_blockwise_shift_scale" else f", {types.builtin_to_string(op.lut.dtype)} LUT")
        kinds[kind] = kinds.get(kind, 0) + 1
    got.sort()
    int8, found8 = int8_names(model, list(stats)), set()
    want8 = {n: quantize_rows(params[n])[0].numpy() for n in int8}
    for op in ops:
        if op.op_type != "constexpr_blockwise_shift_scale" or \
                not any(c.op_type in WEIGHT_USERS for c in op.outputs[0].child_ops):
            continue
        codes = np.asarray(op.data.val)
        name = next((n for n, c in want8.items() if n not in found8 and _same_layout(codes, c)), None)
        if name is None:
            problems.append(f"{op.name}: int8 codes are no int8-stored weight's")
        elif not _same_layout(decode_shift_scale(op), params[name].detach().numpy()):
            problems.append(f"{op.name}: int8 weights do not decode to {name}'s values")
        else:
            found8.add(name)
    left = [op.name for op in ops if op.op_type == "const" and op.outputs[0].val is not None
            and any(c.op_type in WEIGHT_USERS for c in op.outputs[0].child_ops)
            and np.asarray(op.outputs[0].val).ndim >= 2 and np.asarray(op.outputs[0].val).dtype.kind == "f"
            and _is_ternary(np.asarray(op.outputs[0].val))]
    res.update(lut_ops=len(luts), lut_kinds=kinds, ternary_weights=len(want), lut_weights=sum(g[0] for g in got),
               codes_match=got == want, weights_matched_elementwise=len(matched),
               int8_weights=len(int8), int8_weights_matched=len(found8), scale_max_rel_err=rel, dense_ternary_consts_left=left, problems=problems[:5])
    res["ok"] = bool(res["interface_ok"] and res["codes_match"] and len(matched) == len(stats) and found8 == set(int8)
                     and not problems and not left and rel < 2.0 ** -10)
    return res
