"""A conventional systolic MAC array, exactly as SCALE-Sim v3 models it, without its traces.

SCALE-Sim maps a layer onto a rows x cols array as a GEMM (M output pixels, N filters, K = window
size), cuts it into folds, builds a demand matrix (one row per cycle, one column per array port)
for each operand and pushes every address through models of three double-buffered SRAMs. In its
estimate-bandwidth mode (``InterfaceBandwidth: CALC``) reads never stall and DRAM traffic is what
the SRAM prefetcher asks for. This module derives the same numbers from the structure of those
demand matrices instead of building them (docs/systolic.md):

- cycles, SRAM accesses, mapping efficiency and utilization are closed-form per fold;
- OFMAP DRAM writes replay SCALE-Sim's write buffer from one drain request to the next;
- IFMAP and filter DRAM reads replay its estimate-mode prefetcher, which fetches every address not
  seen since its last window reset and resets after every W = 50 x floor(words / 100) fetches:
  block by block for streams of whole distinct blocks (filters, GEMMs, 1x1 convolutions), in closed
  form where every word is provably new or fetched once, and otherwise over per-fold "events" (an
  address block's first and last appearance in a fold).

``simulate_topology`` returns a SimReport whose ``LayerReport.info`` carries SCALE-Sim's own
counters (COMPUTE_REPORT.csv and DETAILED_ACCESS_REPORT.csv) in words. With
``scalesim_compat=False`` the errors listed in docs/systolic.md are corrected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tessera.compiler.topology import TopologyLayer
from tessera.config import SystolicConfig

from .report import LayerReport, SimReport

__all__ = ["simulate_topology", "simulate_layer"]

#: SCALE-Sim's estimate mode prefetches its first buffer half at this many words per cycle.
_FIRST_FILL_WORDS_PER_CYCLE = 10
#: Its read buffers track addresses in 100 sets; a window reset happens every 50 of them.
_SETS, _ACTIVE_SETS = 100, 50
_NEVER = -(1 << 50)


# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Im2col:
    """The layer's operand matrix: pixel m (row) x window element k (column) -> IFMAP address.

    Addresses are separable, ``pix[m] + win[k]``; an element is valid (inside the input) when
    ``oy[m] + ky[k] < hi`` and ``ox[m] + kx[k] < wi`` (scaled output coordinates plus offsets).
    """

    hi: int
    wi: int
    fh: int
    fw: int
    ch: int
    nf: int
    s: int
    ho: int
    wo: int

    @classmethod
    def of(cls, layer: TopologyLayer, compat: bool) -> "_Im2col":
        if compat:  # SCALE-Sim's ceil((H - R + S) / S): may hang a row of windows off the input
            ho, wo = layer.ofmap_h, layer.ofmap_w
        else:
            ho = (layer.ifmap_h - layer.filter_h) // layer.stride + 1
            wo = (layer.ifmap_w - layer.filter_w) // layer.stride + 1
        return cls(layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, layer.channels,
                   layer.num_filters, layer.stride, ho, wo)

    @property
    def M(self) -> int:
        return self.ho * self.wo

    @property
    def K(self) -> int:
        return self.fh * self.fw * self.ch

    @property
    def holes(self) -> bool:
        """Some windows reach past the input (SCALE-Sim gives those elements address -1)."""
        return ((self.ho - 1) * self.s + self.fh > self.hi
                or (self.wo - 1) * self.s + self.fw > self.wi)

    @property
    def injective(self) -> bool:
        """No IFMAP word appears twice in the operand matrix (windows do not overlap)."""
        return (self.ho == 1 or self.s >= self.fh) and (self.wo == 1 or self.s >= self.fw)

    @property
    def used_words(self) -> int:
        """Distinct IFMAP words the valid windows touch."""
        rows = np.zeros(self.hi, bool)
        cols = np.zeros(self.wi, bool)
        for oy in range(self.fh):
            rows[oy:min(self.hi, oy + (self.ho - 1) * self.s + 1):self.s] = True
        for ox in range(self.fw):
            cols[ox:min(self.wi, ox + (self.wo - 1) * self.s + 1):self.s] = True
        return int(rows.sum()) * int(cols.sum()) * self.ch

    @cached_property
    def pix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per output pixel: address of its window origin, scaled row, scaled column."""
        oy, ox = np.divmod(np.arange(self.M, dtype=np.int64), self.wo)
        oy, ox = oy * self.s, ox * self.s
        return (oy * self.wi + ox) * self.ch, oy, ox

    @cached_property
    def win(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per window element: address offset, filter row, filter column."""
        ky, rest = np.divmod(np.arange(self.K, dtype=np.int64), self.fw * self.ch)
        kx, c = np.divmod(rest, self.ch)
        return (ky * self.wi + kx) * self.ch + c, ky, kx


@dataclass(frozen=True)
class _Plan:
    """How a layer folds onto the array in one dataflow (SCALE-Sim's Sr x Sc spatial, T temporal).

    Folds run column fold outer, row fold inner; every fold takes ``rows_per_fold`` cycles. A
    demand position is ``row * width + column`` of an operand's demand matrix.
    """

    df: str
    R: int
    C: int
    op: _Im2col

    @cached_property
    def dims(self) -> tuple[int, int, int]:
        M, N, K = self.op.M, self.op.nf, self.op.K
        return {"os": (M, N, K), "ws": (K, N, M), "is": (K, M, N)}[self.df]

    @property
    def T(self) -> int:
        return self.dims[2]

    @property
    def row_fold(self) -> int:
        return -(-self.dims[0] // self.R)

    @property
    def col_fold(self) -> int:
        return -(-self.dims[1] // self.C)

    @property
    def folds(self) -> int:
        return self.row_fold * self.col_fold

    @property
    def rows_per_fold(self) -> int:
        if self.df == "os":
            return self.T + self.R + self.C - 2
        return self.T + 2 * self.R + self.C - 2

    @cached_property
    def ru(self) -> np.ndarray:
        """Array rows used by each row fold."""
        return np.minimum(self.R, self.dims[0] - self.R * np.arange(self.row_fold))

    @cached_property
    def cu(self) -> np.ndarray:
        """Array columns used by each column fold."""
        return np.minimum(self.C, self.dims[1] - self.C * np.arange(self.col_fold))

    def fold(self, g: int) -> tuple[int, int]:
        """(column fold, row fold) of fold number g."""
        return divmod(g, self.row_fold)

    @property
    def ifmap_width(self) -> int:
        """Columns of SCALE-Sim's IFMAP demand matrix (the array edge the IFMAP enters from)."""
        return self.C if self.df == "is" else self.R

    @property
    def filter_width(self) -> int:
        return self.R if self.df == "is" else self.C

    @property
    def ifmap_span(self) -> int:
        """IFMAP demand positions per fold."""
        return self.rows_per_fold * self.ifmap_width

    def ifmap_pixels_and_window(self, g: int) -> tuple[range, range]:
        """The operand-matrix block fold g reads: pixels x window elements."""
        fc, fr = self.fold(g)
        rows = range(fr * self.R, fr * self.R + int(self.ru[fr]))
        if self.df == "os":
            return rows, range(self.op.K)
        if self.df == "ws":
            return range(self.op.M), rows
        return range(fc * self.C, fc * self.C + int(self.cu[fc])), rows

    def ifmap_pos(self, g: int, m, k):
        """Local demand position of operand element (m, k) in fold g's IFMAP demand matrix."""
        R, C = self.R, self.C
        pix, win = self.ifmap_pixels_and_window(g)
        if self.df == "os":
            i = m - pix.start
            return (k + i) * R + i
        if self.df == "ws":
            c = k - win.start
            return (R + m + c) * R + c
        return (R - 1 - (k - win.start)) * C + (m - pix.start)


def _ifmap_elements(plan: _Plan, g: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold g's valid IFMAP demands: local demand positions and word addresses, in no particular
    order."""
    op = plan.op
    pix, win = plan.ifmap_pixels_and_window(g)
    m = np.arange(pix.start, pix.stop)[:, None]
    k = np.arange(win.start, win.stop)[None, :]
    pbase, oy, ox = (a[pix.start:pix.stop, None] for a in op.pix)
    wbase, ky, kx = (a[win.start:win.stop][None, :] for a in op.win)
    pos = np.broadcast_to(plan.ifmap_pos(g, m, k), (len(pix), len(win)))
    addr = pbase + wbase
    if not op.holes:
        return pos.reshape(-1), addr.reshape(-1)
    valid = (oy + ky < op.hi) & (ox + kx < op.wi)
    return pos[valid], addr[valid]


def _filter_positions(plan: _Plan, g: int) -> np.ndarray:
    """Fold g's filter demands as local demand positions, in stream order."""
    R, C = plan.R, plan.C
    fc, fr = plan.fold(g)
    ru, cu = int(plan.ru[fr]), int(plan.cu[fc])
    if plan.df == "os":
        k = np.arange(plan.op.K)[:, None]
        j = np.arange(cu)[None, :]
        pos = (k + j) * C + j
    elif plan.df == "ws":
        pos = (R - 1 - np.arange(ru))[:, None] * C + np.arange(cu)[None, :]
    else:
        n = np.arange(plan.op.nf)[:, None]
        i = np.arange(ru)[None, :]
        pos = (R + n + i) * R + i
    return np.sort(pos, axis=None)


# ---------------------------------------------------------------------------------------------
# Skewed blocks: an h x w block whose column c is delayed by c rows (the systolic skew)
# ---------------------------------------------------------------------------------------------

def _skew_below(rho: int, h: int, w: int) -> int:
    """Elements of a skewed h x w block in its first ``rho`` rows."""
    a, b = min(h, w), max(h, w)
    if rho <= 0:
        return 0
    if rho <= a:
        return rho * (rho + 1) // 2
    if rho <= b:
        return a * (a + 1) // 2 + (rho - a) * a
    tail = max(h + w - 1 - rho, 0)
    return h * w - tail * (tail + 1) // 2


def _skew_row(i: int, h: int, w: int) -> int:
    """Row (from the block's first) holding element i (0-based, stream order) of a skewed block."""
    a, b = min(h, w), max(h, w)
    ramp = a * (a - 1) // 2
    if i < ramp:
        return (math.isqrt(8 * i + 1) - 1) // 2
    if i < ramp + (b - a + 1) * a:
        return a - 1 + (i - ramp) // a
    j = h * w - 1 - i
    return h + w - 2 - (math.isqrt(8 * j + 1) - 1) // 2


# ---------------------------------------------------------------------------------------------
# OFMAP SRAM: SCALE-Sim's write buffer, replayed from one drain to the next
# ---------------------------------------------------------------------------------------------

class _OfmapStream:
    """Where the OFMAP writes fall: in every fold a skewed block of ``h`` rows x ``w`` columns that
    starts ``a`` rows into the fold. Queries move forward only, so the current fold is kept."""

    def __init__(self, plan: _Plan):
        self.Lf = plan.rows_per_fold
        fc, fr = np.divmod(np.arange(plan.folds), plan.row_fold)
        w = plan.cu[fc]
        if plan.df == "os":
            h = plan.ru[fr]
            a = plan.T - 1 + plan.R - h
        else:
            h = np.full(plan.folds, plan.T)
            a = np.full(plan.folds, 2 * plan.R - 1)
        self.a, self.h, self.w = (np.asarray(x, np.int64).tolist() for x in (a, h, w))
        self.cum = np.concatenate([[0], np.cumsum(np.asarray(h, np.int64) * w)]).tolist()
        self.total = self.cum[-1]
        self.g = 0

    def before_row(self, row: int) -> int:
        """Writes in demand rows < row."""
        g, local = divmod(max(row, 0), self.Lf)
        if g >= len(self.a):
            return self.total
        return self.cum[g] + _skew_below(local - self.a[g], self.h[g], self.w[g])

    def row_of(self, x: int) -> int:
        """Demand row of the x-th write (1-based)."""
        while self.cum[self.g + 1] < x:
            self.g += 1
        g = self.g
        return g * self.Lf + self.a[g] + _skew_row(x - self.cum[g] - 1, self.h[g], self.w[g])


@dataclass
class _Drain:
    dram_writes: int
    first_cycle: int
    last_cycle: int


def _ofmap_drain(stream: _OfmapStream, words: int, bw: int, rows: int) -> _Drain:
    """SCALE-Sim's write_buffer: once half the SRAM is full, ceil(half / bw) lines drain to DRAM,
    one line per cycle, jumping from one drain request to the next.

    Lines are ``bw`` words; a drain request flushes a partly filled line as a whole line, and a
    drain subtracts the empty slots of its last line only (SCALE-Sim's accounting, kept as is).
    SCALE-Sim would stall the array if the SRAM filled up during a drain; with at most ``bw``
    writes per cycle that does not happen (the replay is checked against a literal copy of
    SCALE-Sim's loop in tests/test_systolic.py), and the assertion below guards it.
    """
    active = (words + 1) // 2
    lines_per_drain = -(-(words - active) // bw)
    free, stored, drain_end = words, 0, 0
    lines, flushed, start_line, writes = 0, 0, 0, 0
    partial: dict[int, int] = {}
    drains: list[tuple[int, int]] = []

    def flush(upto: int) -> None:
        nonlocal lines, flushed
        full, part = divmod(upto - flushed, bw)
        lines += full + (part > 0)
        if part:
            partial[lines - 1] = part
        flushed = upto

    def drain(cycle: int) -> int:
        nonlocal start_line, free, writes
        end = min(start_line + lines_per_drain, lines)
        data = (end - start_line) * bw - (bw - partial.get(end - 1, bw))
        free += data
        writes += data
        drains.append((cycle, cycle + end - start_line - 1))
        start_line = end
        return drains[-1][1]

    while True:
        trigger = max(stored + max(free - active + 1, 1), stream.before_row(drain_end) + 1)
        full = stored + max(free, 1)
        assert full >= trigger or full > stream.total or stream.row_of(full) >= drain_end, \
            "OFMAP SRAM full during a drain: SCALE-Sim would stall here"
        if trigger > stream.total:
            break
        free -= trigger - stored
        stored = trigger
        flush(stored)
        drain_end = drain(stream.row_of(stored))
    flush(stream.total)
    cycle = rows - 1
    while start_line < lines:
        cycle = drain(cycle) + 1
    return _Drain(writes, min(d[0] for d in drains), max(d[1] for d in drains))


# ---------------------------------------------------------------------------------------------
# IFMAP and filter SRAM: SCALE-Sim's estimate-mode prefetcher
# ---------------------------------------------------------------------------------------------

@dataclass
class _Fetch:
    """DRAM reads of one operand and when its window resets happened."""
    reads: int
    resets: int
    last_reset_row: int | None


def _block_fetch(keys: list, sizes: list[int], W: int) -> tuple[int, int, tuple[int, int] | None]:
    """The prefetcher over a stream of whole blocks, each a fixed sequence of distinct addresses,
    blocks equal or disjoint. The window always holds a suffix of a block, so a block's state is
    the start of that suffix (valid until the next reset).

    Returns reads, resets and (occurrence, index in block) of the last reset.
    """
    if len(set(keys)) == len(keys):  # every block is new: a reset every W words
        cum = np.cumsum(sizes)
        reads = int(cum[-1])
        resets = reads // W
        if not resets:
            return reads, 0, None
        occ = int(np.searchsorted(cum, resets * W))
        return reads, resets, (occ, resets * W - 1 - int(cum[occ] - sizes[occ]))
    state: dict = {}
    n = reads = epoch = 0
    last = None
    for occ, (key, b) in enumerate(zip(keys, sizes)):
        start, ep = state.get(key, (b, -1))
        new = start if ep == epoch else b
        if n + new < W:
            n += new
            reads += new
            state[key] = (0, epoch)
            continue
        at = W - n - 1                  # the element that fills the window
        reads += W - n
        more, n = divmod(b - at - 1, W)  # the rest of the block is new: a reset every W
        reads += more * W + n
        epoch += 1 + more
        last = (occ, at + more * W)
        state[key] = (b - n, epoch)
    return reads, epoch, last


def _clip(x, hi):
    """``x`` limited to [0, hi] (np.clip costs more than the arithmetic on small arrays)."""
    return np.minimum(np.maximum(x, 0), hi)


def _n_le(base, slope: int, thr, G: int):
    """How many of a block's G channels sit at demand positions ``base + t * slope <= thr``."""
    if slope > 0:
        return _clip((thr - base) // slope + 1, G)
    return G - _clip(-((thr - base) // -slope), G)


def _kth(count, need: int, lo: int, hi: int) -> int:
    """Smallest position q in [lo, hi] with count(q) >= need."""
    while lo < hi:
        mid = (lo + hi) // 2
        if count(mid) >= need:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass
class _Events:
    """Per fold, every IFMAP block of G consecutive channels the fold reads, with the demand
    positions of the block's first channel at its first (``fo``) and last (``lo``) appearance in
    the fold. Channel t of a block sits ``t * slope`` positions further on, in every appearance.
    Fold g's events are ``offsets[g]:offsets[g + 1]``."""
    offsets: np.ndarray
    blk: np.ndarray
    fo: np.ndarray
    lo: np.ndarray
    G: int
    slope: int


def _ws_shape_events(plan: _Plan, G: int) -> list:
    """WS folds read every pixel: each window slot's appearances form a strided grid over the
    input, so first and last appearances are min/max updates of grid views, slot by slot."""
    op, R = plan.op, plan.R
    nb = op.ch // G
    base = (R + np.arange(op.M, dtype=np.int64).reshape(op.ho, op.wo)) * R
    shapes = []
    for fr in range(plan.row_fold):
        fo = np.full((op.hi, op.wi, nb), np.iinfo(np.int64).max)
        lo = np.full((op.hi, op.wi, nb), -1, np.int64)
        for j in range(0, int(plan.ru[fr]), G):
            ky, rest = divmod(fr * R + j, op.fw * op.ch)
            kx, c = divmod(rest, op.ch)
            ny, nx = min(op.ho, -(-(op.hi - ky) // op.s)), min(op.wo, -(-(op.wi - kx) // op.s))
            at = (slice(ky, ky + (ny - 1) * op.s + 1, op.s),
                  slice(kx, kx + (nx - 1) * op.s + 1, op.s), c // G)
            pos = base[:ny, :nx] + j * (R + 1)
            np.minimum(fo[at], pos, out=fo[at])
            np.maximum(lo[at], pos, out=lo[at])
        blk = np.flatnonzero(lo.reshape(-1) >= 0)
        shapes.append((blk, fo.reshape(-1)[blk], lo.reshape(-1)[blk]))
    return shapes


def _shape_events(plan: _Plan, reps: np.ndarray, shift: np.ndarray, G: int) -> list:
    """OS/IS fold shapes, all at once: every (shape, pixel, block) candidate, deduplicated per
    block by scatter-min/max; addresses and validity are per-pixel plus per-window terms."""
    op, R = plan.op, plan.R
    rfc, rfr = np.divmod(reps, plan.row_fold)
    if plan.df == "os":
        m0, npx, k0, nk = rfr * R, plan.ru[rfr], np.zeros_like(reps), np.full(len(reps), op.K)
    else:
        m0, npx, k0, nk = rfc * plan.C, plan.cu[rfc], rfr * R, plan.ru[rfr]
    i = np.arange(int(npx.max()))
    j = np.arange(0, int(nk.max()), G)
    m = np.minimum(m0[:, None] + i, op.M - 1)
    k = np.minimum(k0[:, None] + j, op.K - 1)
    pbase, oy, ox = (a[m][:, :, None] for a in op.pix)
    wbase, ky, kx = (a[k][:, None, :] for a in op.win)
    rel = (pbase + wbase) // G - shift[reps][:, None, None]
    nrel = int(rel.max()) + 1
    key = np.arange(len(reps))[:, None, None] * nrel + rel
    ok = (i[None, :] < npx[:, None])[:, :, None] & (j[None, :] < nk[:, None])[:, None, :]
    if op.holes:
        ok = ok & (ky < op.hi - oy) & (kx < op.wi - ox)
    if not ok.all():  # invalid candidates go to a sink slot past the last key
        key = np.where(ok, key, len(reps) * nrel)
    i, j = i[None, :, None], j[None, None, :]
    pos = np.broadcast_to((j + i) * R + i if plan.df == "os" else (R - 1 - j) * plan.C + i,
                          key.shape).reshape(-1)
    key = key.reshape(-1)
    fo = np.full(len(reps) * nrel + 1, np.iinfo(np.int64).max)
    lo = np.full(len(reps) * nrel + 1, -1, np.int64)
    np.minimum.at(fo, key, pos)
    np.maximum.at(lo, key, pos)
    lo[-1] = -1
    present = np.flatnonzero(lo >= 0)
    cut = np.searchsorted(present // nrel, np.arange(len(reps) + 1))
    return [(present[a:z] % nrel, fo[present[a:z]], lo[present[a:z]])
            for a, z in zip(cut[:-1], cut[1:])]


def _ifmap_events(plan: _Plan) -> _Events:
    """Build the events of all folds from their distinct shapes: folds that differ only by whole
    input rows (OS, IS) or only by their pass over the columns (WS) share one."""
    op, F, R = plan.op, plan.folds, plan.R
    G = op.ch if plan.df == "os" else math.gcd(R, op.ch)
    slope = {"os": R, "ws": R + 1, "is": -plan.C}[plan.df]
    fc, fr = np.divmod(np.arange(F), plan.row_fold)
    if plan.df == "ws":
        shape, shift = fr, np.zeros(F, np.int64)
        shapes = _ws_shape_events(plan, G)
    else:
        p0 = fr * R if plan.df == "os" else fc * plan.C
        npix = plan.ru[fr] if plan.df == "os" else plan.cu[fc]
        oy0, ox0 = np.divmod(p0, op.wo)
        span = (ox0 + npix - 1) // op.wo + 1
        last_row = np.minimum(op.ho - 1 - oy0, span) if op.holes else np.zeros(F, np.int64)
        keys = [ox0, npix, last_row] + ([fr] if plan.df == "is" else [])
        _, reps, shape = np.unique(np.stack(keys, 1), axis=0, return_index=True,
                                   return_inverse=True)
        shape = shape.reshape(-1)
        shift = (oy0 * op.s * op.wi * op.ch // G).astype(np.int64)
        shapes = _shape_events(plan, reps, shift, G)
    if G == 1:  # order each shape's events by first appearance (distinct positions: a scatter)
        rank = np.full(plan.ifmap_span, -1, np.int64)
        for n, (blk, fo, lo) in enumerate(shapes):
            rank[fo] = np.arange(len(fo))
            order = rank[rank >= 0]
            rank[fo] = -1
            shapes[n] = (blk[order], fo[order], lo[order])
    shape_off = np.concatenate([[0], np.cumsum([len(s[0]) for s in shapes])])
    rel_s, fo_s, lo_s = (np.concatenate([s[n] for s in shapes]) for n in range(3))
    lens = np.diff(shape_off)[shape]
    offsets = np.concatenate([[0], np.cumsum(lens)])
    idx = np.repeat(shape_off[shape] - offsets[:-1], lens) + np.arange(offsets[-1])
    base = np.repeat(np.arange(F, dtype=np.int64) * plan.ifmap_span, lens)
    return _Events(offsets, rel_s[idx] + np.repeat(shift, lens), fo_s[idx] + base,
                   lo_s[idx] + base, G, slope)


def _next_after(plan: _Plan, g: int, blk: np.ndarray, t0: np.ndarray, t1: np.ndarray, r: int,
                ev: _Events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where channels t0..t1-1 of the given blocks next appear after position r in fold g.

    Lists every (ky, kx) that maps an output pixel of the fold onto each block; since all
    appearances of a block move by ``slope`` per channel, a channel's next appearance comes from the
    earliest appearance past r, which changes only at a few channels. Returns segments (base,
    first channel, last channel): channel t of a segment next appears at ``base + t * slope``.
    """
    op, slope = plan.op, ev.slope
    pix, win = plan.ifmap_pixels_and_window(g)
    yx, b = np.divmod(blk, op.ch // ev.G)
    y, x = np.divmod(yx, op.wi)
    ky, kx = np.divmod(np.arange(op.fh * op.fw), op.fw)
    oy, ry = np.divmod(y[:, None] - ky, op.s)
    ox, rx = np.divmod(x[:, None] - kx, op.s)
    m = oy * op.wo + ox
    k = (ky * op.fw + kx) * op.ch + (b * ev.G)[:, None]
    ok = ((ry == 0) & (rx == 0) & (oy >= 0) & (oy < op.ho) & (ox >= 0) & (ox < op.wo)
          & (m >= pix.start) & (m < pix.stop) & (k >= win.start) & (k < win.stop))
    big = np.iinfo(np.int64).max // 4
    at = np.sort(np.where(ok, plan.ifmap_pos(g, m, k) + g * plan.ifmap_span, big), axis=1)
    prev = np.concatenate([np.full((len(blk), 1), -big), at[:, :-1]], axis=1)
    if slope > 0:  # the earliest appearance past r moves to earlier ones as t grows
        tl = np.maximum(t0[:, None], (r - at) // slope + 1)
        th = np.minimum(t1[:, None] - 1, (r - prev) // slope)
    else:
        tl = np.maximum(t0[:, None], -((r - prev) // -slope))
        th = np.minimum(t1[:, None] - 1, -((r - at) // -slope) - 1)
    keep = (tl <= th) & (at < big)
    return at[keep], tl[keep], th[keep]


def _segments_le(seg: tuple[np.ndarray, np.ndarray, np.ndarray], slope: int, q: int) -> int:
    """Channels of straddler segments whose next appearance is at or before q."""
    base, tl, th = seg
    if slope > 0:
        n = _clip((q - base) // slope - tl + 1, th - tl + 1)
    else:
        n = _clip(th - np.maximum(tl, -((q - base) // -slope)) + 1, th - tl + 1)
    return int(n.sum())


class _PlainFold:
    """A fold whose IFMAP demands are all valid and all distinct (WS or IS with rows <= channels):
    its j-th demand in stream order has a closed-form position."""

    def __init__(self, plan: _Plan, g: int):
        fc, fr = plan.fold(g)
        self.df, self.R, self.C = plan.df, plan.R, plan.C
        self.ru, self.cu, self.M = int(plan.ru[fr]), int(plan.cu[fc]), plan.op.M
        self.base = g * plan.ifmap_span
        self.total = self.M * self.ru if self.df == "ws" else self.ru * self.cu

    def pos(self, j: int) -> int:
        """Demand position of the j-th (0-based) demand."""
        if self.df == "ws":  # skewed M x ru block starting R rows in, width R
            rho = _skew_row(j, self.M, self.ru)
            c = j - _skew_below(rho, self.M, self.ru) + max(0, rho - self.M + 1)
            return self.base + (self.R + rho) * self.R + c
        row, col = divmod(j, self.cu)  # IS: rows R - ru .. R - 1, cu demands each, width C
        return self.base + (self.R - self.ru + row) * self.C + col

    def count(self, q: int) -> int:
        """Demands at positions <= q."""
        if self.df == "ws":
            row, col = divmod(q - self.base, self.R)
            rho = row - self.R
            lo, hi = max(0, rho - self.M + 1), min(self.ru - 1, rho, col)
            return _skew_below(rho, self.M, self.ru) + max(0, hi - lo + 1)
        row, col = divmod(q - self.base, self.C)
        row -= self.R - self.ru
        return min(max(row, 0), self.ru) * self.cu + (min(col, self.cu - 1) + 1
                                                      if 0 <= row < self.ru else 0)


def _sorted_reset(plan: _Plan, g: int, b: np.ndarray, fo: np.ndarray, lo: np.ndarray, r: int,
                  W: int, ev: _Events, span: int) -> tuple[int | None, int]:
    """Next reset after r in fold g for single-channel blocks ordered by first appearance, and the
    words fetched after r; None when the fold ends first. Only events whose first appearance lies
    within ``span`` (the fold's longest first-to-last distance) before r can straddle r."""
    after = int(np.searchsorted(fo, r, side="right"))
    near = int(np.searchsorted(fo, r - span, side="left"))
    strad = near + np.flatnonzero(lo[near:after] > r)
    rest = len(fo) - after + len(strad)
    if rest < W:
        return None, rest
    base, tl, _ = _next_after(plan, g, b[strad], np.zeros(len(strad), np.int64),
                              np.ones(len(strad), np.int64), r, ev)
    cand = np.concatenate([fo[after:after + W], base + tl * ev.slope])
    return int(np.partition(cand, W - 1)[W - 1]), rest


def _fold_resets(plan: _Plan, g: int, b: np.ndarray, fo: np.ndarray, lo: np.ndarray,
                 allowed: np.ndarray, need: int, W: int, ev: _Events) -> tuple[int, int, int]:
    """Resets inside fold g, the first after ``need`` new channels: (reset count, last reset
    position, channels fetched after it)."""
    G, slope = ev.G, ev.slope
    end = (g + 1) * plan.ifmap_span - 1
    plain = (_PlainFold(plan, g) if plan.df != "os" and not plan.op.holes
             and int(plan.ru[plan.fold(g)[1]]) <= plan.op.ch else None)
    if plain and int(allowed.sum()) == G * len(b):
        r = plain.pos(need - 1)
    elif G == 1:  # events are in first-appearance order
        r = int(fo[np.searchsorted(np.cumsum(allowed), need)])
    else:  # list the new channels' positions: a prefix (slope > 0) or suffix of each block
        first = fo + (0 if slope > 0 else G - allowed) * slope
        starts = np.cumsum(allowed) - allowed
        at = np.repeat(first, allowed) + (np.arange(int(starts[-1] + allowed[-1]))
                                          - np.repeat(starts, allowed)) * slope
        r = int(np.partition(at, need - 1)[need - 1])
    resets = 1
    span = int((lo - fo).max()) if G == 1 and not plain else 0
    while True:
        if plain:  # all later demands of the fold are new, in stream order
            done = plain.count(r)
            if plain.total - done < W:
                return resets, r, plain.total - done
            r = plain.pos(done + W - 1)
            resets += 1
            continue
        if G == 1:
            nxt, rest = _sorted_reset(plan, g, b, fo, lo, r, W, ev, span)
            if nxt is None:
                return resets, r, rest
            r = nxt
            resets += 1
            continue
        before_lo = _n_le(lo, slope, r, G)
        rest = int((G - before_lo).sum())
        if rest < W:
            return resets, r, rest
        before_fo = _n_le(fo, slope, r, G)
        strad = np.flatnonzero(before_fo > before_lo)
        if slope > 0:
            t0, t1 = before_lo[strad], before_fo[strad]
        else:
            t0, t1 = G - before_fo[strad], G - before_lo[strad]
        seg = _next_after(plan, g, b[strad], t0, t1, r, ev)
        r = _kth(lambda q: int((_n_le(fo, slope, q, G) - before_fo).sum())
                 + _segments_le(seg, slope, q), W, r + 1, end)
        resets += 1


def _event_fetch(plan: _Plan, W: int) -> _Fetch:
    """The prefetcher over a convolution's overlapping windows, fold batch by fold batch.

    A block channel is in the window iff it appeared after the last reset r, i.e. iff its latest
    appearance ``lastlo + t * slope > r``. A batch of folds without a reset adds the channels that
    each block's first event in the batch has outside the window. In the fold holding a reset, new
    channels are ordered by their first appearance after the reset: ``fo`` for most, the next
    listed appearance for the few channels that appear both before and after it.
    """
    ev = _ifmap_events(plan)
    G, slope, off = ev.G, ev.slope, ev.offsets
    lastlo = np.full(int(ev.blk.max()) + 1, _NEVER, np.int64)
    first_at = np.full(len(lastlo), off[-1], np.int64)
    r, n, reads, resets = -1, 0, 0, 0
    g, batch, since = 0, 4096, 0
    while g < plan.folds:
        gb = max(int(np.searchsorted(off, off[g] + batch, side="right")) - 1, g + 1)
        e0, e1 = int(off[g]), int(off[gb])
        b, lo = ev.blk[e0:e1], ev.lo[e0:e1]
        new = _n_le(lastlo[b], slope, r, G)
        if gb > g + 1:  # only a block's first event in the batch can bring new channels
            idx = np.arange(e1 - e0)
            np.minimum.at(first_at, b, idx)
            new = np.where(first_at[b] == idx, new, 0)
            first_at[b] = off[-1]
        total = int(new.sum())
        if n + total < W:
            n += total
            reads += total
            np.maximum.at(lastlo, b, lo)
            since += e1 - e0
            g, batch = gb, 2 * batch
            continue
        cum = n + np.concatenate([[0], np.cumsum(new)])[off[g + 1:gb + 1] - e0]
        fx = g + int(np.searchsorted(cum, W))
        f0, f1 = int(off[fx]), int(off[fx + 1])
        if fx > g:
            reads += int(cum[fx - g - 1]) - n
            n = int(cum[fx - g - 1])
            np.maximum.at(lastlo, b[:f0 - e0], lo[:f0 - e0])
            b = ev.blk[f0:f1]
            allowed = _n_le(lastlo[b], slope, r, G)
        else:  # the batch's first fold: its counts are the allowed channels
            b, allowed = b[:f1 - e0], new[:f1 - e0]
        fo, lo = ev.fo[f0:f1], ev.lo[f0:f1]
        more, r, rest = _fold_resets(plan, fx, b, fo, lo, allowed, W - n, W, ev)
        reads += (W - n) + (more - 1) * W + rest
        resets += more
        n = rest
        lastlo[b] = lo
        batch, since = max(4096, since + f1 - e0), 0
        g = fx + 1
    return _Fetch(reads, resets, None if resets == 0 else r // plan.ifmap_width)


def _ifmap_fetch(plan: _Plan, W: int) -> _Fetch:
    op = plan.op
    if op.injective:
        F = plan.folds
        fc, fr = np.divmod(np.arange(F), plan.row_fold)
        keys = (np.arange(F) if plan.df == "is" else fr).tolist()
        if op.holes:
            size_of: dict = {}
            for g, key in enumerate(keys):
                if key not in size_of:
                    size_of[key] = len(_ifmap_elements(plan, g)[0])
            sizes = [size_of[key] for key in keys]
        else:
            full = {"os": plan.ru[fr] * op.K, "ws": op.M * plan.ru[fr],
                    "is": plan.ru[fr] * plan.cu[fc]}[plan.df]
            sizes = full.tolist()
        reads, resets, last = _block_fetch(keys, sizes, W)
        if last is None:
            return _Fetch(reads, resets, None)
        g, i = last
        pos = np.sort(_ifmap_elements(plan, g)[0])[i]
        return _Fetch(reads, resets, g * plan.rows_per_fold + int(pos) // plan.ifmap_width)
    used = op.used_words
    if used < W:
        return _Fetch(used, 0, None)
    if plan.df == "ws" and op.ch % plan.R == 0 and not op.holes \
            and (op.ch // plan.R - 1) * op.M * plan.R >= W:
        # Folds of one channel group are ch/R folds apart, so at least W words are fetched between
        # two appearances of a word: a reset always intervenes and every word is new.
        reads = plan.col_fold * op.M * op.K
        resets = reads // W
        if not resets:
            return _Fetch(reads, 0, None)
        g, j = divmod(resets * W - 1, op.M * plan.R)
        return _Fetch(reads, resets, _PlainFold(plan, g).pos(j) // plan.ifmap_width)
    return _event_fetch(plan, W)


def _filter_fetch(plan: _Plan, W: int) -> _Fetch:
    F = plan.folds
    fc, fr = np.divmod(np.arange(F), plan.row_fold)
    N, K = plan.op.nf, plan.op.K
    if plan.df == "os":
        keys, sizes = fc, K * plan.cu[fc]
    elif plan.df == "ws":
        keys, sizes = np.arange(F), plan.ru[fr] * plan.cu[fc]
    else:
        keys, sizes = fr, plan.ru[fr] * N
    reads, resets, last = _block_fetch(keys.tolist(), sizes.tolist(), W)
    if last is None:
        return _Fetch(reads, resets, None)
    g, i = last
    pos = _filter_positions(plan, g)[i]
    return _Fetch(reads, resets, g * plan.rows_per_fold + int(pos) // plan.filter_width)


# ---------------------------------------------------------------------------------------------
# One layer, a whole topology
# ---------------------------------------------------------------------------------------------

def _window(kb: int, word: int) -> tuple[int, int]:
    """SCALE-Sim read buffer of ``kb`` KB: (words between window resets, words per address set)."""
    items = kb * 1024 // word // _SETS
    return _ACTIVE_SETS * items, items


def _seq_mean(values: np.ndarray) -> float:
    """Mean summed left to right, as SCALE-Sim's Python ``sum`` does (same rounding)."""
    return float(np.cumsum(values)[-1]) / len(values)


def _fill_cycles(sets: int, items: int) -> int:
    """Cycles SCALE-Sim's estimate mode books for prefetching ``sets`` address sets."""
    return -(-sets * items // _FIRST_FILL_WORDS_PER_CYCLE)


def _last_ifmap_row(plan: _Plan) -> int:
    """Demand row of the last valid IFMAP read (windows past the input read nothing, so with holes
    the last folds may read nothing at all)."""
    g = plan.folds - 1
    if not plan.op.holes:
        ru = int(plan.ru[-1])
        local = {"os": plan.op.K + ru - 2, "ws": plan.R + plan.op.M + ru - 2, "is": plan.R - 1}
        return g * plan.rows_per_fold + local[plan.df]
    while True:
        pos = _ifmap_elements(plan, g)[0]
        if len(pos):
            return g * plan.rows_per_fold + int(pos.max()) // plan.ifmap_width
        g -= 1


def _scalesim_detail(plan: _Plan, fi: _Fetch, ff: _Fetch, drain: _Drain, items: tuple[int, int],
                     reads: tuple[int, int]) -> dict[str, int]:
    """Start and stop cycles of SCALE-Sim's DETAILED_ACCESS_REPORT (no stalls in estimate mode)."""
    R, T, ru0, cu1 = plan.R, plan.T, int(plan.ru[0]), int(plan.cu[-1])
    last = (plan.folds - 1) * plan.rows_per_fold
    first_if, first_fl = {"os": (0, 0), "ws": (R, R - ru0), "is": (R - ru0, R)}[plan.df]
    last_fl = {"os": plan.op.K + cu1 - 2, "ws": R - 1,
               "is": R + plan.op.nf + int(plan.ru[-1]) - 2}[plan.df]
    of_first = T - 1 + R - ru0 if plan.df == "os" else 2 * R - 1
    of_last = (T + R + cu1 - 3) if plan.df == "os" else 2 * R - 1 + T + cu1 - 2
    out = {"sram_ifmap_start": first_if + 1, "sram_ifmap_stop": _last_ifmap_row(plan) + 1,
           "sram_filter_start": first_fl + 1, "sram_filter_stop": last + last_fl + 1,
           "sram_ofmap_start": of_first, "sram_ofmap_stop": last + of_last}
    for name, fetch, first, item, words in (("ifmap", fi, first_if, items[0], reads[0]),
                                            ("filter", ff, first_fl, items[1], reads[1])):
        if fetch.resets:
            out[f"dram_{name}_start"] = first - _fill_cycles(_ACTIVE_SETS, item)
            out[f"dram_{name}_stop"] = fetch.last_reset_row + 1
        else:
            out[f"dram_{name}_start"] = -_fill_cycles(-(-words // item), item)
            out[f"dram_{name}_stop"] = -1
    out["dram_ofmap_start"], out["dram_ofmap_stop"] = drain.first_cycle, drain.last_cycle
    return out


def simulate_layer(cfg: SystolicConfig, layer: TopologyLayer) -> LayerReport:
    """One layer on the array: cycles, SCALE-Sim's counters, and energy events in bytes."""
    compat, df, word = cfg.scalesim_compat, cfg.dataflow, cfg.word_size
    op = _Im2col.of(layer, compat)
    plan = _Plan(df, cfg.rows, cfg.cols, op)
    R, C = cfg.rows, cfg.cols
    M, N, K = op.M, op.nf, op.K
    rows = plan.folds * plan.rows_per_fold
    macs = M * N * K
    rf, cf = plan.row_fold, plan.col_fold
    sram_if = {"os": cf * M * K, "ws": cf * M * K, "is": M * K}[df]
    sram_fl = {"os": rf * N * K, "ws": K * N, "is": cf * K * N}[df]
    sram_of = M * N if df == "os" else rf * M * N
    if compat and df == "os":
        sram_of += plan.folds * (R + C)
    (w_if, items_if), (w_fl, items_fl) = (_window(cfg.ifmap_sram_kb, word),
                                          _window(cfg.filter_sram_kb, word))
    fi, ff = _ifmap_fetch(plan, w_if), _filter_fetch(plan, w_fl)
    ofmap_words = cfg.ofmap_sram_kb * 1024 // word
    info: dict = {"mode": "scalesim" if compat else "corrected"}
    if compat:
        drain = _ofmap_drain(_OfmapStream(plan), ofmap_words, C, rows)
        compute, stall = rows - 1, 0  # SCALE-Sim's estimate mode never stalls (see _ofmap_drain)
        dram_of, psum_reads, spill = drain.dram_writes, 0, 0
        phases = {"compute": compute}
    else:
        psum_reads = 0 if df == "os" else (rf - 1) * M * N
        spill = psum_reads if psum_reads and (M if df == "ws" else N) * C > ofmap_words else 0
        dram_of = M * N + spill
        dram_bytes = (fi.reads + ff.reads + spill + dram_of) * word
        compute = rows
        stall = max(0, -(-dram_bytes // cfg.dram_width) - rows)
        phases = {"compute": compute, "dram_stall": stall}
    cycles = compute + stall
    used = (plan.ru[None, :] * plan.cu[:, None]).reshape(-1)  # MACs used per fold, fold order
    fold_cycles = plan.rows_per_fold if df == "os" else plan.T + 2 * R + 2 * C - 3
    info.update({
        "compute_cycles": cycles,
        "stall_cycles": stall,
        "overall_util_pct": macs * 100 / (cycles * R * C),
        "mapping_efficiency_pct": _seq_mean(used / (R * C)) * 100,
        "compute_util_pct": _seq_mean(used * plan.T / (R * C * fold_cycles)) * 100,
        "sram_ifmap_reads": sram_if, "sram_filter_reads": sram_fl, "sram_ofmap_writes": sram_of,
        "dram_ifmap_reads": fi.reads, "dram_filter_reads": ff.reads, "dram_ofmap_writes": dram_of,
    })
    if compat:
        detail = _scalesim_detail(plan, fi, ff, drain, (items_if, items_fl), (fi.reads, ff.reads))
        info["total_cycles_incl_prefetch"] = int(detail["dram_ofmap_stop"]
                                                 - min(detail["dram_ifmap_start"],
                                                       detail["dram_filter_start"]))
        info["detail"] = detail
    else:
        info["sram_ofmap_psum_reads"] = psum_reads
        info["dram_psum_spill_words"] = spill
    events = {
        "dram.read_bytes": (fi.reads + ff.reads + spill) * word,
        "dram.write_bytes": dram_of * word,
        "sram.ifmap.read_bytes": sram_if * word,
        "sram.ifmap.write_bytes": fi.reads * word,
        "sram.filter.read_bytes": sram_fl * word,
        "sram.filter.write_bytes": ff.reads * word,
        "sram.ofmap.write_bytes": (sram_of + spill) * word,
        "sram.ofmap.read_bytes": (dram_of + psum_reads) * word,
        "op.mac8": macs * word * word,
    }
    return LayerReport(layer.name, cycles, macs, phases, {k: float(v) for k, v in events.items()},
                       info=info)


def simulate_topology(cfg: SystolicConfig, layers: list[TopologyLayer]) -> SimReport:
    """Simulate every layer of a SCALE-Sim topology (compiler.topology.read_topology)."""
    reports = [simulate_layer(cfg, layer) for layer in layers]
    banks = {name: kb * 1024 // 2 for name, kb in (("ifmap", cfg.ifmap_sram_kb),
                                                   ("filter", cfg.filter_sram_kb),
                                                   ("ofmap", cfg.ofmap_sram_kb))}
    return SimReport.build(cfg, reports, banks=banks, peak_macs_per_cycle=cfg.rows * cfg.cols)
