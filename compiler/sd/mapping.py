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


def layer_mode(shape: LayerShape, cfg: SmartDealConfig, decomposed: bool = True) -> Mode:
    """How the array runs a layer: a decomposed 1x1 layer whose stride-1 columns fit half a line
    (FC, squeeze-excite) with more output channels than slices runs in two MAC clusters when the
    configuration builds them (int8 weights would need four words per pass: not built)."""
    mode = mode_of(shape)
    span = (shape.out_w - 1) * shape.stride + 1
    if (mode == Mode.POINTWISE and decomposed and cfg.fc_clusters == 2
            and span <= cfg.dim_f // 2 and shape.K > cfg.dim_m):
        return Mode.CLUSTER
    return mode


def group_size(shape: LayerShape, cfg: SmartDealConfig, decomposed: bool = True) -> int:
    """Output channels per group: dim_m (two clusters: 2*dim_m), or for depthwise the largest
    divisor of L <= dim_m (a depthwise group must sit in one input plane)."""
    if not shape.depthwise:
        clusters = 2 if layer_mode(shape, cfg, decomposed) == Mode.CLUSTER else 1
        return clusters * cfg.dim_m
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


def geometry(shape: LayerShape, cfg: SmartDealConfig, decomposed: bool = True) -> Geometry:
    mode = layer_mode(shape, cfg, decomposed)
    st = shape.stride
    nseg = ceil_div((shape.out_w - 1) * st + 1, cfg.dim_f)
    if mode in (Mode.POINTWISE, Mode.CLUSTER):
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
    weights: np.ndarray     # (P, G, dim_c, S): Ce codes (+-k) or int8 weights
    bases: np.ndarray       # (G', G, S, S) int8 basis per non-empty channel group
    clustered: bool = False  # two MAC clusters: G = 2*dim_m, two pass and basis words each
    plane0: int = 0         # a chunk's first input plane (``plane`` counts from it)
    planes: int = 0         # a chunk's input planes (0: the whole input)

    @property
    def count(self) -> int:
        return int(self.cgroup.size)

    def chunk(self, first: int, stop: int, plane0: int, planes: int) -> "GroupPasses":
        """Passes ``first:stop`` (whole basis groups) reading planes plane0 .. plane0+planes-1."""
        cg = self.cgroup[first:stop]
        return GroupPasses(cg - cg[0], self.plane[first:stop] - plane0, self.valid[first:stop],
                           self.row[first:stop], self.lane[first:stop],
                           self.channel[first:stop], self.weights[first:stop],
                           self.bases[cg[0]:cg[-1] + 1], self.clustered, plane0, planes)

    def header(self):
        """(switch, bb_load, bb_word) per pass: a group's first pass switches rebuild engine
        and loads the next group's basis into the idle one (cyclically: the next tile starts
        over). With two clusters both engines are busy: a group's last pass, once its rows are
        rebuilt, loads the next group's two bases (words 2q and 2q+1)."""
        P = self.count
        switch = np.ones(P, bool)
        switch[1:] = self.cgroup[1:] != self.cgroup[:-1]
        n = self.bases.shape[0]
        if not self.clustered:
            return switch, switch.copy(), np.where(switch, (self.cgroup + 1) % n, 0)
        last = np.ones(P, bool)
        last[:-1] = switch[1:]
        return switch, last, np.where(last, 2 * ((self.cgroup + 1) % n), 0)


def split_group(gp: GroupPasses, fits, planes_of, name: str) -> list[GroupPasses]:
    """A group's passes in chunks of whole basis groups, each as large as ``fits(passes,
    basis groups, input planes)`` allows; ``planes_of(plane)`` gives the (first, stop) input
    planes of the basis group whose passes start at ``plane``. Each chunk runs as a COMPUTE of
    its own, the MACs accumulating over the chunks of a one-tile layer."""
    starts = np.flatnonzero(np.r_[True, gp.cgroup[1:] != gp.cgroup[:-1]])
    bounds = [*starts, gp.count]
    spans = [planes_of(int(gp.plane[b])) for b in starts]
    n = len(starts)
    chunks, g0 = [], 0
    while g0 < n:
        g = g0 + 1                          # basis groups g0 .. g-1 form this chunk
        while g < n and fits(bounds[g + 1] - bounds[g0], g + 1 - g0,
                             spans[g][1] - spans[g0][0]):
            g += 1
        if not fits(bounds[g] - bounds[g0], g - g0, spans[g - 1][1] - spans[g0][0]):
            raise CompileError(f"layer '{name}' does not fit: the passes of one basis group "
                               "alone overflow a weight-, basis- or input-buffer bank; increase "
                               "wb_depth, bb_depth or gb_depth")
        chunks.append(gp.chunk(bounds[g0], bounds[g], spans[g0][0],
                               spans[g - 1][1] - spans[g0][0]))
        g0 = g
    return chunks


def basis_group(shape: LayerShape, cfg: SmartDealConfig) -> int:
    """Ce rows that share one basis per slice (the decomposition's slice_rows): one input plane
    of a convolution (L channels x R rows), S planes of rows of a 1x1 layer, a depthwise filter."""
    mode = mode_of(shape)
    if mode == Mode.CONV:
        return shape.R * cfg.gb_lanes
    if mode == Mode.POINTWISE:
        return cfg.S * cfg.dim_c
    return shape.R


def _units(layer: QuantLayer, cfg: SmartDealConfig, mg: int):
    """Per basis group: the *units* a line can run (in pass order), their input slot, lane and
    channel, the weight rows of every slice, the group's first plane and bases."""
    s = layer.shape
    mode = mode_of(s)
    dc, S, L = cfg.dim_c, cfg.S, cfg.gb_lanes
    G = group_size(s, cfg, layer.sd is not None)
    ch = np.arange(mg * G, (mg + 1) * G)
    real = ch < s.K
    sd = layer.sd
    per = basis_group(s, cfg)
    if mode == Mode.CONV:
        n_g = ceil_div(s.C, L)
        units = np.arange(s.R * L)
        slot, lane = units // L, units % L                       # row-major: (r, lane)
        if sd is not None:
            codes = np.zeros((G, n_g, L, s.R, S), np.int64)       # (c, r) rows of each slice
            codes[real] = sd.ce_codes[ch[real]].reshape(real.sum(), n_g, L, s.R, S)
            rows = codes.transpose(0, 1, 3, 2, 4).reshape(G, n_g, s.R * L, S)
        else:
            w = np.zeros((G, n_g * L, s.R, S), np.int64)
            w[real, :s.C, :, :s.S] = layer.weights[ch[real]]
            rows = w.reshape(G, n_g, L, s.R, S).transpose(0, 1, 3, 2, 4).reshape(G, n_g, -1, S)
        channel = np.arange(n_g)[:, None] * L + lane
        exists = channel < s.C
        plane = np.arange(n_g)
    elif mode == Mode.POINTWISE:
        n_rows = ceil_div(s.C, S)
        n_g = ceil_div(n_rows, per)
        units = np.arange(per)
        slot, lane = units // dc, (units % dc) * S                 # plane offset, first lane
        if sd is not None:
            rows = np.zeros((G, n_g, per, S), np.int64)
            rows[real] = sd.ce_codes[ch[real]]
        else:
            w = np.zeros((G, n_g * per * S), np.int64)
            w[real, :s.C] = layer.weights[ch[real], :, 0, 0]
            rows = w.reshape(G, n_g, per, S)
        channel = (np.arange(n_g)[:, None] * per + units) * S
        exists = channel < s.C
        plane = np.arange(n_g) * S
    else:
        n_g = 1
        slot = np.arange(s.R)
        lane = np.full(s.R, (mg * G) % L)
        rows = np.zeros((G, 1, s.R, S), np.int64)
        if sd is not None:
            rows[real, 0] = sd.ce_codes[ch[real], 0, :s.R]
        else:
            rows[real, 0, :, :s.S] = layer.weights[ch[real], 0]
        channel = np.full((1, s.R), mg * G)
        exists = np.ones((1, s.R), bool)
        plane = np.array([(mg * G) // L])
    bases = np.zeros((G, n_g, S, S), np.int64)
    if sd is not None:
        bases[real] = sd.b_int[ch[real], :n_g]
    kept = rows.any(axis=(0, 3)) & exists                          # shared by the group
    return slot, lane, channel, rows, kept, plane, bases


def group_passes(layer: QuantLayer, cfg: SmartDealConfig, mg: int) -> GroupPasses:
    """Pack one output-channel group's kept units into passes of dim_c lines, with their codes
    (or int8 weights), basis group by basis group."""
    s = layer.shape
    dc = cfg.dim_c
    slot, lane, channel, rows, kept, plane, bases = _units(layer, cfg, mg)
    G, S = rows.shape[0], cfg.S
    out = {k: [] for k in ("cgroup", "plane", "valid", "row", "lane", "channel", "weights")}
    used_bases = []
    for g in range(rows.shape[1]):
        idx = np.flatnonzero(kept[g])
        if idx.size == 0:
            continue
        q = len(used_bases)
        used_bases.append(bases[:, g])
        for start in range(0, idx.size, dc):
            chunk = idx[start:start + dc]
            n = chunk.size
            v = np.zeros(dc, bool)
            v[:n] = True
            pad = lambda a: np.concatenate([a, np.zeros(dc - n, np.int64)])
            wt = np.zeros((G, dc, S), np.int64)
            wt[:, :n] = rows[:, g, chunk]
            if layer.sd is not None and np.any(wt[:, :n][s.K > np.arange(mg * G, mg * G + G)]
                                               == 0):
                raise CompileError(
                    f"layer '{s.name}': Ce has zero coefficients inside rows kept for channel "
                    f"group {mg}: the 4-bit codes cannot hold them; allowed is SmartDeal with "
                    f"structure='vector' and group_size={G} (its output-channel group), or int8 "
                    "weights")
            out["cgroup"].append(q)
            out["plane"].append(plane[g])
            out["valid"].append(v)
            out["row"].append(pad(slot[chunk]))
            out["lane"].append(pad(lane[chunk]))
            out["channel"].append(pad(channel[g, chunk]))
            out["weights"].append(wt)
    if not out["cgroup"]:  # all weights zero: one empty pass still clears the MACs
        out = {"cgroup": [0], "plane": [0], "valid": [np.zeros(dc, bool)],
               "row": [np.zeros(dc, np.int64)], "lane": [np.zeros(dc, np.int64)],
               "channel": [np.zeros(dc, np.int64)], "weights": [np.zeros((G, dc, S), np.int64)]}
        used_bases = [bases[:, 0]]
    return GroupPasses(np.array(out["cgroup"]), np.array(out["plane"]), np.array(out["valid"]),
                       np.array(out["row"]), np.array(out["lane"]), np.array(out["channel"]),
                       np.array(out["weights"]), np.array(used_bases, np.int64),
                       layer_mode(s, cfg, layer.sd is not None) == Mode.CLUSTER)
