"""How the LCP array's data sit in DRAM (docs/lcp.md, "Memory layout").

- Activations: *planes* of ``rows`` channels. Plane g holds channels g*rows .. g*rows+rows-1 of
  every pixel, row-major: byte ``((g*H + y)*W + x)*rows + i`` is channel g*rows+i of pixel (y, x).
  One pixel of one plane is one activation-buffer entry and one input vector of the array.
- Weights: one ``rows x cols`` block per (column block n, plane g, tap t = r*S + s), in that order.
  A block is ``rows`` lines of ``cols`` bytes shifted in through the first array row, so the line
  for array row rows-1 comes first. Byte c of the line for array row i is w[n*cols+c, g*rows+i, r, s].
- Parameters: per column block, ``cols`` records of 8 bytes: bias int32, mult uint16, shift uint8,
  zero.

Channels beyond C or K are zero, so padded lanes compute zeros and write zeros.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tessera.config import LcpConfig

from .isa import PARAM_BYTES


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class TensorLayout:
    """An activation tensor (C, H, W) stored as planes of ``rows`` channels at ``offset``."""
    offset: int
    C: int
    H: int
    W: int
    rows: int

    @property
    def planes(self) -> int:
        return ceil_div(self.C, self.rows)

    @property
    def plane_bytes(self) -> int:
        return self.H * self.W * self.rows

    @property
    def size(self) -> int:
        return self.planes * self.plane_bytes

    def to_dict(self) -> dict:
        return {**asdict(self), "planes": self.planes, "plane_bytes": self.plane_bytes}

    @classmethod
    def from_dict(cls, d: dict) -> "TensorLayout":
        return cls(d["offset"], d["C"], d["H"], d["W"], d["rows"])


def pack_tensor(x: np.ndarray, rows: int) -> bytes:
    C, H, W = x.shape
    G = ceil_div(C, rows)
    p = np.zeros((G * rows, H, W), np.int8)
    p[:C] = x
    return p.reshape(G, rows, H, W).transpose(0, 2, 3, 1).tobytes()


def unpack_tensor(image: bytes | np.ndarray, t: TensorLayout) -> np.ndarray:
    raw = np.frombuffer(image, np.int8, count=t.size, offset=t.offset)
    p = raw.reshape(t.planes, t.H, t.W, t.rows).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(p.reshape(t.planes * t.rows, t.H, t.W)[:t.C])


def weight_blocks(K: int, C: int, R: int, S: int, cfg: LcpConfig) -> tuple[int, int, int]:
    """(column blocks, planes, taps) of a layer's weights."""
    return ceil_div(K, cfg.cols), ceil_div(C, cfg.rows), R * S


def block_bytes(cfg: LcpConfig) -> int:
    return cfg.rows * cfg.cols


def pack_weights(w: np.ndarray, cfg: LcpConfig) -> bytes:
    K, C, R, S = w.shape
    NT, G, T = weight_blocks(K, C, R, S, cfg)
    p = np.zeros((NT * cfg.cols, G * cfg.rows, R * S), np.int8)
    p[:K, :C] = w.reshape(K, C, R * S)
    # (n, c, g, i, t) -> (n, g, t, i reversed, c)
    b = p.reshape(NT, cfg.cols, G, cfg.rows, R * S).transpose(0, 2, 4, 3, 1)[:, :, :, ::-1, :]
    return np.ascontiguousarray(b).tobytes()


def unpack_weights(image: bytes | np.ndarray, offset: int, shape: tuple[int, int, int, int],
                   cfg: LcpConfig) -> np.ndarray:
    K, C, R, S = shape
    NT, G, T = weight_blocks(K, C, R, S, cfg)
    raw = np.frombuffer(image, np.int8, count=NT * G * T * block_bytes(cfg), offset=offset)
    b = raw.reshape(NT, G, T, cfg.rows, cfg.cols)[:, :, :, ::-1, :]
    p = b.transpose(0, 4, 1, 3, 2).reshape(NT * cfg.cols, G * cfg.rows, T)
    return np.ascontiguousarray(p[:K, :C].reshape(K, C, R, S))


PARAM_DTYPE = np.dtype([("bias", "<i4"), ("mult", "<u2"), ("shift", "u1"), ("pad", "u1")])
assert PARAM_DTYPE.itemsize == PARAM_BYTES


def pack_params(bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, cfg: LcpConfig) -> bytes:
    K = bias.shape[0]
    rec = np.zeros(ceil_div(K, cfg.cols) * cfg.cols, PARAM_DTYPE)
    rec["bias"][:K], rec["mult"][:K], rec["shift"][:K] = bias, mult, shift
    return rec.tobytes()


def unpack_params(image: bytes | np.ndarray, offset: int, K: int, cfg: LcpConfig):
    rec = np.frombuffer(image, PARAM_DTYPE, count=K, offset=offset)
    return (rec["bias"].astype(np.int64), rec["mult"].astype(np.int64),
            rec["shift"].astype(np.int64))
