"""Float reference executor: runs a Graph on NumPy arrays in float32.

It defines what the IR means numerically (the same results as ONNX Runtime on an imported model,
up to float rounding) and is the golden reference for quantized and compressed executors.
Convolution is im2col (a strided window view) times the weight matrix, one matmul per group.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tessera.errors import SpecError

from .graph import AvgPool, Graph, MaxPool, Node


def run(graph: Graph, inputs: np.ndarray | dict[str, np.ndarray],
        keep_all: bool = False) -> dict[str, np.ndarray]:
    """Execute ``graph``; returns its outputs by name (every tensor with ``keep_all``).
    A single array is accepted for a graph with one input."""
    shapes = graph.validate()
    if not graph.has_weights:
        missing = next(n.name for n in graph.nodes
                       if n.kind in ("conv2d", "gemm") and n.weight is None)
        raise SpecError(f"graph {graph.name!r} has no weights (node {missing!r}); import a model "
                        f"with weights or fill them with zoo.random_weights")
    if not isinstance(inputs, dict):
        if len(graph.inputs) != 1:
            raise SpecError(f"graph {graph.name!r} has inputs {list(graph.inputs)}; pass a dict")
        inputs = {next(iter(graph.inputs)): inputs}
    values: dict[str, np.ndarray] = {}
    for name, shape in graph.inputs.items():
        if name not in inputs:
            raise SpecError(f"missing input {name!r} of shape {shape}")
        x = np.asarray(inputs[name], dtype=np.float32)
        if x.shape != shape:
            raise SpecError(f"input {name!r} has shape {x.shape}, the graph expects {shape}")
        values[name] = x
    for node in graph.nodes:
        out = _KERNELS[node.kind](node, *(values[t] for t in node.inputs))
        assert out.shape == shapes[node.output], (node.name, out.shape)
        values[node.output] = out.astype(np.float32, copy=False)
    return values if keep_all else {t: values[t] for t in graph.outputs}


def _windows(x: np.ndarray, kernel, stride, pads, pad_value: float, ceil_extra=(0, 0)):
    """(C, Ho, Wo, R, S) view of the padded input's sliding windows."""
    (pt, pl, pb, pr), (sh, sw) = pads, stride
    xp = np.pad(x, ((0, 0), (pt, pb + ceil_extra[0]), (pl, pr + ceil_extra[1])),
                constant_values=pad_value)
    return sliding_window_view(xp, kernel, axis=(1, 2))[:, ::sh, ::sw]


def _conv2d(node: Node, x: np.ndarray) -> np.ndarray:
    op = node.op
    k, cg, r, s = op.weight_shape
    win = _windows(x, op.kernel, op.stride, op.pads, 0.0)
    c, ho, wo = win.shape[:3]
    g = op.groups
    cols = win.reshape(g, cg, ho, wo, r, s).transpose(0, 1, 4, 5, 2, 3).reshape(g, cg * r * s,
                                                                                 ho * wo)
    w = node.weight.reshape(g, k // g, cg * r * s)
    out = np.matmul(w, cols).reshape(k, ho, wo)
    if node.bias is not None:
        out += node.bias[:, None, None]
    return out


def _gemm(node: Node, x: np.ndarray) -> np.ndarray:
    out = node.weight @ x
    return out + node.bias if node.bias is not None else out


def _pool(node: Node, x: np.ndarray) -> np.ndarray:
    op = node.op
    c, h, w = x.shape
    out_shape = op.infer([x.shape])
    (r, s), (sh, sw), (pt, pl, pb, pr) = op.kernel, op.stride, op.pads
    # ceil_mode may need windows reaching past the end padding: pad them as "outside".
    extra = (max((out_shape[1] - 1) * sh + r - (h + pt + pb), 0),
             max((out_shape[2] - 1) * sw + s - (w + pl + pr), 0))
    if isinstance(op, MaxPool):
        win = _windows(x, op.kernel, op.stride, op.pads, -np.inf, extra)
        return win.max(axis=(3, 4))[:, :out_shape[1], :out_shape[2]]
    assert isinstance(op, AvgPool)
    win = _windows(x, op.kernel, op.stride, op.pads, 0.0, extra)
    total = win.sum(axis=(3, 4), dtype=np.float32)[:, :out_shape[1], :out_shape[2]]
    # The divisor counts the window's positions inside the input (and inside the explicit
    # padding with count_include_pad), never the ceil_mode overhang.
    inside = np.zeros((1, h + pt + pb, w + pl + pr), np.float32)
    if op.count_include_pad:
        inside[:] = 1
    else:
        inside[:, pt:pt + h, pl:pl + w] = 1
    count = _windows(inside, op.kernel, op.stride, (0, 0, 0, 0), 0.0, extra)
    count = count.sum(axis=(3, 4))[:, :out_shape[1], :out_shape[2]]
    return total / count


def _resize_matrix(n_in: int, n_out: int, mode: str, align_corners: bool) -> np.ndarray:
    """(n_out, n_in) interpolation weights along one axis."""
    m = np.zeros((n_out, n_in), np.float64)
    dst = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        m[np.arange(n_out), np.minimum(np.floor(dst * n_in / n_out).astype(int), n_in - 1)] = 1
        return m
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.clip((dst + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def _resize(node: Node, x: np.ndarray) -> np.ndarray:
    op = node.op
    _, h, w = x.shape
    mh = _resize_matrix(h, op.size[0], op.mode, op.align_corners).astype(np.float32)
    mw = _resize_matrix(w, op.size[1], op.mode, op.align_corners).astype(np.float32)
    return mh @ x @ mw.T


def _softmax(node: Node, x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=node.op.axis, keepdims=True))
    return e / e.sum(axis=node.op.axis, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1/(1+e^-x) without overflowing exp for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _hardsigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return np.clip(alpha * x + beta, 0, 1)


_KERNELS = {
    "conv2d": _conv2d,
    "gemm": _gemm,
    "relu": lambda node, x: np.maximum(x, 0),
    "clip": lambda node, x: np.clip(x, node.op.min, node.op.max),
    "sigmoid": lambda node, x: _sigmoid(x),
    "hardsigmoid": lambda node, x: _hardsigmoid(x, node.op.alpha, node.op.beta),
    "hardswish": lambda node, x: x * _hardsigmoid(x, 1 / 6, 0.5),
    "softmax": _softmax,
    "maxpool": _pool,
    "avgpool": _pool,
    "global_avgpool": lambda node, x: x.mean(axis=(1, 2), keepdims=True, dtype=np.float32),
    "add": lambda node, a, b: a + b,
    "mul": lambda node, a, b: a * b,
    "concat": lambda node, *xs: np.concatenate(xs, axis=node.op.axis),
    "flatten": lambda node, x: x.reshape(-1),
    "reshape": lambda node, x: x.reshape(node.op.shape),
    "resize": _resize,
}
