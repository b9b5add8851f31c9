"""Requantization as the post-processing units compute it, and how to choose its parameters.

Per output channel the hardware holds ``bias`` (int32), ``mult`` (uint16) and ``shift`` (0..47):

    s = wrap_acc(acc + bias)                    # the accumulator width, two's complement
    p = s * mult                                # exact
    r = (p + 2**(shift-1)) >> shift  if shift   # round half up, arithmetic shift
    y = clamp(r, -128, 127), then max(y, 0) when the layer has ReLU

so the real-valued scale applied is ``mult / 2**shift``.
"""

from __future__ import annotations

import numpy as np

from tessera.errors import CompileError

MULT_BITS = 16
MAX_SHIFT = 47


def wrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to ``bits`` bits."""
    values = np.asarray(values, dtype=np.int64)
    half = np.int64(1) << (bits - 1)
    return ((values + half) & ((np.int64(1) << bits) - 1)) - half


def requantize(acc: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
               relu: bool, acc_bits: int = 32) -> np.ndarray:
    """int8 outputs from accumulators; channel parameters broadcast along the last axis."""
    s = wrap(np.asarray(acc, np.int64) + np.asarray(bias, np.int64), acc_bits)
    p = s * np.asarray(mult, np.int64)
    shift = np.asarray(shift, np.int64)
    rnd = np.where(shift > 0, np.int64(1) << np.maximum(shift - 1, 0), 0)
    r = (p + rnd) >> shift
    y = np.clip(r, 0 if relu else -128, 127)
    return y.astype(np.int8)


def choose_multiplier(scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mult, shift) with mult/2**shift closest to each positive real ``scale``, mult < 2**16."""
    scale = np.asarray(scale, dtype=np.float64)
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise CompileError("requantization scale must be finite and non-negative, got "
                           f"{scale[~np.isfinite(scale) | (scale < 0)][0]!r}")
    mult = np.zeros(scale.shape, np.int64)
    shift = np.zeros(scale.shape, np.int64)
    pos = scale > 0
    if np.any(pos):
        # The largest shift keeping mult below 2**16 gives the most precision.
        e = np.floor(np.log2(scale[pos])).astype(np.int64)
        sh = np.clip(MULT_BITS - 1 - e, 0, MAX_SHIFT)
        m = np.round(scale[pos] * np.exp2(sh.astype(np.float64))).astype(np.int64)
        over = m >= (1 << MULT_BITS)
        m[over] = np.round(scale[pos][over] * np.exp2(sh[over] - 1.0)).astype(np.int64)
        sh[over] -= 1
        if np.any(m >= (1 << MULT_BITS)) or np.any(sh < 0):
            raise CompileError(f"requantization scale {scale[pos].max():g} is too large: "
                               f"allowed is below {2 ** MULT_BITS - 1}")
        mult[pos], shift[pos] = m, sh
    return mult, shift
