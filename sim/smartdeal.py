"""Cycle model of the SmartDeal core (hdl/sd/core.py), with events and energy (docs/smartdeal.md).

Steps cost ``2 + max(load, exec)`` as on the LCP array. Inside a COMPUTE (cycle 0 = its LAUNCH):

    pass 0 starts at      A_0 = 2 + T_pre(0)
    a pass lasts          max(comp_p, T_pre(p+1) + 1)
    T_pre(p)              max(3, g_p + 2), g_p = input-buffer words the pass fetches
    comp_p                max over its lines of sum over steps of max(1, max over MACs of the
                          activation's non-zero Booth digits)
    a tile (after the     at least F*per + 1 cycles: the drain of the previous tile must have
    first) lasts          fed every pixel (per = max(1, group channels / B) cycles a pixel)
    the COMPUTE ends      when the last tile's drain has written its last kept pixel (a HOLD
                          step, which keeps its sums in the MACs: the cycle after its last pass)

``simulate_program`` takes the activations from the golden model, so the bit-serial cycles are
exact; ``simulate_shapes`` (estimate mode) replaces them with the expected cost under a Booth-digit
density and a Ce row sparsity, and says so in every layer's ``info``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from amaranth.utils import ceil_log2

from tessera.compiler.layers import LayerShape
from tessera.compiler.program import Program
from tessera.compiler.sd.isa import (HEADER_BITS, PARAM_BYTES, SEL_BITS, STEP_BYTES,
                                     Flag, Mode, Op, basis_word_bits, decode_steps,
                                     pass_word_bits, unpack_field)
from tessera.compiler.sd.mapping import SdTensor
from tessera.config import SmartDealConfig

from .report import LayerReport, SimReport

STEP_OVERHEAD = 2
PPU_LATENCY = 4


def booth_nnz(x: np.ndarray) -> np.ndarray:
    """Non-zero radix-4 Booth digits of int8 values (0..4)."""
    b = x.astype(np.int16) & 0xFF
    bits = [np.zeros_like(b)] + [(b >> i) & 1 for i in range(8)]
    return sum(((bits[2 * k] + bits[2 * k + 1] - 2 * bits[2 * k + 2]) != 0).astype(np.uint8)
               for k in range(4)).astype(np.uint8)


@dataclass(frozen=True)
class SdTiming:
    cfg: SmartDealConfig

    @property
    def L(self) -> int:
        return self.cfg.dram_latency

    @property
    def wbytes(self) -> int:
        c = self.cfg
        return pass_word_bits(c.dim_m, c.dim_c, c.S, c.dram_width) // 8

    @property
    def bbytes(self) -> int:
        c = self.cfg
        return basis_word_bits(c.dim_m, c.S, c.dram_width) // 8

    @property
    def gbytes(self) -> int:
        return self.cfg.gb_lanes * self.cfg.dim_f

    @property
    def step_beats(self) -> int:
        return STEP_BYTES // self.cfg.dram_width

    @property
    def startup(self) -> int:
        return 2 + self.L + self.step_beats

    @property
    def tree_depth(self) -> int:
        return ceil_log2(self.cfg.dim_c) if self.cfg.dim_c > 1 else 0

    def load(self, beats):
        return np.where(beats > 0, self.L + beats, 0)

    def prefetch(self, gb_words):
        return np.maximum(3, gb_words + 2)


@dataclass
class PassTable:
    """The passes of one channel group, as the pass words hold them."""
    valid: np.ndarray   # (P, dim_c)
    row: np.ndarray
    lane: np.ndarray
    plane: np.ndarray   # (P,)
    bb_load: np.ndarray

    @classmethod
    def from_words(cls, words: np.ndarray, cfg: SmartDealConfig, two: bool,
                   plane0: int = 0) -> "PassTable":
        """From a chunk's pass words (``two`` per pass: int8 weights, or two clusters; its
        planes count from ``plane0``)."""
        if two:
            words = words[0::2]
        hdr = unpack_field(words, 0, HEADER_BITS, 1)[:, 0]
        sel = unpack_field(words, HEADER_BITS, SEL_BITS, cfg.dim_c)
        return cls((sel & 1).astype(bool), ((sel >> 1) & 7).astype(np.int64),
                   (sel >> 4).astype(np.int64), (hdr & 0xFFF).astype(np.int64) + plane0,
                   ((hdr >> 13) & 1).astype(bool))

    def gb_words(self, taps: int, mode: Mode, S: int) -> np.ndarray:
        used = np.stack([(self.valid & (self.row == r)).any(axis=1) for r in range(S)], axis=1)
        halves = 2 if (taps > 1 and not pointwise(mode)) else 1
        return used.sum(axis=1) * halves


def pointwise(mode: Mode) -> bool:
    return mode in (Mode.POINTWISE, Mode.CLUSTER)


def clusters(st) -> int:
    return 2 if int(st["mode"]) == Mode.CLUSTER else 1


def _sources(st, passes: PassTable, L: int, ty: np.ndarray):
    """(stored input row (T, P, dc), first input channel (P, dc)) of every line of every pass:
    a line's slot is its kernel row, or for a pointwise layer one of S planes."""
    stride, y0 = int(st["stride"]), int(st["y0"])
    base = (y0 + ty)[:, None, None] * stride
    if pointwise(Mode(int(st["mode"]))):
        return (np.broadcast_to(base, (ty.size, *passes.row.shape)),
                (passes.plane[:, None] + passes.row) * L + passes.lane)
    return base + passes.row[None], passes.plane[:, None] * L + passes.lane


def _windows(t: SdTiming, st, passes: PassTable, nnz: np.ndarray) -> np.ndarray:
    """Non-zero Booth digits (T, P, dc, slices, taps, F) of the activation every MAC of every
    line takes at every step of every pass of every tile (one slice unless depthwise: the others
    see the same activations). In two clusters MAC f takes the activation of MAC f mod dim_f/2."""
    cfg = t.cfg
    F, L = cfg.dim_f, cfg.gb_lanes
    mode, taps = Mode(int(st["mode"])), int(st["taps"])
    ty, tx = np.meshgrid(np.arange(int(st["ny"])), np.arange(int(st["nseg"])), indexing="ij")
    ty, tx = ty.ravel(), tx.ravel() + int(st["tx0"])
    rows, base_ch = _sources(st, passes, L, ty)                       # (T,P,dc), (P,dc)
    k, f = np.arange(taps), np.arange(F) % (F // clusters(st))
    slices = np.arange(int(st["n_ch"]) if mode == Mode.DEPTHWISE else 1)
    ch = base_ch[None, :, :, None, None, None] + slices[:, None, None]  # (1,P,dc,m,1,1)
    if pointwise(mode):
        ch = ch + k[:, None]                                          # the next channel per step
        cols = (tx * F)[:, None, None, None, None, None] + f
    else:
        cols = (tx * F)[:, None, None, None, None, None] + k[:, None] + f
    return nnz[ch, rows[..., None, None, None], cols]


def _costs_and_digits(t: SdTiming, st, passes: PassTable, nnz: np.ndarray):
    """(tiles, passes) compute cycles, and the non-zero digits the MACs process (one add each)."""
    vals = _windows(t, st, passes, nnz)
    valid = passes.valid[None, :, :, None]
    line = np.where(valid, np.maximum(1, vals.max(axis=-1)).sum(axis=-1), 0)  # (T,P,dc,m)
    comp = np.maximum(1, line.max(axis=(-1, -2)))
    digits = int(np.where(valid, vals.sum(axis=(-1, -2)), 0).sum())
    if Mode(int(st["mode"])) != Mode.DEPTHWISE:
        digits *= t.cfg.dim_m
    return comp, digits


def _exec_cycles(t: SdTiming, st, comp: np.ndarray, pre: np.ndarray) -> tuple[float, dict]:
    """Cycles from a COMPUTE's LAUNCH to the cycle its unit reports done, and its phases."""
    cfg = t.cfg
    F, B = cfg.dim_f, cfg.dram_width
    T, P = comp.shape
    per = max(1, int(st["n_ch"]) // B)
    n_beats = int(st["n_ch"]) // B
    feed = F * per
    flat = comp.ravel()
    nxt = np.roll(np.tile(pre, T), -1)                       # prefetch of the following pass
    dur = np.maximum(flat, nxt + 1).reshape(T, P).astype(float)
    dur[-1, -1] = flat[-1]                                   # the last pass: no next prefetch
    work = dur.sum(axis=1)                                   # a tile's passes
    tile = np.where(np.arange(T) >= 1, np.maximum(work, feed + 1), work)
    start0 = 2 + pre[0]
    first_last = start0 + tile[:-1].sum()                    # the last tile's first pass
    z = first_last + work[-1] - 1
    if T > 1:
        z = max(z, first_last + feed)
    # Which pixels of the last tile are outputs (the drain writes only those); in two clusters
    # MAC f holds column f mod dim_f/2 of cluster f // (dim_f/2).
    tx = (T - 1) % int(st["nseg"]) + int(st["tx0"])
    xc = tx * F + np.arange(F) % (F // clusters(st))
    stride = int(st["stride"])
    keep = (xc % stride == 0) & (xc // stride < int(st["out_w"]))
    end = z + 1 + feed
    if int(st["flags"]) & Flag.HOLD:        # the sums stay in the MACs: nothing to drain
        end = z + 1
    elif keep.any():
        f_last = int(np.flatnonzero(keep)[-1])
        end = max(end, z + 2 + f_last * per + t.tree_depth + 5 + n_beats)
    phases = {"prefetch": start0, "compute": comp.sum(), "drain": end - start0 - comp.sum()}
    return end, phases


def _columns(st, F: int) -> int:
    """Output columns a COMPUTE's row segments write (all of them unless it runs one tile)."""
    xc = (int(st["tx0"]) + np.arange(int(st["nseg"])))[:, None] * F + np.arange(F)
    stride = int(st["stride"])
    return int(((xc % stride == 0) & (xc // stride < int(st["out_w"]))).sum())


def _compute_tally(t: SdTiming, st, passes: PassTable, T: int, raw: bool) -> Counter:
    """Event counts of one COMPUTE step (docs/smartdeal.md, "Events")."""
    cfg = t.cfg
    dm, F, S = cfg.dim_m, cfg.dim_f, cfg.S
    mode, taps = Mode(int(st["mode"])), int(st["taps"])
    P = passes.valid.shape[0]
    gbw = passes.gb_words(taps, mode, S)
    active = passes.valid.sum()                              # line-passes per tile, per slice
    slices = int(st["n_ch"]) if mode == Mode.DEPTHWISE else dm
    fifo = (F + S - 1) if not pointwise(mode) else F * taps
    k = clusters(st)
    c = Counter()
    c["gb_words_read"] = T * int(gbw.sum())
    c["wb_words_read"] = T * P * (2 if raw else k)
    c["bb_words_read"] = k * (1 + T * int(passes.bb_load.sum()))
    c["line_passes"] = T * int(active) * slices
    c["weight_rows"] = k * c["line_passes"]                 # one per cluster
    c["rebuilds"] = 0 if raw else c["weight_rows"]
    c["fifo_bytes"] = c["line_passes"] * fifo
    c["tiles"] = 0 if int(st["flags"]) & Flag.HOLD else T     # tiles drained
    return c


def _events(t: SdTiming, c: Counter) -> dict[str, float]:
    cfg = t.cfg
    dm, dc, S, F = cfg.dim_m, cfg.dim_c, cfg.S, cfg.dim_f
    acc = cfg.acc_width
    return {
        "dram.read_bytes": c["dram_read"],
        "dram.write_bytes": c["dram_write"],
        "sram.gb.write_bytes": c["gb_words_written"] * t.gbytes,
        "sram.gb.read_bytes": c["gb_words_read"] * t.gbytes,
        "sram.wb.write_bytes": c["wb_words_written"] * t.wbytes,
        "sram.wb.read_bytes": c["wb_words_read"] * t.wbytes,
        "sram.bb.write_bytes": c["bb_words_written"] * t.bbytes,
        "sram.bb.read_bytes": c["bb_words_read"] * t.bbytes,
        "rf.basis.write_bytes": c["bb_words_read"] * dm * dc * S * S,
        "rf.basis.read_bytes": c["rebuilds"] * S * S,
        "rf.weights.write_bytes": c["weight_rows"] * S * cfg.rebuilt_bits / 8,
        "rf.fifo.write_bytes": c["fifo_bytes"],
        "rf.shadow.write_bytes": c["tiles"] * dm * dc * F * acc / 8,
        "rf.params.write_bytes": c["param_words"] * dm * PARAM_BYTES,
        "rf.step.write_bytes": c["fetches"] * STEP_BYTES,
        # a rebuild engine's shift-and-add: an adder as wide as the rebuilt weight
        f"op.add{cfg.rebuilt_bits}": c["rebuilds"] * S * S,
        f"op.add{acc}": c["digit_ops"] + c["tiles"] * dm * F * (dc - 1) + c["outputs"] * 2,
        f"op.mul{acc}x16": c["outputs"],
        "op.add8": c["outputs"],
    }


def _step_loads(t: SdTiming, st) -> tuple[int, Counter]:
    """(load cycles, tallies) of a step's transfers."""
    cfg = t.cfg
    B = cfg.dram_width
    fl = int(st["flags"])
    beats = 0
    c = Counter()
    if fl & Flag.LOAD_GB:
        n = int(st["gb_planes"]) * int(st["gb_beats"])
        beats += n
        c["gb_words_written"] += n * B // t.gbytes
    if fl & Flag.LOAD_WB:
        beats += int(st["wb_words"]) * t.wbytes // B
        c["wb_words_written"] += int(st["wb_words"])
    if fl & Flag.LOAD_BB:
        beats += int(st["bb_words"]) * t.bbytes // B
        c["bb_words_written"] += int(st["bb_words"])
    if fl & Flag.LOAD_PARAM:
        beats += int(st["param_words"]) * cfg.dim_m * PARAM_BYTES // B
        c["param_words"] += int(st["param_words"])
    if not fl & Flag.LAST:
        beats += t.step_beats
        c["fetches"] += 1
    c["dram_read"] += beats * B
    return int(t.load(np.array(beats))), c


def _banks(cfg: SmartDealConfig, t: SdTiming) -> dict[str, int]:
    return {"gb": cfg.gb_depth // 2 * t.gbytes, "wb": cfg.wb_depth * t.wbytes,
            "bb": cfg.bb_depth * t.bbytes}


def _reports(t: SdTiming, steps: np.ndarray, layers: list[dict], tables: list[dict],
             cost, timing: str) -> list[LayerReport]:
    """Per-layer cycles, phases and events; ``cost(i, step, passes)`` gives the (tiles, passes)
    compute cycles of a COMPUTE of layer i and the non-zero digits its MACs process."""
    cfg = t.cfg
    reports = []
    for i, Lm in enumerate(layers):
        raw = not Lm["decomposed"]
        first, end = Lm["steps"]
        tally, phases = Counter(), Counter()
        cycles = 0
        for st in steps[first - 1:end]:
            load, c = _step_loads(t, st)
            tally.update(c)
            if st["op"] == Op.COMPUTE:
                passes = tables[i][int(st["mg"]), int(st["chunk"])]
                comp, digit_ops = cost(i, st, passes)
                pre = t.prefetch(passes.gb_words(int(st["taps"]), Mode(int(st["mode"])), cfg.S))
                lam, ph = _exec_cycles(t, st, comp, pre)
                tally.update(_compute_tally(t, st, passes, comp.shape[0], raw))
                tally["digit_ops"] += digit_ops
                n_out = int(st["ny"]) * _columns(st, cfg.dim_f) * int(st["n_ch"]) \
                    * clusters(st) * (0 if int(st["flags"]) & Flag.HOLD else 1)
                tally["outputs"] += n_out
                tally["dram_write"] += n_out
                phases.update(ph)
                phases["dram_stall"] += max(0, load - lam)
            else:
                lam = 0
                phases["load"] += load
            phases["control"] += STEP_OVERHEAD
            cycles += STEP_OVERHEAD + max(load, lam)
        if i == 0:
            cycles += t.startup
            tally["fetches"] += 1
            tally["dram_read"] += t.step_beats * cfg.dram_width
            phases["control"] += 2
            phases["load"] += t.startup - 2
        reports.append(LayerReport(Lm["name"], int(round(cycles)), Lm["macs"],
                                   {k: int(round(v)) for k, v in phases.items()},
                                   _events(t, tally),
                                   info={"mode": Lm["mode"], "decomposed": Lm["decomposed"],
                                         "passes": Lm["passes"], "timing": timing}))
    return reports


def simulate_program(program: Program, cfg: SmartDealConfig | None = None) -> SimReport:
    """Exact cycles, events and energy of a compiled SmartDeal program: the bit-serial cycles
    come from the activations the golden model computes."""
    from tessera.backends import golden_outputs
    from tessera.compiler.sd.compile import decode_network

    cfg = cfg or program.config
    program.check_config(cfg)
    t = SdTiming(cfg)
    steps = decode_steps(program.region("commands").tobytes())
    _, x = decode_network(program)
    outs = golden_outputs(program)
    img = program.image
    layers = program.manifest["layers"]
    nnz, tables = [], []
    for i, Lm in enumerate(layers):
        nnz.append(booth_nnz(SdTensor.from_dict(Lm["input"]).stored(x if i == 0 else outs[i - 1])))
        two = not Lm["decomposed"] or Lm["mode"] == "cluster"
        tables.append({(mg, k): PassTable.from_words(
            img[ch["pass_words"][0]:][:ch["pass_words"][1] * t.wbytes].reshape(-1, t.wbytes),
            cfg, two, ch["plane0"])
            for mg, chunks in enumerate(Lm["chunks"]) for k, ch in enumerate(chunks)})
    reports = _reports(t, steps, layers, tables,
                       lambda i, st, p: _costs_and_digits(t, st, p, nnz[i]), "exact")
    return SimReport.build(cfg, reports, _banks(cfg, t), cfg.dim_m * cfg.dim_c * cfg.dim_f)


#: Share of non-zero radix-4 Booth digits in activations: the SmartDeal paper (Fig. 3) measures
#: 66% zero digits under Booth encoding across six networks.
DIGIT_DENSITY = 0.34


def expected_pass_cycles(cfg: SmartDealConfig, taps: int, lines: int,
                         density: float = DIGIT_DENSITY) -> float:
    """Expected compute cycles of a pass with ``lines`` busy lines, digits independent."""
    from math import comb

    pmf = np.array([comb(4, j) * density ** j * (1 - density) ** (4 - j) for j in range(5)])
    cdf_mac = np.cumsum(pmf)
    cdf_step = cdf_mac ** cfg.dim_f                     # max over the line's MACs
    step = np.diff(np.concatenate(([0.0], cdf_step)))   # P(max nnz = j), j = 0..4
    step[1] += step[0]                                  # a step is at least one cycle
    step[0] = 0.0
    line = np.array([1.0])
    for _ in range(taps):
        line = np.convolve(line, step)
    cdf = np.cumsum(line) ** max(lines, 1)              # max over the busy lines
    return float(np.sum(1.0 - cdf[:-1]))


def simulate_shapes(cfg: SmartDealConfig, shapes: list[LayerShape],
                    density: float = DIGIT_DENSITY, row_sparsity: float = 0.0,
                    decomposed: bool = True, seed: int = 0) -> SimReport:
    """Estimate mode: layer shapes only. Ce rows are zero with probability ``row_sparsity`` (per
    channel group, as the index selector skips them) and activations have ``density`` non-zero
    Booth digits; every pass costs its expected cycles (reports say timing='estimate')."""
    from tessera.compiler.layers import random_quant_layer
    from tessera.compiler.sd.compile import plan_network, random_layer
    from tessera.compiler.sd.mapping import mode_of

    t = SdTiming(cfg)
    rng = np.random.default_rng(seed)
    layers = []
    for s in shapes:
        can = decomposed and (mode_of(s) != Mode.CONV or s.S == cfg.S)
        layers.append(random_layer(s, cfg, rng, row_sparsity, structure_only=True) if can
                      else random_quant_layer(s, rng))
    net = plan_network(cfg, layers, chain=False)
    tables = []
    for plan in net.plans:
        per = {}
        for mg, chunks in enumerate(plan.groups):
            for k, gp in enumerate(chunks):
                _, bb_load, _ = gp.header()
                per[mg, k] = PassTable(gp.valid, gp.row, gp.lane, gp.plane + gp.plane0, bb_load)
        tables.append(per)
    memo = {}

    def cost(i, st, passes):
        slices = int(st["n_ch"]) if int(st["mode"]) == Mode.DEPTHWISE else 1
        busy = passes.valid.sum(axis=1) * slices
        taps = int(st["taps"])
        for n in {(taps, n) for n in busy.tolist()} - memo.keys():
            memo[n] = expected_pass_cycles(cfg, taps, n[1], density) if n[1] else 1.0
        row = np.array([memo[taps, n] for n in busy.tolist()])
        T = int(st["ny"]) * int(st["nseg"])
        slices = int(st["n_ch"]) if int(st["mode"]) == Mode.DEPTHWISE else cfg.dim_m
        digit_ops = T * int(passes.valid.sum()) * slices * int(st["taps"]) * cfg.dim_f * 4 \
            * density
        return np.broadcast_to(row, (T, row.size)), digit_ops

    reports = _reports(t, net.steps, net.manifest_layers, tables, cost, "estimate")
    return SimReport.build(cfg, reports, _banks(cfg, t), cfg.dim_m * cfg.dim_c * cfg.dim_f)
