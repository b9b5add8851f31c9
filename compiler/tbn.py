"""Tiled Bit Networks (tiled-bit-networks.md section 3): one binary tile per layer, reused p times.

A layer's N weights, flattened in C order, are cut into p consecutive segments of q = ceil(N / p)
weights (the last one zero-padded when p does not divide N). The tile is the sign of the segments'
sum (eq. 2-3: t_i = +1 where the sum is > 0, else -1) and the weight is rebuilt as the tile
repeated p times (eq. 4-5, cropped to N), scaled by alpha: the mean |W| of the layer (eq. 7, one
alpha) or of each segment (eq. 9, one alpha per tile). Only the tile (q bits) and the alphas
(float32) are stored. Training a TBN is out of scope: the tile comes from given float weights.
Layers with fewer than ``min_size`` weights (the paper's lambda) are not tiled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tessera.compiler.quantize import check_weight
from tessera.errors import CompileError

ALPHA_MODES = ("layer", "tile")


@dataclass(frozen=True)
class TbnOptions:
    p: int = 4
    alpha: str = "layer"
    min_size: int = 64_000

    def __post_init__(self):
        if not (isinstance(self.p, int) and not isinstance(self.p, bool) and self.p >= 1):
            raise CompileError(f"tbn option p = {self.p!r} is invalid: allowed is a positive "
                               "integer")
        if self.alpha not in ALPHA_MODES:
            raise CompileError(f"tbn option alpha = {self.alpha!r} is invalid: allowed is one of "
                               f"{', '.join(ALPHA_MODES)}")
        if not (isinstance(self.min_size, int) and self.min_size >= 0):
            raise CompileError(f"tbn option min_size = {self.min_size!r} is invalid: allowed is "
                               "a non-negative integer")

    def tiles(self, shape: tuple[int, ...]) -> bool:
        """Whether a layer of this shape is tiled (at least min_size and p weights)."""
        return math.prod(shape) >= max(self.min_size, self.p)


@dataclass(frozen=True)
class TbnLayer:
    """A tiled layer: the packed tile (bit 1 = +1, np.packbits order) and its alphas."""
    name: str
    shape: tuple[int, ...]
    p: int
    q: int
    tile_bits: np.ndarray     # uint8, ceil(q / 8) bytes
    alphas: np.ndarray        # float32: 1 (per layer) or p (per tile)

    def tile(self) -> np.ndarray:
        return np.where(np.unpackbits(self.tile_bits, count=self.q), 1, -1).astype(np.int8)

    @property
    def bits(self) -> int:
        return self.q + 32 * self.alphas.size

    def rebuilt(self) -> np.ndarray:
        per_weight = np.repeat(self.alphas.astype(np.float64), self.p * self.q // self.alphas.size)
        tiled = np.tile(self.tile().astype(np.float64), self.p) * per_weight
        return tiled[:math.prod(self.shape)].reshape(self.shape)


def tile_layer(w, options: TbnOptions = TbnOptions(), name: str = "weight") -> TbnLayer:
    """Build the tile and alphas of one layer by reshape, sum and sign (section 3)."""
    w = check_weight(name, w)
    if not options.tiles(w.shape):
        raise CompileError(f"layer '{name}' has {w.size} weights: TBN tiles layers of at least "
                           f"{max(options.min_size, options.p)} (min_size, p)")
    q = -(-w.size // options.p)
    segments = np.zeros(options.p * q)
    segments[:w.size] = w.ravel()
    segments = segments.reshape(options.p, q)
    tile = segments.sum(axis=0) > 0
    if options.alpha == "layer":
        alphas = np.array([np.abs(w).mean()])
    else:
        # the last segment may be short, or even empty
        lengths = np.clip(w.size - q * np.arange(options.p), 0, q)
        alphas = np.abs(segments).sum(axis=1) / np.maximum(lengths, 1)
    return TbnLayer(name, tuple(w.shape), options.p, q, np.packbits(tile),
                    alphas.astype(np.float32))
