"""int8 quantization: symmetric per-output-channel weights, per-tensor activations.

The accelerators multiply int8 weights by int8 activations and requantize the int32 sums with the
post-processing units of ``tessera.compiler.requant``; this pass produces those integers and the
real scales behind them. It is also the fallback of the other passes for layers they cannot
represent (SmartDeal kernels that S does not divide, TBN layers below the tiling threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from tessera.compiler.requant import choose_multiplier
from tessera.errors import CompileError, SpecError

#: Largest weight magnitude: the range is symmetric (-127..127) so negation never overflows.
WEIGHT_QMAX = 127
#: Activations use the full int8 range that requantize() clamps to.
ACT_QMIN, ACT_QMAX = -128, 127


def check_weight(name: str, w) -> np.ndarray:
    """The weight as float64 if every pass can take it: a finite (K,C,R,S) conv or (out,in) FC."""
    w = np.asarray(w)
    if w.dtype.kind not in "fiu":
        raise SpecError(f"layer '{name}': weight dtype {w.dtype} is not supported: allowed is a "
                        "real number type")
    if w.ndim not in (2, 4) or w.size == 0:
        raise SpecError(f"layer '{name}': weight shape {w.shape} is not supported: allowed is "
                        "(K, C, R, S) for a conv or (out, in) for an FC layer, none of them 0")
    bad = ~np.isfinite(w)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise SpecError(f"layer '{name}': weight has {int(bad.sum())} non-finite values (first "
                        f"{w[first]!r} at index {first}): allowed are finite numbers")
    return w.astype(np.float64)


def _per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """Per-output-channel values shaped to broadcast against a weight of ``ndim`` dimensions."""
    return values.reshape(-1, *([1] * (ndim - 1)))


@dataclass(frozen=True)
class Int8Weight:
    """A weight as int8 integers with one float32 scale per output channel: w = w_int * scale[k]."""
    w_int: np.ndarray
    scale: np.ndarray

    def dequantize(self) -> np.ndarray:
        return self.w_int.astype(np.float64) * _per_channel(self.scale, self.w_int.ndim)


def quantize_weight(w, name: str = "weight") -> Int8Weight:
    """Symmetric per-output-channel int8: each channel's largest magnitude maps to 127."""
    w = check_weight(name, w)
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    # float32 because that is what is stored; an all-zero channel gets scale 1 and stays zero
    scale = np.where(amax > 0, amax / WEIGHT_QMAX, 1.0).astype(np.float32)
    w_int = np.clip(np.rint(w / _per_channel(scale.astype(np.float64), w.ndim)),
                    -WEIGHT_QMAX, WEIGHT_QMAX)
    return Int8Weight(w_int.astype(np.int8), scale)


def calibrate_scale(samples: Iterable, percentile: float = 100.0,
                    name: str = "activation") -> float:
    """Per-tensor activation scale from sample inputs: the ``percentile`` of |x| maps to 127.

    100 keeps every sample in range; a lower percentile trades clipping of outliers for resolution.
    """
    if not (0 < percentile <= 100):
        raise CompileError(f"calibration percentile = {percentile!r} is invalid: allowed is a "
                           "number in (0, 100]")
    arrays = [np.abs(np.asarray(s, dtype=np.float64)).ravel() for s in samples]
    values = np.concatenate(arrays) if arrays else np.zeros(0)
    if values.size == 0:
        raise SpecError(f"'{name}': no calibration samples: allowed is at least one value")
    if not np.all(np.isfinite(values)):
        raise SpecError(f"'{name}': calibration samples contain non-finite values: allowed are "
                        "finite numbers")
    amax = values.max() if percentile == 100 else float(np.percentile(values, percentile))
    return float(amax / ACT_QMAX) if amax > 0 else 1.0


def quantize_activation(x, scale: float) -> np.ndarray:
    """int8 activations for a per-tensor scale (round half to even, saturating)."""
    return np.clip(np.rint(np.asarray(x, np.float64) / scale), ACT_QMIN, ACT_QMAX).astype(np.int8)


@dataclass(frozen=True)
class RequantParams:
    """The post-processing parameters of one layer, per output channel (see requant.py)."""
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray


def requant_params(w_scale, in_scale: float, out_scale: float, bias=None,
                   name: str = "layer") -> RequantParams:
    """bias/mult/shift taking int32 sums in (in_scale * w_scale) units to out_scale int8 outputs."""
    acc_scale = float(in_scale) * np.asarray(w_scale, dtype=np.float64)
    mult, shift = choose_multiplier(acc_scale / float(out_scale))
    if bias is None:
        bias_int = np.zeros(acc_scale.shape, np.int64)
    else:
        bias_real = np.rint(np.asarray(bias, np.float64) / acc_scale)
        if not np.all(np.abs(bias_real) < 2 ** 31):
            raise CompileError(f"layer '{name}': quantized bias does not fit int32: allowed is "
                               "|bias| below 2**31 * in_scale * w_scale")
        bias_int = bias_real.astype(np.int64)
    return RequantParams(bias_int, mult, shift)
