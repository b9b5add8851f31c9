"""How a layer maps onto the SmartDeal array (docs/smartdeal.md, "Mapping").

Tensors live in DRAM as *planes* of L = dim_c*S channels: byte ((p*Hs + y)*Ws + x)*L + lane holds
channel p*L + lane of stored pixel (y, x). A tensor is stored with the zero margins its consumer
needs (its padding, and room for the last row segment's window), so the array never tests bounds.

A layer runs as tiles: one output row (stride-1 columns x0 .. x0+dim_f-1) of one group of output
channels (one per slice). A tile is a sequence of *passes*; in a pass each line runs one *pair*
(an input channel and kernel row, or a row of S input channels for pointwise layers) over its
dim_f MACs. Pairs whose Ce row is zero for the whole channel group are never scheduled: that is
the index selector's skipping. Pairs are packed row-major within a channel group (dim_c input
channels, one basis per slice), dim_c per pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessera.config import SmartDealConfig
from tessera.errors import CompileError

from ..layers import LayerShape, QuantLayer
from .isa import Mode


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def mode_of(shape: LayerShape) -> Mode:
    if shape.depthwise:
        return Mode.DEPTHWISE
    if shape.R == 1 and shape.S == 1:
        return Mode.POINTWISE
    return Mode.CONV


def group_size(shape: LayerShape, cfg: SmartDealConfig) -> int:
    """Output channels per group: dim_m, or for depthwise the largest divisor of L <= dim_m (a
    depthwise group must sit in one input plane)."""
    if not shape.depthwise:
        return cfg.dim_m
    L = cfg.gb_lanes
    return max(d for d in range(1, min(cfg.dim_m, L) + 1) if L % d == 0)


def check_supported(shape: LayerShape, cfg: SmartDealConfig) -> None:
    mode = mode_of(shape)
    if mode != Mode.POINTWISE and (shape.R > cfg.S or shape.S > cfg.S):
        raise CompileError(f"layer '{shape.name}': a {shape.R}x{shape.S} kernel does not fit the "
                           f"SmartDeal lines: allowed is at most S x S = {cfg.S}x{cfg.S} "
                           "(run it on the LCP array or the host)")
    if mode == Mode.POINTWISE and any(shape.pads):
        raise CompileError(f"layer '{shape.name}': a padded 1x1 convolution is not supported: "
                           "allowed is pad=0")
    if shape.stride > 2:
        raise CompileError(f"layer '{shape.name}': stride {shape.stride} is not supported on the "
                           "SmartDeal array: allowed is 1 or 2")
    if group_size(shape, cfg) % cfg.dram_width:
        raise CompileError(f"layer '{shape.name}': its {group_size(shape, cfg)}-channel output "
                           f"groups are not whole {cfg.dram_width}-byte beats: allowed needs "
                           "dim_m (or, depthwise, the group) to be a multiple of dram_width")
    if shape.pool:
        raise CompileError(f"layer '{shape.name}': the SmartDeal accelerator has no pooling "
                           "unit: allowed is pool on the host (or on the LCP array)")


@dataclass(frozen=True)
class Geometry:
    """A layer's tiles in stride-1 space and what it needs of its input's storage."""
    mode: Mode
    taps: int        # steps per line per pass
    nseg: int        # row segments of dim_f stride-1 columns
    rows: int        # kernel rows (1 for pointwise)
    mt: int          # input margins: top and left (the layer's padding)
    ml: int
    min_hs: int      # stored input rows and row pitch the layer reads
    min_ws: int


def geometry(shape: LayerShape, cfg: SmartDealConfig) -> Geometry:
    mode = mode_of(shape)
    st = shape.stride
    nseg = ceil_div((shape.out_w - 1) * st + 1, cfg.dim_f)
    if mode == Mode.POINTWISE:
        taps, rows, mt, ml = cfg.S, 1, 0, 0
        span = nseg * cfg.dim_f
    else:
        taps, rows, mt, ml = shape.S, shape.R, shape.pads[0], shape.pads[1]
        span = (nseg + (1 if taps > 1 else 0)) * cfg.dim_f
    min_ws = ceil_div(max(span, ml + shape.W), cfg.dim_f) * cfg.dim_f
    min_hs = max(mt + shape.H, (shape.out_h - 1) * st + rows)
    return Geometry(mode, taps, nseg, rows, mt, ml, min_hs, min_ws)


@dataclass(frozen=True)
class SdTensor:
    """An activation tensor in DRAM: planes of ``lanes`` channels with zero margins."""
    offset: int
    C: int
    H: int
    W: int
    lanes: int
    planes: int
    mt: int
    ml: int
    Hs: int
    Ws: int

    @property
    def plane_bytes(self) -> int:
        return self.Hs * self.Ws * self.lanes

    @property
    def size(self) -> int:
        return self.planes * self.plane_bytes

    def addr(self, channel: int, y: int, x: int) -> int:
        """Byte address of a data pixel (y, x) of ``channel`` (margins excluded)."""
        p, lane = divmod(channel, self.lanes)
        return self.offset + ((p * self.Hs + y + self.mt) * self.Ws + x + self.ml) * self.lanes \
            + lane

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("offset", "C", "H", "W", "lanes", "planes", "mt",
                                              "ml", "Hs", "Ws")}

    @classmethod
    def from_dict(cls, d: dict) -> "SdTensor":
        return cls(**{k: d[k] for k in ("offset", "C", "H", "W", "lanes", "planes", "mt", "ml",
                                        "Hs", "Ws")})

    def stored(self, x: np.ndarray) -> np.ndarray:
        """(planes*lanes, Hs, Ws) zero-margined array holding ``x`` (C, H, W)."""
        s = np.zeros((self.planes * self.lanes, self.Hs, self.Ws), x.dtype)
        s[:self.C, self.mt:self.mt + self.H, self.ml:self.ml + self.W] = x
        return s

    def pack(self, x: np.ndarray) -> bytes:
        s = self.stored(x)
        return s.reshape(self.planes, self.lanes, self.Hs, self.Ws).transpose(0, 2, 3, 1).tobytes()

    def unpack(self, image: np.ndarray) -> np.ndarray:
        raw = np.frombuffer(image, np.int8, count=self.size, offset=self.offset)
        s = raw.reshape(self.planes, self.Hs, self.Ws, self.lanes).transpose(0, 3, 1, 2)
        s = s.reshape(self.planes * self.lanes, self.Hs, self.Ws)
        return np.ascontiguousarray(s[:self.C, self.mt:self.mt + self.H, self.ml:self.ml + self.W])


@dataclass
class GroupPasses:
    """The passes of one tile of one output-channel group (the same for every tile)."""
    cgroup: np.ndarray      # (P,) index of the pass's channel group among the non-empty ones
    plane: np.ndarray       # (P,) input plane the pass reads
    valid: np.ndarray       # (P, dim_c) line runs a pair
    row: np.ndarray         # (P, dim_c) kernel row (input row offset)
    lane: np.ndarray        # (P, dim_c) input lane (first lane of the S for pointwise)
    channel: np.ndarray     # (P, dim_c) input channel (first of the S for pointwise)
    weights: np.ndarray     # (P, dim_m, dim_c, S): Ce codes (+-k) or int8 weights
    bases: np.ndarray       # (G', dim_m, S, S) int8 basis per non-empty channel group

    @property
    def count(self) -> int:
        return int(self.cgroup.size)

    def header(self):
        """(switch, bb_load, bb_word) per pass: a group's first pass switches rebuild engine
        and loads the next group's basis (cyclically: the next tile starts over)."""
        P = self.count
        switch = np.ones(P, bool)
        switch[1:] = self.cgroup[1:] != self.cgroup[:-1]
        n = self.bases.shape[0]
        bb_word = np.where(switch, (self.cgroup + 1) % n, 0)
        return switch, switch.copy(), bb_word


def _pairs(kept: np.ndarray) -> list[np.ndarray]:
    """Per channel group, kept (row, line) pairs in pass order (row-major)."""
    return [np.argwhere(k) for k in kept]


def group_passes(layer: QuantLayer, cfg: SmartDealConfig, mg: int) -> GroupPasses:
    """Pack one output-channel group's kept pairs into passes, with codes or weights."""
    s = layer.shape
    mode = mode_of(s)
    dc, S, L = cfg.dim_c, cfg.S, cfg.gb_lanes
    G = group_size(s, cfg)
    ch = np.arange(mg * G, (mg + 1) * G)
    real = ch < s.K
    sd = layer.sd
    if mode == Mode.CONV:
        n_cg = ceil_div(s.C, dc)
        # rows[m, g, l, r, :]: the S-wide kernel row (c = g*dc + l, r) of filter m
        if sd is not None:
            blocks = np.zeros((G, n_cg, dc * s.R, S), np.int64)
            blocks[real] = sd.ce_codes[ch[real]]     # slices of dim_c channels x R rows
            rows = blocks.reshape(G, n_cg, dc, s.R, S)
        else:
            w = np.zeros((G, n_cg * dc, s.R, S), np.int64)
            w[real, :s.C, :, :s.S] = layer.weights[ch[real]]
            rows = w.reshape(G, n_cg, dc, s.R, S)
        exists = (np.arange(n_cg)[:, None] * dc + np.arange(dc)[None, :]) < s.C   # (g, l)
        kept = rows.any(axis=(0, 4)) & exists[:, :, None]                          # (g, l, r)
        kept = kept.transpose(0, 2, 1)                                             # (g, r, l)
    elif mode == Mode.POINTWISE:
        n_rows = ceil_div(s.C, S)
        n_cg = ceil_div(n_rows, dc)
        if sd is not None:
            blocks = np.zeros((G, n_cg, dc, S), np.int64)
            src = sd.ce_codes[ch[real]][:, :n_cg, :dc]
            blocks[real, :, :src.shape[2]] = src
            rows = blocks
        else:
            w = np.zeros((G, n_cg * dc * S), np.int64)
            w[real, :s.C] = layer.weights[ch[real], :, 0, 0]
            rows = w.reshape(G, n_cg, dc, S)
        exists = (np.arange(n_cg)[:, None] * dc + np.arange(dc)[None, :]) < n_rows
        kept = (rows.any(axis=(0, 3)) & exists)[:, None, :]                         # (g, 1, l)
        rows = rows[:, :, :, None, :]                                              # r axis
    else:  # depthwise: one "group" whose pairs are the kernel rows
        n_cg = 1
        if sd is not None:
            r = np.zeros((G, s.R, S), np.int64)
            r[real] = sd.ce_codes[ch[real], 0, :s.R]
        else:
            r = np.zeros((G, s.R, S), np.int64)
            r[real, :, :s.S] = layer.weights[ch[real], 0]
        rows = r[:, None]                                                          # (m, 1, R, S)
        kept = r.any(axis=(0, 2))[None, :, None]                                   # (1, R, 1)

    if sd is not None and mode != Mode.DEPTHWISE:
        b_all = np.zeros((G, n_cg, S, S), np.int64)
        b_all[real] = sd.b_int[ch[real], :n_cg]
    elif sd is not None:
        b_all = np.zeros((G, 1, S, S), np.int64)
        b_all[real] = sd.b_int[ch[real], :1]
    else:
        b_all = np.zeros((G, n_cg, S, S), np.int64)

    cgroup, plane, valid, row, lane, channel, weights, bases = [], [], [], [], [], [], [], []
    q = 0
    for g in range(n_cg):
        pairs = np.argwhere(kept[g])  # (r, l) row-major
        if mode == Mode.DEPTHWISE:
            pairs = np.argwhere(kept[0])[:, :1]
        if pairs.size == 0:
            continue
        bases.append(b_all[:, g])
        for start in range(0, len(pairs), dc):
            chunk = pairs[start:start + dc]
            n = len(chunk)
            v = np.zeros(dc, bool)
            v[:n] = True
            rr = np.zeros(dc, np.int64)
            ln = np.zeros(dc, np.int64)
            cc = np.zeros(dc, np.int64)
            wt = np.zeros((G, dc, S), np.int64)
            if mode == Mode.CONV:
                rr[:n], line = chunk[:, 0], chunk[:, 1]
                cc[:n] = g * dc + line
                ln[:n] = cc[:n] % L
                plane.append((g * dc) // L)
                wt[:, :n] = rows[:, g, line, rr[:n]]
            elif mode == Mode.POINTWISE:
                line = chunk[:, 1]
                cc[:n] = (g * dc + line) * S
                ln[:n] = cc[:n] % L
                plane.append(g)
                wt[:, :n] = rows[:, g, line, 0]
            else:
                rr[:n] = chunk[:, 0]
                cc[:n] = mg * G
                ln[:n] = (mg * G) % L
                plane.append((mg * G) // L)
                wt[:, :n] = rows[:, 0, rr[:n]]
            if sd is not None and np.any(wt[real, :n] == 0):
                raise CompileError(
                    f"layer '{s.name}': Ce has zero coefficients inside rows kept for channel "
                    f"group {mg}: the 4-bit codes cannot hold them; allowed is SmartDeal with "
                    f"structure='vector' and group_size={G} (dim_m), or int8 weights")
            cgroup.append(q)
            valid.append(v)
            row.append(rr)
            lane.append(ln)
            channel.append(cc)
            weights.append(wt)
        q += 1
    if not cgroup:  # all weights zero: one empty pass still clears the MACs
        cgroup, plane, valid = [0], [0], [np.zeros(dc, bool)]
        row, lane, channel = ([np.zeros(dc, np.int64)] for _ in range(3))
        weights, bases = [np.zeros((G, dc, S), np.int64)], [b_all[:, 0]]
    return GroupPasses(np.array(cgroup), np.array(plane), np.array(valid), np.array(row),
                       np.array(lane), np.array(channel), np.array(weights),
                       np.array(bases, np.int64))
