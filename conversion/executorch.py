"""ExecuTorch (.pte, XNNPACK delegate): dense, or with the ternary weights kept packed.

Packed program = two methods exported from ONE module instance, so their buffer names match:
- `init()`: decodes each uint8 index tensor (5 ternary codes per byte, index = sum((c_i+1) 3^i))
  with a (243, 5) lookup table, times the per-tensor scale, into a float32 mutable buffer;
  decodes the large high-precision weights (the output projections) from the packed
  checkpoint's own int8 codes and float16 scale per row; and computes the
  vocoder's fixed iSTFT tensors (COMPUTED: the basis and the window envelope). Run once after
  loading. Mutable buffers are memory planned (never serialized), so the file holds only the
  indices, a byte per high-precision weight, and not 0.58 MB of fixed iSTFT tensors.
- `forward(pixels)`: the model, reading those buffers as weights.

Why the convs are rewritten: XNNPACK needs a conv weight to be a static parameter. A conv whose
weight is a mutable buffer still gets delegated, with the buffer's *initial* value (zeros) baked
into the delegate, so the output is silently wrong; a conv whose weight is computed (not a
param) falls back to the slow portable kernel. Only linear accepts a runtime weight
(`force_non_static_weights_for_f32_linear`), so every decoded Conv1d/Conv2d becomes
"shifted slices, concatenated on the channel axis, then F.linear" (im2col), with the weight
decoded in init straight into the (out, k * in) layout that linear wants. (Linear weights
only: the stock flag is replaced by a narrower partitioner config, see _partitioner.)

Tried and not kept: XNNPACK packs a runtime weight on every call, so handing it the decoded
weight as the GEMM's *left* operand instead (F.linear(weight, cols), transposed back, the bias
added after), which it reads in place while it packs the smaller activations, ran the shipped
default 4% faster with one reading per image and 2% with two (1.22x -> 1.20x its dense twin),
for 27 KB of transposes, reshapes and adds: 2% of the file, most of the margin on the size target.
To see where the time goes, `its-mobile profile` lists the ETDump operators.

Runtime contract: both methods must share the planned arenas (mem_id 2 holds the decoded
weights). The Python Runtime does so for host-only methods of one loaded Program; in C++ use
executorch::extension::Module(path, ..., share_memory_arenas=true). Call init once, then
forward any number of times.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.export.exported_program import InputKind
from torch.nn import functional as F

from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
from executorch.backends.xnnpack.partition.config.gemm_configs import ConvolutionConfig, LinearConfig
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.backends.xnnpack.utils.utils import get_input_node
from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower
from executorch.exir.passes import MemoryPlanningPass
from executorch.runtime import Runtime

from conversion.wrap import int8_names
from its_mobile.compress.int8 import dequantize_rows, quantize_rows
from its_mobile.compress.packing import _TABLE, pack
from its_mobile.compress.ternary import split_ternary
from its_mobile.model.its import OUTPUT_NAMES
from its_mobile.model.vocoder import fourier_basis, window_envelope

# Fixed (not learned) tensors that init computes rather than the file storing.
COMPUTED = {"vocoder.basis": fourier_basis, "vocoder.inv_env": window_envelope}


def _persist_buffers(model: nn.Module) -> nn.Module:
    # executorch 1.5.1 + torch 2.13: a non-persistent buffer (vocoder.basis, inv_env) makes the
    # XNNPACK preprocess fail with "SpecViolationError: Non-persistent buffer vocoder.basis is
    # in the state dict"; as persistent buffers they export as plain constants.
    for m in model.modules():
        m._non_persistent_buffers_set.clear()
    return model


def _write(et, path) -> int:
    with open(path, "wb") as f:
        f.write(et.buffer)
    return len(et.buffer)


def export_dense(model: nn.Module, example: tuple, path: Path) -> dict:
    """Plain fp32 export, every weight a static XNNPACK constant: the reference."""
    m = _persist_buffers(copy.deepcopy(model).eval())
    ep = torch.export.export(m, example)
    _write(to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch(), path)
    return {"methods": ["forward"]}


class _Packed(nn.Module):
    """A Linear / Conv1d / Conv2d whose weight the file stores compactly: ternary as uint8
    indices + scale, or high-precision as int8 codes + float16 scale per row (constants); the
    float32 weight it computes with is a mutable buffer, zeros in the file, filled by `decode_`."""

    def __init__(self, layer: nn.Module, ternary: bool):
        super().__init__()
        w = layer.weight.detach()
        if isinstance(layer, nn.Conv1d):
            w = w.permute(0, 2, 1)  # (out, k, in): matches the im2col order below
        elif isinstance(layer, nn.Conv2d):
            w = w.permute(0, 2, 3, 1)  # (out, kh, kw, in)
        self.ternary = ternary
        self.n = w.numel()
        if ternary:
            codes, scale = split_ternary(w)
            self.register_buffer("packed", torch.from_numpy(pack(codes.contiguous().numpy())))
            self.register_buffer("scale", scale.reshape(1))
        else:  # the permutation keeps each output row's values, so its codes and scale too
            codes, scale = quantize_rows(w.reshape(w.shape[0], -1))
            self.register_buffer("int8", codes)
            self.register_buffer("row_scale", scale)
        self.register_buffer("weight", torch.zeros(w.shape[0], self.n // w.shape[0]))  # mutable
        self.bias = layer.bias
        self.kind = type(layer).__name__
        if self.kind != "Linear":
            assert layer.groups == 1 and all(d == 1 for d in layer.dilation)
            self.kernel, self.stride, self.padding = layer.kernel_size, layer.stride, layer.padding

    def decode_(self, table: torch.Tensor) -> None:
        if not self.ternary:
            self.weight.copy_(dequantize_rows(self.int8, self.row_scale))
            return
        # (n_bytes,) uint8 -> (n_bytes, 5) codes via one gather; padding codes sliced off.
        codes = F.embedding(self.packed.long(), table).reshape(-1)[: self.n]
        self.weight.copy_(codes.reshape(self.weight.shape) * self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "Linear":
            return F.linear(x, self.weight, self.bias)
        if self.kind == "Conv1d":  # (B, C, T) -> (B, T, C): slices along T, concat on C
            (k,), (s,), (p,) = self.kernel, self.stride, self.padding
            h = F.pad(x.transpose(1, 2), (0, 0, p, p))
            t = (h.shape[1] - k) // s + 1
            cols = torch.cat([h[:, j : j + s * (t - 1) + 1 : s] for j in range(k)], dim=2) if k > 1 else h
            return F.linear(cols, self.weight, self.bias).transpose(1, 2)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding  # Conv2d, NHWC inside
        b, c, hi, wi = x.shape
        ho, wo = (hi + 2 * ph - kh) // sh + 1, (wi + 2 * pw - kw) // sw + 1
        # Pad to whole stride blocks and split each spatial axis into (block, phase): every tap
        # is then a stride-1 slice, which XNNPACK takes (a strided slice runs in portable ops).
        hb, wb = -(-(hi + 2 * ph) // sh), -(-(wi + 2 * pw) // sw)
        h = F.pad(x.permute(0, 2, 3, 1), (0, 0, pw, wb * sw - wi - pw, ph, hb * sh - hi - ph))
        h = h.reshape(b, hb, sh, wb, sw, c)
        taps = []
        for i in range(kh):
            for j in range(kw):
                (qi, ri), (qj, rj) = divmod(i, sh), divmod(j, sw)
                taps.append(h[:, qi : qi + ho, ri : ri + 1, qj : qj + wo, rj : rj + 1].reshape(b, ho, wo, c))
        return F.linear(torch.cat(taps, dim=3), self.weight, self.bias).permute(0, 3, 1, 2)


class _TwoMethods(nn.Module):
    """torch.export traces `forward`; `mode` picks which method that trace becomes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.register_buffer("table", torch.from_numpy(_TABLE.astype(np.float32)))  # (243, 5)
        self.mode = "forward"

    def forward(self, *args):
        if self.mode == "forward":
            return self.model(*args)
        for m in self.model.modules():
            if isinstance(m, _Packed):
                m.decode_(self.table)
        for name, make in COMPUTED.items():
            self.model.get_buffer(name).copy_(make())
        return (self.table[:1, 0],)  # a method needs an output; the work is the buffer writes


def _partitioner(decoded: set[str]) -> XnnpackPartitioner:
    """XNNPACK with runtime weights for exactly the decoded linears; everything else static.

    The stock flag force_non_static_weights_for_f32_linear=True is too broad: it makes every
    fp32 linear weight a runtime input (XNNPACK repacks it each call, even the high-precision
    ones), and GEMMConfig._get_bias_deps also drops every *conv* bias from the partition, after
    which XNNPACK refuses the depthwise convs at load time ("Failed to create depthwise
    convolution node ... xnn_status_invalid_parameter").
    """

    def is_decoded(node, ep):
        return ep.graph_signature.inputs_to_buffers.get(get_input_node(node, 1).name) in decoded

    class DecodedLinearConfig(LinearConfig):
        # Deps left out of the partition become runtime inputs of the delegate. The bias must
        # go with the weight: a runtime weight with a static bias segfaults in execute.
        def _get_weight_deps(self, node, ep, precision):
            return (True, []) if is_decoded(node, ep) else super()._get_weight_deps(node, ep, precision)

        def _get_bias_deps(self, node, ep, precision):
            return (True, []) if is_decoded(node, ep) else super()._get_bias_deps(node, ep, precision)

    configs = [DecodedLinearConfig if c is LinearConfig else c for c in ALL_PARTITIONER_CONFIGS]
    return XnnpackPartitioner(configs=configs)


def _drop_unused_constants(ep: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """Remove parameter/buffer inputs a method never reads. torch.export lifts every buffer of
    the module into each method; executorch only prunes unused *parameters*, so an unused
    buffer would be serialized again (init would carry the 0.5 MB iSTFT basis, forward the
    indices)."""
    placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    mutated = set(ep.graph_signature.buffers_to_mutate.values())
    for spec in list(ep.graph_signature.input_specs):
        node = placeholders[spec.arg.name]
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER) and not node.users and spec.target not in mutated:
            ep.graph_signature.input_specs.remove(spec)
            ep._state_dict.pop(spec.target, None)  # private, but there is no public setter
            ep._constants.pop(spec.target, None)
            ep.graph.erase_node(node)
    ep.graph_module.recompile()
    return ep


def packed_module(model: nn.Module, ternary_names: list[str], int8: list[str]) -> _TwoMethods:
    """A copy of `model` whose ternary and int8-stored layers are _Packed (weights zero until
    init runs)."""
    m = _persist_buffers(copy.deepcopy(model).eval())
    for name in [*ternary_names, *int8]:
        parent_name, _, child = name.removesuffix(".weight").rpartition(".")
        parent = m.get_submodule(parent_name)
        setattr(parent, child, _Packed(getattr(parent, child), ternary=name not in int8))
    for name in COMPUTED:
        m.get_buffer(name).zero_()
    return _TwoMethods(m).eval()


def export_packed(model: nn.Module, ternary_names: list[str], example: tuple, path: Path) -> dict:
    int8 = int8_names(model, ternary_names)
    wrapper = packed_module(model, ternary_names, int8)
    ep_f = torch.export.export(wrapper, example)
    wrapper.mode = "init"
    ep_i = torch.export.export(wrapper, ())
    wrapper.mode = "forward"
    decoded = {f"model.{n}" for n in [*ternary_names, *int8, *COMPUTED]}  # buffers init fills
    edge = to_edge_transform_and_lower(
        {"forward": _drop_unused_constants(ep_f), "init": _drop_unused_constants(ep_i)},
        # init stays in portable ops: delegating its multiplies made the file 8 KB larger
        # for no measurable gain in its one-off run.
        partitioner={"forward": [_partitioner(decoded)], "init": []},
    )
    # share_mutable_buffers: both methods get the same planned slot for each buffer (mem_id 2),
    # so what init writes is what forward reads.
    et = edge.to_executorch(ExecutorchBackendConfig(memory_planning_pass=MemoryPlanningPass(share_mutable_buffers=True)))
    _write(et, path)
    return {"methods": ["init", "forward"], "index_bytes": sum(-(-model.get_parameter(n).numel() // 5) for n in ternary_names),
            "computed_at_load": list(COMPUTED), "int8_weights": int8}


def export(model: nn.Module, example: tuple, path: Path, ternary: list[str] | None, settings: dict) -> dict:
    """The .pte at `path`: packed when given the ternary weights' names, else dense."""
    return export_dense(model, example, path) if ternary is None else export_packed(model, ternary, example, path)


def load(path: Path):
    """(program, forward method); a packed program's init has run. Keep the program alive:
    its methods share the planned arenas that hold the decoded weights."""
    program = Runtime.get().load_program(str(path))
    if "init" in program.method_names:
        program.load_method("init").execute([])
    return program, program.load_method("forward")


def runner(path: Path, settings: dict, threads: int | None = None) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Load once; the returned function runs `forward` on one pixels array (on `threads`
    threads of ExecuTorch's pool, which ignores torch.set_num_threads; default: the pool's)."""
    if threads:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(threads)
    program, forward = load(path)

    def run(pixels: np.ndarray, _program=program) -> list[np.ndarray]:  # the default keeps the arenas alive
        return [np.asarray(t) for t in forward.execute([torch.from_numpy(np.asarray(pixels, np.float32))])]

    return run


# c10::ScalarType codes of the dtypes the model uses.
_DTYPES = {3: "int32", 4: "int64", 6: "float32"}


def interface(path: Path) -> dict:
    """`forward`'s tensors as the runtime reads them from the file. A .pte has no tensor names:
    the input is `pixels` and outputs come by position, in OUTPUT_NAMES order."""
    meta = Runtime.get().load_program(str(path)).metadata("forward")

    def tensor(name: str, t) -> dict:
        code = int(t.dtype())
        return {"name": name, "shape": list(t.sizes()), "dtype": _DTYPES.get(code, f"scalar_type_{code}")}

    names = list(OUTPUT_NAMES) + [f"output_{i}" for i in range(len(OUTPUT_NAMES), meta.num_outputs())]
    return {"inputs": [tensor("pixels" if i == 0 else f"input_{i}", meta.input_tensor_meta(i))
                       for i in range(meta.num_inputs())],
            "outputs": [tensor(names[i], meta.output_tensor_meta(i)) for i in range(meta.num_outputs())]}
