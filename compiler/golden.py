"""Golden integer semantics of one accelerator layer, in NumPy.

This is the definition the RTL and the simulators are checked against (docs/lcp.md):

    acc[k, y, x] = wrap_acc( sum_{c,r,s} x[c, y*st + r - pad_top, x*st + s - pad_left] * w[k, c, r, s] )
    out = requantize(acc, bias, mult, shift, relu)           (compiler/requant.py)
    then, with pool, out[k, y, x] = max over the 2x2 window at (2y, 2x) (floor mode)

Weights are int8, or the (at most 24-bit) integers a SmartDeal rebuild engine produces. Inputs
outside the image are zero. Sums are exact in float64 (|sum| < 2**53 for fewer than 2**21 products
per output) before the two's-complement wrap to the accumulator width.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import QuantLayer
from .requant import requantize, wrap


def conv_accumulate(x: np.ndarray, w: np.ndarray, stride: int, pads, acc_bits: int,
                    depthwise: bool = False) -> np.ndarray:
    """Wrapped accumulators (K, Ho, Wo) of an integer conv; x is (C, H, W), w is (K, C, R, S)
    (or (C, 1, R, S) when depthwise: output channel k sees only input channel k)."""
    K, Cw, R, S = w.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr)))
    win = sliding_window_view(xp, (R, S), axis=(1, 2))[:, ::stride, ::stride]  # C,Ho,Wo,R,S
    Ho, Wo = win.shape[1], win.shape[2]
    wf = w.astype(np.float64)  # exact: see module docstring
    if depthwise:
        acc = np.einsum("chwrs,crs->chw", win, wf[:, 0])
        return wrap(acc.astype(np.int64), acc_bits)
    cols = win.transpose(1, 2, 0, 3, 4).reshape(Ho * Wo, Cw * R * S)
    acc = cols @ wf.reshape(K, Cw * R * S).T
    return wrap(acc.astype(np.int64).T.reshape(K, Ho, Wo), acc_bits)


def max_pool2(y: np.ndarray) -> np.ndarray:
    """2x2 max pooling with stride 2, floor mode, over the last two axes."""
    h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    v = y[..., :h, :w]
    return np.maximum(np.maximum(v[..., 0::2, 0::2], v[..., 0::2, 1::2]),
                      np.maximum(v[..., 1::2, 0::2], v[..., 1::2, 1::2]))


def run_layer(layer: QuantLayer, x: np.ndarray, acc_bits: int = 32) -> np.ndarray:
    """int8 output (K, out_h, out_w) of one layer on an int8 input (C, H, W)."""
    s = layer.shape
    assert x.shape == s.input_shape and x.dtype == np.int8, (x.shape, x.dtype)
    acc = conv_accumulate(x, layer.weights, s.stride, s.pads, acc_bits, s.depthwise)
    y = requantize(acc.transpose(1, 2, 0), layer.bias, layer.mult, layer.shift, s.relu,
                   acc_bits).transpose(2, 0, 1)
    return max_pool2(y) if s.pool else y


def run_network(layers: list[QuantLayer], x: np.ndarray, acc_bits: int = 32) -> list[np.ndarray]:
    """Every layer's output, in order, for a sequential network."""
    outs = []
    for layer in layers:
        x = run_layer(layer, x, acc_bits)
        outs.append(x)
    return outs
