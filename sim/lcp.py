"""Cycle-exact model of the LCP core (hdl/lcp/core.py), with event counts and energy.

Timing (docs/lcp.md, "Timing"): the program costs ``2 + L + F`` cycles to fetch its HEADER, then
every step costs ``2 + max(load, exec)`` cycles, where

    load    = L + beats read by the step (0 when it reads nothing)
    COMPUTE = P + 1 + array latency                (P pixels; latency 1 + ceil(log2 rows))
    STORE   = (V - 1) * max(w, rows/B) + w + 5 + rows/B   (V vectors; w = 4 pooling, else 1)

with L the DRAM latency, B the port width and F = 64/B the beats of one step descriptor. Two
paths give the same numbers: ``simulate_program`` reads a compiled Program's steps, and
``simulate_shapes`` derives the same sums in closed form from the tiling, per job, so a whole
network costs microseconds of NumPy whatever its cycle count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from amaranth.utils import ceil_log2

from tessera.compiler.layers import LayerShape
from tessera.compiler.lcp.isa import PARAM_BYTES, STEP_BYTES, Flag, Op, decode_steps
from tessera.compiler.lcp.tiling import layer_jobs
from tessera.compiler.program import Program
from tessera.config import LcpConfig

from .report import LayerReport, SimReport

STEP_OVERHEAD = 2   # LAUNCH cycle + the cycle that sees every unit idle
PPU_LATENCY = 4     # hdl/lcp/ppu.py
STORE_FIXED = 5     # accumulator read + PPU latency


@dataclass(frozen=True)
class LcpTiming:
    """The constants of the timing model, from the configuration."""
    cfg: LcpConfig

    @property
    def L(self) -> int:
        return self.cfg.dram_latency

    @property
    def w_beats(self) -> int:
        return self.cfg.rows * self.cfg.cols // self.cfg.dram_width

    @property
    def param_beats(self) -> int:
        return self.cfg.cols * PARAM_BYTES // self.cfg.dram_width

    @property
    def step_beats(self) -> int:
        return STEP_BYTES // self.cfg.dram_width

    @property
    def vec_beats(self) -> int:
        return self.cfg.rows // self.cfg.dram_width

    @property
    def array_latency(self) -> int:
        return 1 + ceil_log2(self.cfg.rows)

    @property
    def startup(self) -> int:
        return 2 + self.L + self.step_beats

    def load(self, beats):
        return np.where(beats > 0, self.L + beats, 0)

    def compute(self, pixels):
        return pixels + 1 + self.array_latency

    def store_vectors(self, th, tw, planes, pool):
        p = np.where(pool, 2, 1)
        return planes * (th // p) * (tw // p)

    def store(self, vectors, pool):
        w = np.where(pool, 4, 1)
        return (vectors - 1) * np.maximum(w, self.vec_beats) + w + STORE_FIXED + self.vec_beats


def _valid_span(off, n, stride, limit):
    """How many of off, off+stride, ..., off+(n-1)*stride lie in [0, limit)."""
    lo = np.maximum(0, -(off // stride))          # ceil(-off / stride)
    hi = np.minimum(n - 1, np.floor_divide(limit - 1 - off, stride))
    return np.maximum(0, hi - lo + 1)


# -- tallies: the sums every event and phase is computed from ---------------------------------
TALLY_KEYS = ("steps", "fetches", "w_loads", "act_beats", "param_loads", "pixels",
              "pixels_accumulated", "valid_pixels", "store_vectors", "store_reads",
              "control", "weight_load", "stream", "drain", "post", "dram_stall")


def _phases(t: LcpTiming, has_exec, exec_cycles, load_cycles, pixels, is_compute) -> dict:
    """Attribute every cycle of a set of steps to one phase (vectorized over steps)."""
    stall = np.where(has_exec, np.maximum(0, load_cycles - exec_cycles), 0)
    drain = t.array_latency + 1
    return {
        "control": STEP_OVERHEAD * np.size(has_exec),
        "weight_load": int(np.sum(np.where(has_exec, 0, load_cycles))),
        "stream": int(np.sum(np.where(is_compute, pixels, 0))),
        "drain": int(np.sum(is_compute) * drain),
        "post": int(np.sum(np.where(has_exec & ~is_compute, exec_cycles, 0))),
        "dram_stall": int(np.sum(stall)),
    }


def _events(t: LcpTiming, tally: Counter) -> dict[str, float]:
    cfg = t.cfg
    rows, cols, B = cfg.rows, cfg.cols, cfg.dram_width
    acc_bytes = cfg.acc_width / 8
    sum_bits = 16 + ceil_log2(rows)
    dram_read = B * (tally["fetches"] * t.step_beats + tally["w_loads"] * t.w_beats
                     + tally["act_beats"] + tally["param_loads"] * t.param_beats)
    return {
        "dram.read_bytes": dram_read,
        "dram.write_bytes": tally["store_vectors"] * rows,
        "sram.abuf.write_bytes": tally["act_beats"] * B,
        "sram.abuf.read_bytes": tally["valid_pixels"] * rows,
        "sram.acc.read_bytes": (tally["pixels_accumulated"] + tally["store_reads"]) * cols
        * acc_bytes,
        "sram.acc.write_bytes": tally["pixels"] * cols * acc_bytes,
        # Loading a block shifts every inactive register once per array row.
        "rf.weights.write_bytes": tally["w_loads"] * rows * rows * cols,
        "rf.weights.read_bytes": tally["pixels"] * rows * cols,
        "rf.params.write_bytes": tally["param_loads"] * cols * PARAM_BYTES,
        "rf.params.read_bytes": tally["store_reads"] * rows * PARAM_BYTES,
        "rf.step.write_bytes": tally["fetches"] * STEP_BYTES,
        "op.mul8": tally["pixels"] * rows * cols,
        f"op.add{sum_bits}": tally["pixels"] * (rows - 1) * cols,
        f"op.add{cfg.acc_width}": tally["pixels_accumulated"] * cols
        + tally["store_reads"] * rows,
        f"op.mul{cfg.acc_width}x16": tally["store_reads"] * rows,
        "op.add48": tally["store_reads"] * rows,
        "op.add8": tally["store_reads"] * rows,
    }


def _banks(cfg: LcpConfig) -> dict[str, int]:
    return {"abuf": cfg.abuf_depth // 2 * cfg.rows,
            "acc": cfg.acc_depth * cfg.cols * cfg.acc_width // 8}


def _layer_report(t: LcpTiming, name: str, macs: int, tally: Counter, cycles: int,
                  info: dict) -> LayerReport:
    phases = {k: int(tally[k]) for k in ("control", "weight_load", "stream", "drain", "post",
                                          "dram_stall")}
    assert sum(phases.values()) == cycles, (name, phases, cycles)
    return LayerReport(name=name, cycles=int(cycles), macs=int(macs), phases=phases,
                       events=_events(t, tally), info=info)


# -- path 1: a compiled Program's steps ---------------------------------------------------------
def _step_tally(t: LcpTiming, steps: np.ndarray) -> tuple[Counter, int]:
    op, fl = steps["op"].astype(np.int64), steps["flags"].astype(np.int64)
    has_w = (fl & Flag.LOAD_W) != 0
    has_act = (fl & Flag.LOAD_ACT) != 0
    has_par = (fl & Flag.LOAD_PARAM) != 0
    fetch = (fl & Flag.LAST) == 0
    act_beats = np.where(has_act, steps["act_rows"].astype(np.int64)
                         * steps["act_row_beats"].astype(np.int64), 0)
    beats = (has_w * t.w_beats + act_beats + has_par * t.param_beats + fetch * t.step_beats)
    load = t.load(beats)
    th, tw = steps["th"].astype(np.int64), steps["tw"].astype(np.int64)
    is_c, is_s = op == Op.COMPUTE, op == Op.STORE
    pool = (fl & Flag.POOL) != 0
    pixels = np.where(is_c, th * tw, 0)
    vectors = np.where(is_s, t.store_vectors(th, tw, steps["planes"].astype(np.int64), pool), 0)
    exec_cycles = np.where(is_c, t.compute(pixels), np.where(is_s, t.store(vectors, pool), 0))
    cycles = STEP_OVERHEAD * steps.size + int(np.sum(np.maximum(load, exec_cycles)))
    st = np.maximum(steps["stride"].astype(np.int64), 1)
    valid = (_valid_span(steps["oy_off"].astype(np.int64), th, st, steps["bh"].astype(np.int64))
             * _valid_span(steps["ox_off"].astype(np.int64), tw, st, steps["bw"].astype(np.int64)))
    tally = Counter({
        "steps": steps.size, "fetches": int(fetch.sum()), "w_loads": int(has_w.sum()),
        "act_beats": int(act_beats.sum()), "param_loads": int(has_par.sum()),
        "pixels": int(pixels.sum()),
        "pixels_accumulated": int(np.sum(np.where(is_c & ((fl & Flag.ACC_CLEAR) == 0), pixels,
                                                  0))),
        "valid_pixels": int(np.sum(np.where(is_c, valid, 0))),
        "store_vectors": int(vectors.sum()),
        "store_reads": int(np.sum(vectors * np.where(pool, 4, 1))),
    })
    tally.update(_phases(t, is_c | is_s, exec_cycles, load, pixels, is_c))
    return tally, cycles


def simulate_program(program: Program, cfg: LcpConfig | None = None) -> SimReport:
    """Cycles, events and energy of a compiled LCP program, step by step (vectorized).

    ``cfg`` may differ from the program's in fields that do not change the hardware (DRAM
    latency, clock, energy table)."""
    if cfg is None:
        cfg = program.config
    program.check_config(cfg)
    t = LcpTiming(cfg)
    steps = decode_steps(program.region("commands").tobytes())
    layers = []
    for i, layer in enumerate(program.manifest["layers"]):
        first, end = layer["steps"]
        tally, cycles = _step_tally(t, steps[first - 1:end])  # with the HEADER/NOP before it
        if i == 0:
            cycles += t.startup
            tally["fetches"] += 1
            tally["control"] += 2
            tally["weight_load"] += t.startup - 2
        layers.append(_layer_report(t, layer["name"], layer["macs"], tally, cycles,
                                    {"tile": layer["tile"], "jobs": layer["jobs"]}))
    return SimReport.build(cfg, layers, _banks(cfg), cfg.rows * cfg.cols)


# -- path 2: closed form from the layer shapes ----------------------------------------------------
def _shape_tally(t: LcpTiming, shape: LayerShape, last_layer: bool) -> tuple[Counter, int, dict]:
    cfg = t.cfg
    jobs = layer_jobs(shape, cfg)
    G, T = jobs.G, jobs.T
    GT = G * T
    L, nW, nP, nF = t.L, t.w_beats, t.param_beats, t.step_beats
    rows, B = cfg.rows, cfg.dram_width
    P = jobs.h * jobs.w
    lc = t.compute(P)
    window = jobs.bh * jobs.bw * rows // B          # beats of one input window
    act, par = jobs.act_load, jobs.param_load
    loader = np.flatnonzero(act)
    nxt = np.zeros(jobs.count, np.int64)            # the window loaded after this job's last one
    nxt[loader[:-1]] = window[loader[1:]]

    # Compute steps at window starts (k = g*T): the job's first step, and every plane's first
    # step when the job loads its windows.
    g = np.arange(G)[None, :]
    special = (g == 0) | act[:, None]
    beats = (nF + nW * ((g * T) < GT - 1) + nP * (par[:, None] & (g == 0))
             + np.where(act[:, None], np.where(g < G - 1, window[:, None], nxt[:, None]), 0))
    spec_cost = np.where(special, np.maximum(lc[:, None], L + beats), 0).sum(axis=1)
    spec_load = np.where(special, L + beats, 0)
    # The other compute steps: W + fetch, except the job's last one (fetch only).
    plain = G * (T - 1)
    plain_cost = np.where(plain > 0, (plain - 1) * np.maximum(lc, L + nF + nW)
                          + np.maximum(lc, L + nF), 0)
    # STORE steps: the next job's first block (none after the layer's last), then the fetch.
    vectors = t.store_vectors(jobs.h, jobs.w, jobs.planes, shape.pool)
    ls = t.store(vectors, shape.pool)
    st_beats = nW * (np.arange(jobs.count) < jobs.count - 1) + nF
    if last_layer:
        st_beats[-1] -= nF                            # the program's LAST step fetches nothing
    st_load = t.load(st_beats)
    # The prologue (HEADER or NOP): the first block, the first window, the fetch.
    pro = L + nW + window[0] + nF

    steps_count = jobs.count * (GT + 1) + 1
    cycles = (STEP_OVERHEAD * steps_count + int(spec_cost.sum()) + int(plain_cost.sum())
              + int(np.maximum(ls, st_load).sum()) + pro)
    # Stalls: load cycles beyond the execution they overlap.
    stall = (np.where(special, np.maximum(0, spec_load - lc[:, None]), 0).sum()
             + np.where(plain > 0, (plain - 1) * np.maximum(0, L + nF + nW - lc)
                        + np.maximum(0, L + nF - lc), 0).sum()
             + np.maximum(0, st_load - ls).sum())

    # Padding: pixels whose input lies outside the image read nothing.
    st, (pt, pl, _, _) = shape.stride, shape.pads
    rows_valid = sum(_valid_span(jobs.oy0 * st + r - pt - jobs.iy0, jobs.h, st, jobs.bh)
                     for r in range(shape.R))
    cols_valid = sum(_valid_span(jobs.ox0 * st + s - pl - jobs.ix0, jobs.w, st, jobs.bw)
                     for s in range(shape.S))
    pool_reads = 4 if shape.pool else 1
    tally = Counter({
        "steps": steps_count,
        "fetches": steps_count - (1 if last_layer else 0),
        "w_loads": jobs.count * GT,
        "act_beats": int(np.sum(np.where(act, G * window, 0))),
        "param_loads": int(par.sum()),
        "pixels": int(np.sum(P) * GT),
        "pixels_accumulated": int(np.sum(P) * (GT - 1)),
        "valid_pixels": int(np.sum(G * rows_valid * cols_valid)),
        "store_vectors": int(vectors.sum()),
        "store_reads": int(vectors.sum()) * pool_reads,
        "control": STEP_OVERHEAD * steps_count,
        "weight_load": pro,
        "stream": int(np.sum(P) * GT),
        "drain": jobs.count * GT * (t.array_latency + 1),
        "post": int(ls.sum()),
        "dram_stall": int(stall),
    })
    info = {"tile": [jobs.tiling.th, jobs.tiling.tw], "jobs": jobs.count}
    return tally, cycles, info


def simulate_shapes(cfg: LcpConfig, shapes: list[LayerShape]) -> SimReport:
    """Cycles, events and energy of a network from its layer shapes alone (no weights needed)."""
    t = LcpTiming(cfg)
    layers = []
    for i, shape in enumerate(shapes):
        tally, cycles, info = _shape_tally(t, shape, i == len(shapes) - 1)
        if i == 0:
            cycles += t.startup
            tally["fetches"] += 1
            tally["control"] += 2
            tally["weight_load"] += t.startup - 2
        layers.append(_layer_report(t, shape.name, shape.macs, tally, cycles, info))
    return SimReport.build(cfg, layers, _banks(cfg), cfg.rows * cfg.cols)
