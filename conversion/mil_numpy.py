"""A NumPy interpreter for the MIL program inside our Core ML .mlpackage.

Core ML prediction needs macOS, so on Linux (CI) the package could only be checked statically.
This module evaluates the saved package's MIL program (its `main` function, read back with
`conversion.coreml._load_program`) op by op with NumPy, floats in float32 and ints in int32, so
that numeric parity runs everywhere. Each op follows MIL's documented semantics (the op
docstrings in coremltools' `mil/ops/defs/iOS15..iOS18`); the palettized weights are decoded
by hand from the LUTs stored in the package.

It is an interpreter of the package we ship, not Core ML itself: it checks the conversion,
the graph and the packed weights, not Core ML's kernels, their fusion or their accumulation
order.

    run = prepare(conversion.coreml._load_program(path)[1])  # weights decoded once
    outputs = run({"pixels": image})                           # output name -> array
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf  # numpy has no erf; gelu EXACT needs it

if TYPE_CHECKING:  # coremltools is imported by whoever loaded the program, not here
    from coremltools.converters.mil.mil import Operation, Program

CONSTEXPR = ("constexpr_lut_to_dense", "constexpr_blockwise_shift_scale")


def decode_shift_scale(op: Operation) -> np.ndarray:
    """constexpr_blockwise_shift_scale by hand: scale * (data - offset), each scale (and offset)
    repeated over its block (per tensor, per channel or per block)."""
    data = np.asarray(op.data.val).astype(np.float64)
    scale = np.asarray(op.scale.val)

    def spread(v: np.ndarray) -> np.ndarray:
        for axis, (n, m) in enumerate(zip(data.shape, v.shape)):
            v = np.repeat(v, n // m, axis=axis)
        return v.astype(np.float64)

    off = 0.0 if op.offset is None else spread(np.asarray(op.offset.val))
    return ((data - off) * spread(scale)).astype(scale.dtype)


def decode_lut(op: Operation) -> np.ndarray:
    """constexpr_lut_to_dense (iOS18) by hand: indices (weight shape with the vector axis
    divided by the vector size) -> LUT rows."""
    idx = np.asarray(op.indices.val).astype(np.int64)
    src = op.lut.op
    lut = decode_shift_scale(src) if src.op_type == "constexpr_blockwise_shift_scale" else np.asarray(op.lut.val)
    if any(d != 1 for d in lut.shape[:-2]):
        raise ValueError(f"{op.name}: grouped LUTs are not decoded here")
    lut = lut.reshape(lut.shape[-2], lut.shape[-1])
    vsize = lut.shape[-1]
    if vsize == 1:
        return lut[idx, 0]
    axis = int(op.vector_axis.val) % idx.ndim
    vec = np.moveaxis(lut[idx], -1, axis + 1)  # each vector right after its own axis
    shape = list(idx.shape)
    shape[axis] *= vsize
    return vec.reshape(shape)


def _axes(axes, ndim: int) -> tuple[int, ...] | None:
    return None if axes is None else tuple(int(a) % ndim for a in axes)


def _conv_padding(pad_type: str, pad, size: tuple[int, ...], span: list[int],
                  strides: list[int]) -> list[tuple[int, int]]:
    """(before, after) per spatial axis; `span` is the dilated kernel. "same" pads the total
    that makes out = ceil(in / stride) (coremltools' aggregated_pad), the odd one after;
    "same_lower" puts it before."""
    if pad_type == "valid":
        return [(0, 0)] * len(size)
    if pad_type == "custom":
        pad = [0] * (2 * len(size)) if pad is None else [int(p) for p in pad]
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(size))]
    if pad_type not in ("same", "same_lower"):
        raise ValueError(f"conv pad_type {pad_type!r} is not one of valid, custom, same, same_lower")
    out = []
    for n, k, s in zip(size, span, strides):
        total = max(0, s * -(-n // s) - n + k - s)
        small, big = total // 2, total - total // 2
        out.append((big, small) if pad_type == "same_lower" else (small, big))
    return out


def _conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    k = weight.shape[2:]
    nd = len(k)
    strides = [1] * nd if strides is None else [int(s) for s in strides]
    dilations = [1] * nd if dilations is None else [int(d) for d in dilations]
    span = [(kk - 1) * d + 1 for kk, d in zip(k, dilations)]
    x = np.pad(x, [(0, 0), (0, 0), *_conv_padding(str(pad_type), pad, x.shape[2:], span, strides)])
    win = sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))  # (n, C, *positions, *span)
    win = win[(slice(None), slice(None), *(slice(None, None, s) for s in strides),
               *(slice(None, None, d) for d in dilations))]  # (n, C, *out, *k)
    groups = int(groups)
    cin, cout = x.shape[1] // groups, weight.shape[0] // groups
    contract = ([1, *range(2 + nd, 2 + 2 * nd)], [1, *range(2, 2 + nd)])
    out = np.concatenate([np.tensordot(win[:, g * cin:(g + 1) * cin], weight[g * cout:(g + 1) * cout], axes=contract)
                          for g in range(groups)], axis=-1)  # (n, *out, C_out)
    out = np.moveaxis(out, -1, 1)
    return out if bias is None else out + bias.reshape(-1, *[1] * nd)


def _linear(x, weight, bias=None):
    out = x @ weight.T
    return out if bias is None else out + bias


def _matmul(x, y, transpose_x=False, transpose_y=False):
    # transposes swap the last two axes and do nothing to a 1-D operand; np.matmul then has
    # MIL's broadcasting and 1-D promotion rules
    if transpose_x and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if transpose_y and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def _layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    axes = tuple(range(x.ndim)) if axes is None else tuple(int(a) % x.ndim for a in axes)
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + x.dtype.type(epsilon))
    # gamma and beta have shape x.shape[axes], in the order of `axes`
    order = np.argsort(axes)
    shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if gamma is not None:
        out = out * np.transpose(gamma, order).reshape(shape)
    if beta is not None:
        out = out + np.transpose(beta, order).reshape(shape)
    return out


def _gelu(x, mode="EXACT"):
    half, one = x.dtype.type(0.5), x.dtype.type(1)
    if mode == "EXACT":
        return half * x * (one + erf(x / x.dtype.type(np.sqrt(2))))
    if mode == "TANH_APPROXIMATION":
        inner = x.dtype.type(np.sqrt(2 / np.pi)) * (x + x.dtype.type(0.044715) * x ** 3)
        return half * x * (one + np.tanh(inner))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (one + np.exp(x.dtype.type(-1.702) * x))
    raise ValueError(f"gelu mode {mode!r} is not one of EXACT, TANH_APPROXIMATION, SIGMOID_APPROXIMATION")


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=int(axis), keepdims=True))  # exp(x) / sum exp(x), without overflow
    return e / e.sum(axis=int(axis), keepdims=True)


def _reduce_sum(x, axes=None, keep_dims=False):
    return np.sum(x, axis=_axes(axes, x.ndim), keepdims=bool(keep_dims), dtype=x.dtype)  # numpy widens int32


def _reduce_mean(x, axes=None, keep_dims=False):
    return np.mean(x, axis=_axes(axes, x.ndim), keepdims=bool(keep_dims), dtype=x.dtype)


def _reduce_max(x, axes=None, keep_dims=False):
    return np.max(x, axis=_axes(axes, x.ndim), keepdims=bool(keep_dims))


def _reduce_argmax(x, axis=-1, keep_dims=False, output_dtype="int32"):
    # ties: MIL does not say which index wins; numpy and PyTorch take the first
    return np.argmax(x, axis=int(axis), keepdims=bool(keep_dims)).astype(DTYPES[str(output_dtype)])


def _cumsum(x, axis=0, exclusive=False, reverse=False):
    axis = int(axis)
    if reverse:
        x = np.flip(x, axis)
    out = np.cumsum(x, axis=axis, dtype=x.dtype)  # numpy widens int32
    if exclusive:
        first = np.zeros_like(np.take(x, [0], axis=axis))
        out = np.concatenate([first, np.delete(out, -1, axis=axis)], axis=axis)
    return np.flip(out, axis) if reverse else out


def _pad(x, pad, mode="constant", constant_val=0.0):
    pad = [int(p) for p in pad]  # (before, after) for each of the last len(pad) / 2 axes
    pairs = [(0, 0)] * (x.ndim - len(pad) // 2) + [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]
    if mode == "constant":
        return np.pad(x, pairs, constant_values=constant_val)
    if mode == "reflect":
        return np.pad(x, pairs, mode="reflect")
    if mode == "replicate":
        return np.pad(x, pairs, mode="edge")
    raise ValueError(f"pad mode {mode!r} is not one of constant, reflect, replicate")


def _gather(x, indices, axis=0, batch_dims=0, validate_indices=False):
    axis, batch_dims = int(axis) % x.ndim, int(batch_dims)
    # iOS17+ gather: negative or too large indices are out of bounds and Core ML's result is
    # undefined (or an error with validate_indices), so there is nothing to mirror
    if indices.size and (indices.min() < 0 or indices.max() >= x.shape[axis]):
        raise IndexError(f"gather indices outside [0, {x.shape[axis]}): undefined in Core ML")
    if batch_dims == 0:
        return np.take(x, indices, axis=axis)
    xs = x.reshape(-1, *x.shape[batch_dims:])
    ids = indices.reshape(-1, *indices.shape[batch_dims:])
    parts = [np.take(xb, ib, axis=axis - batch_dims) for xb, ib in zip(xs, ids)]
    return np.stack(parts).reshape(*x.shape[:batch_dims], *parts[0].shape)


def _gather_along_axis(x, indices, axis=0, validate_indices=False):
    axis = int(axis)
    indices = np.asarray(indices).astype(np.int64)
    return np.take_along_axis(x, np.where(indices < 0, indices + x.shape[axis], indices), axis=axis)


def _slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    # as coremltools' own solve_slice_by_index_slice: a masked bound is Python's open bound
    # (0 / shape[i] for a positive stride); a squeezed axis is the element at begin[i]
    n = x.ndim
    stride = [1] * n if stride is None else [int(s) for s in stride]
    begin_mask = [False] * n if begin_mask is None else list(begin_mask)
    end_mask = [False] * n if end_mask is None else list(end_mask)
    squeeze_mask = [False] * n if squeeze_mask is None else list(squeeze_mask)
    index = []
    for i in range(n):
        b = None if begin_mask[i] else int(begin[i])
        if squeeze_mask[i]:
            index.append(0 if b is None else b)
        else:
            index.append(slice(b, None if end_mask[i] else int(end[i]), stride[i]))
    return np.asarray(x[tuple(index)])


def _reshape(x, shape):
    # iOS17: each 0 takes the dimension of x at the same place counted from the right (1 past
    # x's rank); one -1 is inferred
    shape = [int(s) for s in shape]
    for i in range(1, len(shape) + 1):
        if shape[-i] == 0:
            shape[-i] = x.shape[-i] if i <= x.ndim else 1
    return x.reshape(shape)


def _concat(values, axis, interleave=False):
    axis = int(axis) % values[0].ndim
    if not interleave:
        return np.concatenate(values, axis=axis)
    stacked = np.stack(values, axis=axis + 1)  # x0[0], x1[0], ..., x0[1], x1[1], ...
    return stacked.reshape(*values[0].shape[:axis], -1, *values[0].shape[axis + 1:])


def _fill_like(ref_tensor, value=np.float32(0)):
    return np.full(ref_tensor.shape, value, dtype=np.asarray(value).dtype)  # value's type, not ref's


def _squeeze(x, axes=None):
    return np.squeeze(x, axis=_axes(axes, x.ndim))


def _cast(x, dtype):
    return x.astype(DTYPES[str(dtype)])


DTYPES = {"bool": np.bool_, "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
          "int32": np.int32, "fp16": np.float16, "fp32": np.float32}

OPS: dict[str, Callable[..., np.ndarray]] = {
    "add": lambda x, y: np.add(x, y),
    "sub": lambda x, y: np.subtract(x, y),
    "mul": lambda x, y: np.multiply(x, y),
    "real_div": lambda x, y: np.true_divide(x, y),
    "equal": lambda x, y: np.equal(x, y),
    "not_equal": lambda x, y: np.not_equal(x, y),
    "less": lambda x, y: np.less(x, y),
    "greater_equal": lambda x, y: np.greater_equal(x, y),
    "less_equal": lambda x, y: np.less_equal(x, y),
    "logical_and": lambda x, y: np.logical_and(x, y),
    "exp": lambda x: np.exp(x),
    "log": lambda x, epsilon=1e-45: np.log(x + np.asarray(epsilon, x.dtype)),  # MIL: log(x + epsilon)
    "sin": lambda x: np.sin(x),
    "cos": lambda x: np.cos(x),
    # MIL: "0.5 is rounded to 0"; its value inference is np.round: ties to even, as torch.round
    "round": lambda x: np.round(x),
    "clip": lambda x, alpha, beta: np.clip(x, alpha, beta),
    "cast": _cast,
    "gelu": _gelu,
    "softmax": _softmax,
    "layer_norm": _layer_norm,
    "conv": _conv,
    "linear": _linear,
    "matmul": _matmul,
    "reduce_sum": _reduce_sum,
    "reduce_mean": _reduce_mean,
    "reduce_max": _reduce_max,
    "reduce_argmax": _reduce_argmax,
    "cumsum": _cumsum,
    "pad": _pad,
    "gather": _gather,
    "gather_along_axis": _gather_along_axis,
    "slice_by_index": _slice_by_index,
    "reshape": _reshape,
    "transpose": lambda x, perm: np.transpose(x, [int(p) for p in perm]),
    "squeeze": _squeeze,
    "expand_dims": lambda x, axes: np.expand_dims(x, tuple(int(a) for a in axes)),
    "concat": _concat,
    "tile": lambda x, reps: np.tile(x, [int(r) for r in reps]),
    "select": lambda cond, a, b: np.where(cond, a, b),
    "fill_like": _fill_like,
}


class Interpreter:
    """The `main` function of a MIL program, ready to run: consts and decoded constexpr
    weights are bound once (`values`, var name -> value), the other ops looked up in OPS."""

    def __init__(self, prog: Program) -> None:
        from coremltools.converters.mil.mil import types

        fn = prog.functions["main"]
        self.inputs = {name: (tuple(v.shape), types.nptype_from_builtin(v.dtype)) for name, v in fn.inputs.items()}
        self.outputs = [v.name for v in fn.outputs]
        self.values: dict[str, Any] = {}
        self.steps: list[tuple[Any, Callable[..., np.ndarray], dict[str, Any], list[tuple]]] = []
        for op in fn.operations:
            if op.op_type == "const":
                self.values[op.outputs[0].name] = op.outputs[0].val
            elif op.op_type in CONSTEXPR:
                decode = decode_lut if op.op_type == "constexpr_lut_to_dense" else decode_shift_scale
                self.values[op.outputs[0].name] = decode(op)
            elif op.op_type in OPS:
                args = {k: tuple(x.name for x in v) if isinstance(v, (list, tuple)) else v.name
                        for k, v in op.inputs.items()}
                want = [(o.name, tuple(o.shape), types.nptype_from_builtin(o.dtype)) for o in op.outputs]
                self.steps.append((op, OPS[op.op_type], args, want))
            else:
                raise NotImplementedError(f"MIL op {op.op_type} (op {op.name}) is not implemented by "
                                          f"conversion/mil_numpy.py; add it to OPS with its documented semantics")

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        env = dict(self.values)
        for name, (shape, dtype) in self.inputs.items():
            value = np.asarray(inputs[name], dtype=dtype)
            if value.shape != shape:
                raise ValueError(f"input {name}: shape {value.shape}, the program takes {shape}")
            env[name] = value
        for op, fn, args, want in self.steps:
            result = fn(**{k: [env[n] for n in v] if isinstance(v, tuple) else env[v] for k, v in args.items()})
            for value, (name, shape, dtype) in zip(result if len(want) > 1 else (result,), want):
                value = np.asarray(value)
                # MIL's type inference fixed each output's shape and dtype: a mismatch is a bug
                # here (a wrong broadcast, numpy widening int32), not a difference to report
                if value.dtype != dtype or len(value.shape) != len(shape) or \
                        any(isinstance(d, (int, np.integer)) and d != v for d, v in zip(shape, value.shape)):
                    raise RuntimeError(f"MIL op {op.op_type} ({op.name}) gave {value.dtype}{list(value.shape)}, "
                                       f"the program declares {np.dtype(dtype)}{list(shape)}")
                env[name] = value
        return {name: env[name] for name in self.outputs}


def prepare(prog: Program) -> Interpreter:
    """Bind `prog`'s consts and decode its palettized weights once; call the result on each
    input dict (parity runs hundreds of images)."""
    return Interpreter(prog)


def run(prog: Program, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate `prog.functions["main"]` (a pymil Program, e.g. `conversion.coreml._load_program(path)[1]`)
    on `inputs` (input name -> array); its outputs by name."""
    return prepare(prog)(inputs)
