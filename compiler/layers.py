"""Layer shapes the accelerators run, and the layer SPEC grammar of the CLI.

Every layer the arrays execute is an int8 2-D convolution over a (C, H, W) feature map with
batch 1. A GEMM Y[M,N] = X[M,K] W[K,N] is the 1x1 convolution of a (K, 1, M) map: its M rows are
the M pixels of a one-row image, so one code path compiles, simulates and checks both.

SPEC grammar::

    gemm:M=<int>,K=<int>,N=<int>[,relu]
    fc:K=<int>,N=<int>[,relu]                       (a GEMM with M=1)
    conv:C=<int>,K=<int>,H=<int>,W=<int>[,R=3][,S=R][,stride=1][,pad=0][,groups=1][,relu][,pool=2]

``groups=C`` (with K=C) is a depthwise convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessera.errors import SpecError

__all__ = ["LayerShape", "QuantLayer", "parse_spec"]


@dataclass(frozen=True)
class LayerShape:
    """An int8 convolution: C->K channels, HxW input, RxS kernel, stride, (top, left, bottom,
    right) zero padding, then optional ReLU and 2x2/2 max pooling (floor mode)."""

    name: str
    kind: str  # "conv", "gemm" or "fc": how the user wrote it; the hardware sees a conv
    C: int
    K: int
    H: int
    W: int
    R: int = 1
    S: int = 1
    stride: int = 1
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    relu: bool = False
    pool: bool = False
    groups: int = 1  # 1, or C for a depthwise convolution (then K == C)

    def __post_init__(self):
        if self.groups not in (1, self.C) or (self.groups > 1 and self.K != self.C):
            raise SpecError(f"layer '{self.name}': groups={self.groups} is not supported: allowed "
                            f"is 1, or C={self.C} with K=C (depthwise)")
        for f in ("C", "K", "H", "W", "R", "S", "stride"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise SpecError(f"layer '{self.name}': {f}={v!r} is invalid: allowed is a "
                                "positive integer")
        if any(p < 0 for p in self.pads):
            raise SpecError(f"layer '{self.name}': pad={self.pads} is invalid: allowed is >= 0")
        if any(p >= k for p, k in zip(self.pads, (self.R, self.S, self.R, self.S))):
            raise SpecError(f"layer '{self.name}': pad={max(self.pads)} is invalid: allowed is "
                            f"less than the kernel size ({self.R}x{self.S})")
        if self.conv_h < 1 or self.conv_w < 1:
            raise SpecError(f"layer '{self.name}': a {self.R}x{self.S} kernel does not fit the "
                            f"{self.H}x{self.W} input with pad={self.pads[0]}: output would be "
                            f"{self.conv_h}x{self.conv_w}")
        if self.pool and (self.conv_h < 2 or self.conv_w < 2):
            raise SpecError(f"layer '{self.name}': pool=2 needs a conv output of at least 2x2, "
                            f"got {self.conv_h}x{self.conv_w}")

    @classmethod
    def gemm(cls, name: str, M: int, K: int, N: int, relu: bool = False, kind: str = "gemm"):
        return cls(name, kind, C=K, K=N, H=1, W=M, relu=relu)

    @property
    def conv_h(self) -> int:
        return (self.H + self.pads[0] + self.pads[2] - self.R) // self.stride + 1

    @property
    def conv_w(self) -> int:
        return (self.W + self.pads[1] + self.pads[3] - self.S) // self.stride + 1

    @property
    def out_h(self) -> int:
        return self.conv_h // 2 if self.pool else self.conv_h

    @property
    def out_w(self) -> int:
        return self.conv_w // 2 if self.pool else self.conv_w

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer as written (pooled-away rows excluded)."""
        h = 2 * self.out_h if self.pool else self.conv_h
        w = 2 * self.out_w if self.pool else self.conv_w
        return self.K * (self.C // self.groups) * self.R * self.S * h * w

    @property
    def depthwise(self) -> bool:
        return self.groups > 1

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.C, self.H, self.W)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (self.K, self.out_h, self.out_w)

    def describe(self) -> str:
        if self.kind in ("gemm", "fc"):
            return f"{self.kind} M={self.W} K={self.C} N={self.K}" + (" relu" if self.relu else "")
        s = (f"{'dwconv' if self.depthwise else 'conv'} {self.C}->{self.K} {self.H}x{self.W} "
             f"k{self.R}x{self.S} s{self.stride} p{self.pads[0]}")
        return s + (" relu" if self.relu else "") + (" pool2" if self.pool else "")


@dataclass(frozen=True)
class QuantLayer:
    """A layer with its integer data: weights (K, C/groups, R, S), int32 bias and the per-channel
    requantization (mult, shift) of compiler/requant.py.

    Weights are int8, or, for a SmartDeal-decomposed layer (``sd`` holds its codes and bases),
    the wider integers the rebuild engines compute (compiler/smartdeal.py: rebuild_int).
    """

    shape: LayerShape
    weights: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    sd: object | None = None  # compiler.smartdeal.SmartDealLayer

    def __post_init__(self):
        s = self.shape
        want = s.weight_shape
        if self.weights.shape != want or self.weights.dtype not in (np.int8, np.int32):
            raise SpecError(f"layer '{s.name}': weights must be int8 (or rebuilt int32) of shape "
                            f"{want}, got {self.weights.dtype} {self.weights.shape}")
        for name, arr, lo, hi in (("bias", self.bias, -2**31, 2**31 - 1),
                                  ("mult", self.mult, 0, 2**16 - 1), ("shift", self.shift, 0, 47)):
            if arr.shape != (s.K,):
                raise SpecError(f"layer '{s.name}': {name} must have shape ({s.K},), "
                                f"got {arr.shape}")
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise SpecError(f"layer '{s.name}': {name} out of range: allowed is {lo}..{hi}")


_KEYS = {
    "gemm": ({"M", "K", "N"}, set()),
    "fc": ({"K", "N"}, set()),
    "conv": ({"C", "K", "H", "W"}, {"R", "S", "stride", "pad", "groups"}),
}


def parse_spec(spec: str, name: str | None = None) -> LayerShape:
    """Parse one layer SPEC (see the module docstring) into a LayerShape."""
    kind, sep, body = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in _KEYS or not sep:
        raise SpecError(f"layer SPEC '{spec}' is malformed: it must start with gemm:, fc: or conv:")
    required, optional = _KEYS[kind]
    values: dict[str, int] = {}
    relu = False
    pool = False
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq:
            if key.lower() == "relu":
                relu = True
                continue
            raise SpecError(f"layer SPEC '{spec}': item '{item}' is malformed: expected KEY=VALUE "
                            "or relu")
        if key == "pool":
            if kind != "conv" or raw.strip() != "2":
                raise SpecError(f"layer SPEC '{spec}': pool={raw.strip()} is not supported: allowed "
                                "is pool=2 on conv layers (2x2 max pooling, stride 2)")
            pool = True
            continue
        if key not in required | optional:
            raise SpecError(f"layer SPEC '{spec}': unknown key '{key}' for {kind}: allowed keys are "
                            f"{', '.join(sorted(required | optional))}, relu"
                            + (", pool=2" if kind == "conv" else ""))
        if key in values:
            raise SpecError(f"layer SPEC '{spec}': key '{key}' is given twice")
        try:
            v = int(raw.strip())
        except ValueError:
            raise SpecError(f"layer SPEC '{spec}': {key}={raw.strip()!r} is not an integer") from None
        if v < (0 if key == "pad" else 1):
            raise SpecError(f"layer SPEC '{spec}': {key}={v} is invalid: allowed is "
                            + ("an integer >= 0" if key == "pad" else "a positive integer"))
        values[key] = v
    missing = sorted(required - set(values))
    if missing:
        raise SpecError(f"layer SPEC '{spec}': missing key '{missing[0]}' (required: "
                        f"{', '.join(sorted(required))})")
    name = name or kind
    if kind == "gemm":
        return LayerShape.gemm(name, values["M"], values["K"], values["N"], relu)
    if kind == "fc":
        return LayerShape.gemm(name, 1, values["K"], values["N"], relu, kind="fc")
    R = values.get("R", 3)
    S = values.get("S", R)
    pad = values.get("pad", 0)
    try:
        return LayerShape(name, "conv", C=values["C"], K=values["K"], H=values["H"],
                          W=values["W"], R=R, S=S, stride=values.get("stride", 1),
                          pads=(pad,) * 4, relu=relu, pool=pool, groups=values.get("groups", 1))
    except SpecError as exc:
        raise SpecError(f"layer SPEC '{spec}': {exc}") from None


def random_quant_layer(shape: LayerShape, rng: np.random.Generator) -> QuantLayer:
    """Random int8 weights and a bias/requantization that spreads outputs over the int8 range."""
    from .requant import choose_multiplier

    w = rng.integers(-128, 128, size=shape.weight_shape, dtype=np.int8)
    fan_in = shape.C // shape.groups * shape.R * shape.S
    acc_std = np.sqrt(fan_in) * 74.0 * 74.0  # std of uniform int8 is about 74
    bias = rng.integers(-int(acc_std), int(acc_std) + 1, size=shape.K).astype(np.int64)
    scale = rng.uniform(20.0, 60.0, size=shape.K) / acc_std
    mult, shift = choose_multiplier(scale)
    return QuantLayer(shape, w, bias, mult, shift)


def topology_shapes(layers) -> list[LayerShape]:
    """SCALE-Sim topology layers (compiler/topology.py) as convolutions. SCALE-Sim's IFMAP sizes
    already include the padding, so the convolutions have none."""
    return [LayerShape(t.name, "conv", C=t.channels, K=t.num_filters, H=t.ifmap_h, W=t.ifmap_w,
                       R=t.filter_h, S=t.filter_w, stride=t.stride) for t in layers]
