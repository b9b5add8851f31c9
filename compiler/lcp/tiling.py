"""Tiling a layer onto the LCP array, and the step sequence that runs it.

A layer is cut into *tiles* of th x tw conv output pixels (th*tw <= acc_depth accumulators; the input
window of a tile fits one activation-buffer bank). For each tile and each column block n of ``cols``
output channels (a *job*), the array streams the tile's pixels once per weight block (plane g,
tap t): G*T COMPUTE steps, then one STORE step. Loop order: tiles outer, column blocks inner, so a
tile's input is loaded once when it has a single plane (G == 1).

Loads are placed one step ahead of the execution that needs them (double buffering): the weight
block of step i+1 and the activation window it starts are loaded during step i. A NOP step between
layers keeps the next layer's first loads after the last STORE they depend on.

Jobs are described by NumPy arrays (``LayerJobs``) so the simulator can time a whole layer without
materialising its steps; ``layer_steps`` materialises them for a Program.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessera.config import LcpConfig
from tessera.errors import CompileError

from .isa import PARAM_BYTES, STEP_DTYPE, Flag, Op
from .layout import TensorLayout, block_bytes, ceil_div
from ..layers import LayerShape


@dataclass(frozen=True)
class Tiling:
    th: int  # tile height in conv output pixels (a multiple of 2 when pooling)
    tw: int

    @property
    def pixels(self) -> int:
        return self.th * self.tw


def _window(n: int, stride: int, k: int, limit: int) -> int:
    """Input rows (or columns) read by n output rows, at most the image size."""
    return min((n - 1) * stride + k, limit)


def choose_tiling(shape: LayerShape, cfg: LcpConfig) -> Tiling:
    """The largest tile, full rows first, whose accumulators and input window fit."""
    p = 2 if shape.pool else 1
    hc, wc = shape.out_h * p, shape.out_w * p
    bank = cfg.abuf_depth // 2

    def fits(h: int, w: int) -> bool:
        return (h * w <= cfg.acc_depth and
                _window(h, shape.stride, shape.R, shape.H)
                * _window(w, shape.stride, shape.S, shape.W) <= bank)

    tw = next((w for w in range(wc // p * p, 0, -p) if fits(p, w)), 0)
    if tw == 0:
        need = _window(p, shape.stride, shape.R, shape.H) * _window(p, shape.stride, shape.S,
                                                                    shape.W)
        what = (f"{p * p} accumulators (acc_depth is {cfg.acc_depth})" if p * p > cfg.acc_depth
                else f"a {need}-entry input window (one ABUF bank is {bank} entries: "
                     f"abuf_depth/2)")
        raise CompileError(f"layer '{shape.name}' does not fit: its smallest tile needs {what}; "
                           "increase abuf_depth or acc_depth")
    th = next(h for h in range(hc // p * p, 0, -p) if fits(h, tw))
    return Tiling(th, tw)


@dataclass
class LayerJobs:
    """Every job of a layer as parallel arrays (one entry per job, in execution order)."""
    shape: LayerShape
    tiling: Tiling
    NT: int           # column blocks
    G: int            # input planes
    T: int            # taps (R*S)
    oy0: np.ndarray   # tile origin, conv output pixels
    ox0: np.ndarray
    h: np.ndarray     # tile size
    w: np.ndarray
    n: np.ndarray     # column block
    iy0: np.ndarray   # valid input window held in the ABUF: origin and size
    ix0: np.ndarray
    bh: np.ndarray
    bw: np.ndarray
    act_load: np.ndarray  # bool: the job loads its input windows (False: reuses plane 0's)
    param_load: np.ndarray  # bool: the job loads its channel parameters
    planes: np.ndarray    # output planes the STORE writes

    @property
    def count(self) -> int:
        return int(self.n.size)


def layer_jobs(shape: LayerShape, cfg: LcpConfig) -> LayerJobs:
    t = choose_tiling(shape, cfg)
    p = 2 if shape.pool else 1
    hc, wc = shape.out_h * p, shape.out_w * p
    NT, G, T = ceil_div(shape.K, cfg.cols), ceil_div(shape.C, cfg.rows), shape.R * shape.S
    oy = np.arange(0, hc, t.th)
    ox = np.arange(0, wc, t.tw)
    oy0, ox0, n = (a.ravel() for a in np.meshgrid(oy, ox, np.arange(NT), indexing="ij"))
    h = np.minimum(t.th, hc - oy0)
    w = np.minimum(t.tw, wc - ox0)
    st, (pt, pl, _, _) = shape.stride, shape.pads
    iy0 = np.maximum(0, oy0 * st - pt)
    ix0 = np.maximum(0, ox0 * st - pl)
    bh = np.minimum(shape.H, (oy0 + h - 1) * st - pt + shape.R) - iy0
    bw = np.minimum(shape.W, (ox0 + w - 1) * st - pl + shape.S) - ix0
    act_load = (n == 0) | (G > 1)
    param_load = (n != np.roll(n, 1)) | (np.arange(n.size) == 0)
    out_planes = ceil_div(shape.K, cfg.rows)
    planes = np.minimum(cfg.planes, out_planes - n * cfg.planes)
    return LayerJobs(shape, t, NT, G, T, oy0, ox0, h, w, n, iy0, ix0, bh, bw, act_load,
                     param_load, planes)


@dataclass(frozen=True)
class LayerAddrs:
    """Where a layer's data live in the image."""
    input: TensorLayout
    output: TensorLayout
    weights: int
    params: int


def layer_steps(jobs: LayerJobs, addrs: LayerAddrs, cfg: LcpConfig) -> tuple[np.ndarray, np.ndarray]:
    """The layer's steps, and a one-step *prologue* of the loads its first step needs.

    Each step loads the weight block of the next step (when that is a COMPUTE of this layer), the
    first compute of input window k loads window k+1 into the other bank (the bank window k-1 has
    finished with), and a job's first compute loads the job's channel parameters (used only by its
    STORE). ``program_steps`` merges the prologue into the HEADER or the NOP before the layer.
    """
    s, G, T = jobs.shape, jobs.G, jobs.T
    per_job = G * T + 1
    steps = np.zeros(jobs.count * per_job + 1, STEP_DTYPE)  # last entry: the prologue
    body = steps[:-1]
    j = np.arange(jobs.count * per_job)
    job, k = j // per_job, j % per_job
    compute = k < G * T
    g, tap = k // T, k % T
    r, sx = tap // s.S, tap % s.S
    B, rows = cfg.dram_width, cfg.rows
    bank_size = cfg.abuf_depth // 2

    # Input windows are loaded in order, alternating banks; a job that reuses its window
    # (G == 1, n > 0) reads the window loaded last.
    loads_per_job = np.where(jobs.act_load, G, 0)
    first_band = np.concatenate(([0], np.cumsum(loads_per_job)[:-1]))
    band = np.where(jobs.act_load[job], first_band[job] + g, first_band[job] - 1)
    base = (band % 2) * bank_size

    jh, jw, jbw, jbh = jobs.h[job], jobs.w[job], jobs.bw[job], jobs.bh[job]
    oy_off = jobs.oy0[job] * s.stride + r - s.pads[0] - jobs.iy0[job]
    ox_off = jobs.ox0[job] * s.stride + sx - s.pads[1] - jobs.ix0[job]

    body["op"] = np.where(compute, Op.COMPUTE, Op.STORE)
    body["th"], body["tw"] = jh, jw
    body["stride"] = np.where(compute, s.stride, 0)
    body["oy_off"] = np.where(compute, oy_off, 0)
    body["ox_off"] = np.where(compute, ox_off, 0)
    body["bh"] = np.where(compute, jbh, 0)
    body["bw"] = np.where(compute, jbw, 0)
    body["abuf_start"] = np.where(compute, base + oy_off * jbw + ox_off, 0)
    body["row_step"] = np.where(compute, s.stride * jbw, 0)

    flags = np.zeros(steps.size, np.int64)
    fb = flags[:-1]
    fb |= np.where(compute & (k == 0), int(Flag.ACC_CLEAR), 0)
    fb |= np.where(~compute & s.relu, int(Flag.RELU), 0)
    fb |= np.where(~compute & s.pool, int(Flag.POOL), 0)

    # Weights: step i loads the block of step i+1; the prologue loads step 0's.
    n = jobs.n[job]
    w_addr = addrs.weights + ((n * G + g) * T + tap) * block_bytes(cfg)
    needs_w = np.append(compute, False)  # the prologue slot needs nothing itself
    steps["w_addr"] = np.roll(np.append(np.where(compute, w_addr, 0), 0), -1)
    flags |= np.roll(np.where(needs_w, int(Flag.LOAD_W), 0), -1)

    # Input windows: window k is loaded by the step that starts window k-1 (or the prologue).
    starts = np.flatnonzero(compute & (tap == 0) & jobs.act_load[job])
    loader = np.concatenate(([steps.size - 1], starts[:-1]))
    sj, sg = job[starts], g[starts]
    full_rows = jobs.bw[sj] == s.W
    inp = addrs.input
    steps["act_addr"][loader] = (inp.offset + sg * inp.plane_bytes
                                 + (jobs.iy0[sj] * s.W + jobs.ix0[sj]) * rows)
    steps["act_rows"][loader] = np.where(full_rows, 1, jobs.bh[sj])
    steps["act_row_beats"][loader] = (np.where(full_rows, jobs.bh[sj] * jobs.bw[sj], jobs.bw[sj])
                                      * rows // B)
    steps["act_row_stride"][loader] = s.W * rows
    steps["act_abuf_base"][loader] = base[starts]
    flags[loader] |= int(Flag.LOAD_ACT)

    param = compute & (k == 0) & jobs.param_load[job]
    steps["param_addr"][:-1] = np.where(param, addrs.params + n * cfg.cols * PARAM_BYTES, 0)
    fb |= np.where(param, int(Flag.LOAD_PARAM), 0)
    steps["flags"] = flags

    out, p = addrs.output, (2 if s.pool else 1)
    body["planes"] = np.where(compute, 0, jobs.planes[job])
    body["out_addr"] = np.where(compute, 0, out.offset + n * cfg.planes * out.plane_bytes
                                + ((jobs.oy0[job] // p) * out.W + jobs.ox0[job] // p) * rows)
    body["out_row_stride"] = np.where(compute, 0, out.W * rows)
    body["out_plane_stride"] = np.where(compute, 0, out.plane_bytes)
    return body.copy(), steps[-1:].copy()


_LOADS = ("w_addr", "act_addr", "act_rows", "act_row_beats", "act_row_stride", "act_abuf_base",
          "param_addr")
_LOAD_FLAGS = int(Flag.LOAD_W | Flag.LOAD_ACT | Flag.LOAD_PARAM)


def program_steps(layers: list[tuple[np.ndarray, np.ndarray]], config_id: int) -> np.ndarray:
    """HEADER, then each layer's steps; the layer's prologue loads ride on the step before it
    (the HEADER, or a NOP after the previous layer's last STORE, whose output it may read)."""
    parts = []
    for i, (body, prologue) in enumerate(layers):
        lead = prologue.copy()
        lead["op"] = Op.HEADER if i == 0 else Op.NOP
        if i == 0:
            lead["config_id"] = config_id
        lead["flags"] &= _LOAD_FLAGS
        parts += [lead, body]
    seq = np.concatenate(parts)
    seq["flags"][-1] |= Flag.LAST
    return seq
