"""The SmartDeal paper's baseline accelerators (smartdeal.md VI-D, Tables VIII and IX) as
analytical cycle and event models over layer shapes (docs/baselines.md).

The paper compares its accelerator with DianNao (dense), Cambricon-X (unstructured weight
sparsity), SCNN (weight and activation sparsity) and Bit-pragmatic (essential activation bits),
each given the same computation and storage: 1K 8-bit multipliers (or, for Bit-pragmatic, 8K
bit-serial ones, like SmartDeal) and the same total on-chip SRAM. Here every baseline takes its
resources from a ``SmartDealConfig`` (``Resources.of``), so the comparison follows the SmartDeal
preset it is run against, and returns the project's ``SimReport`` priced with the same energy
table and event names (sim/energy.py).

These are not hardware generators: no RTL exists for them, so their numbers are estimates, with
every assumption written next to the model that makes it. Shared by all four:

- one layer at a time, batch 1, 8-bit activations and weights; every layer reads its input from
  DRAM and writes its output to DRAM (as the SmartDeal simulator does);
- DRAM is the configuration's port: ``dram_width`` bytes a cycle, ``dram_latency`` once per layer;
  compute starts when the first tile is on chip (the input rows of the first output row and the
  weights of the first block of output channels); every later transfer is double-buffered behind
  compute, so a layer takes ``latency + max(first tile + compute, all transfers)`` cycles;
- DRAM traffic: input and weights are each read once when either fits one bank (half) of its
  buffer; otherwise the cheaper of re-reading the weights per input band or the input per weight
  block (outputs are always complete on chip, so they are written once);
- sparsity is given as expected densities (``LayerStats``); cycle counts are expectations under
  independent zeros (binomial counts), rounded up to whole cycles per layer.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from tessera.compiler.layers import LayerShape
from tessera.config import SmartDealConfig
from tessera.errors import SpecError

from .energy import EnergyTable
from .report import LayerReport, SimReport

__all__ = ["LayerStats", "Resources", "BASELINES", "simulate_diannao", "simulate_cambricon_x",
           "simulate_scnn", "simulate_pragmatic", "DEFAULT_ACT_SPARSITY", "DEFAULT_BIT_DENSITY",
           "binom_cdf", "e_ceil", "e_max_ceil", "diannao_geometry", "cx_index_bits", "scnn_grid",
           "scnn_buffers", "pragmatic_windows", "pragmatic_brick_cycles"]

#: Zero fraction of a post-ReLU activation tensor when nothing better is known: Cnvlutin and SCNN
#: measure 40-60 % zeros after ReLU in ImageNet CNNs.
DEFAULT_ACT_SPARSITY = 0.5
#: One-bits of 8-bit activations: the SmartDeal paper (Fig. 3) measures 79.8 % zero bits.
DEFAULT_BIT_DENSITY = 0.2
#: Table IX: an output global buffer of 2 KB x 2 banks.
OUTPUT_BUFFER_BYTES = 4096
#: Cambricon-X PE width (multipliers and adder-tree inputs per PE) and step-index bits.
CX_PE_WIDTH = 16
CX_STEP_INDEX_BITS = 4
#: SCNN: a PE multiplies F weights by I activations; zero-run index bits per stored value;
#: accumulator entries per PE usable at once (half of a double-buffered 6 KB of 24-bit sums);
#: accumulator width in bytes; weight FIFO per PE.
SCNN_F, SCNN_I = 4, 4
SCNN_INDEX_BITS = 4
SCNN_ACC_ENTRIES = 1024
SCNN_ACC_BYTES = 3
SCNN_FIFO_BYTES = 512
#: Bit-pragmatic: activation lanes per brick and filters per tile (a 16x16 PIP array per window).
PRA_LANES, PRA_FILTERS = 16, 16


@dataclass(frozen=True)
class LayerStats:
    """What the sparse baselines exploit in one layer, as expected fractions.

    ``weight_sparsity``: zero weights (Cambricon-X, SCNN); ``act_sparsity``: zero input
    activations (SCNN); ``out_sparsity``: zeros in the layer's output, as SCNN stores it;
    ``bit_density``: one-bits of the 8-bit input activations (Bit-pragmatic).
    """
    weight_sparsity: float = 0.0
    act_sparsity: float = 0.0
    out_sparsity: float = 0.0
    bit_density: float = DEFAULT_BIT_DENSITY

    def __post_init__(self):
        for name in ("weight_sparsity", "act_sparsity", "out_sparsity"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v < 1.0):
                raise SpecError(f"layer statistic {name} = {v!r} is invalid: allowed is a "
                                "fraction from 0 to below 1")
        v = self.bit_density
        if not (isinstance(v, (int, float)) and 0.0 < v <= 1.0):
            raise SpecError(f"layer statistic bit_density = {v!r} is invalid: allowed is a "
                            "fraction above 0 and at most 1")


@dataclass(frozen=True)
class Resources:
    """What every baseline is given: the SmartDeal configuration's multipliers, total SRAM and
    memory system (Table IX: "the same computation resources and on-chip SRAM storage")."""
    multipliers: int      # 8-bit multipliers: 8 bit-serial MACs count as one
    serial: int           # bit-serial multipliers (SmartDeal's MACs)
    sram_bytes: int       # SmartDeal's input, weight and basis buffers, both banks
    input_bytes: int      # SmartDeal's input global buffer, both banks
    dram_width: int
    dram_latency: int
    clock_mhz: float
    energy_table: str

    @classmethod
    def of(cls, cfg: SmartDealConfig) -> "Resources":
        from .smartdeal import SdTiming

        t = SdTiming(cfg)
        gb = cfg.gb_depth * t.gbytes                       # two banks of gb_depth/2 words
        sram = gb + 2 * cfg.wb_depth * t.wbytes + 2 * cfg.bb_depth * t.bbytes
        serial = cfg.dim_m * cfg.dim_c * cfg.dim_f
        return cls(serial // 8, serial, sram, gb, cfg.dram_width, cfg.dram_latency,
                   cfg.clock_mhz, cfg.energy_table)

    @property
    def weight_bytes(self) -> int:
        """The dense baselines' weight buffer: what is left after input and output buffers."""
        return self.sram_bytes - self.input_bytes - OUTPUT_BUFFER_BYTES

    def dense_banks(self) -> dict[str, int]:
        """Input, weight and output buffers, each two ping-pong banks."""
        return {"input": self.input_bytes // 2, "weight": self.weight_bytes // 2,
                "output": OUTPUT_BUFFER_BYTES // 2}


# ---------------------------------------------------------------------------------------------
# Expectations under independent zeros
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def binom_cdf(n: int, p: float) -> np.ndarray:
    """P(X <= k), k = 0..n, for X ~ Binomial(n, p)."""
    if p >= 1.0:
        cdf = np.zeros(n + 1)
        cdf[n] = 1.0
        return cdf
    if p <= 0.0:
        return np.ones(n + 1)
    k = np.arange(n + 1)
    lg = np.vectorize(math.lgamma)
    logpmf = (math.lgamma(n + 1) - lg(k + 1) - lg(n - k + 1) + k * math.log(p)
              + (n - k) * math.log1p(-p))
    cdf = np.cumsum(np.exp(logpmf))
    return np.minimum(cdf / cdf[-1], 1.0)


def e_ceil(n: int, p: float, d: int) -> float:
    """E[ceil(X / d)] for X ~ Binomial(n, p): cycles to stream X values d at a time."""
    cdf = binom_cdf(n, p)
    # ceil(X/d) > k  <=>  X > k*d
    return float(np.sum(1.0 - cdf[np.arange(-(-n // d)) * d]))


def e_max_ceil(n: int, p: float, d: int, m: int, floor: int = 0) -> float:
    """E[max(floor, max of m independent ceil(X / d))], X ~ Binomial(n, p): the slowest of m
    units that wait for each other."""
    cdf = binom_cdf(n, p)
    k = np.arange(floor, -(-n // d))
    return float(floor + np.sum(1.0 - cdf[k * d] ** m))


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layer:
    """A layer's sizes as every baseline sees them."""
    shape: LayerShape

    @property
    def cg(self) -> int:
        """Input channels one output channel reads."""
        return self.shape.C // self.shape.groups

    @property
    def taps(self) -> int:
        return self.shape.R * self.shape.S

    @property
    def pixels(self) -> int:
        """Output pixels computed, as LayerShape.macs counts them."""
        s = self.shape
        return s.macs // (s.K * self.cg * self.taps)

    @property
    def in_bytes(self) -> int:
        return self.shape.C * self.shape.H * self.shape.W

    @property
    def w_bytes(self) -> int:
        return self.shape.K * self.cg * self.taps

    @property
    def out_bytes(self) -> int:
        return self.shape.K * self.shape.out_h * self.shape.out_w


def _dram_reads(in_b: float, w_b: float, in_bank: float, w_bank: float) -> tuple[float, float]:
    """(input bytes, weight bytes) read from DRAM: each once if either operand fits one bank,
    else the cheaper of re-reading the weights per input band or the input per weight block."""
    if in_b <= in_bank or w_b <= w_bank:
        return in_b, w_b
    n_in, n_w = math.ceil(in_b / in_bank), math.ceil(w_b / w_bank)
    return min((in_b, n_in * w_b), (n_w * in_b, w_b), key=sum)


def _first_rows(shape: LayerShape) -> int:
    """Input bytes of the first output row's receptive field."""
    return shape.C * min(shape.R, shape.H) * shape.W


def _layer_report(res: Resources, shape: LayerShape, compute: float, fill: float,
                  dram_read: float, dram_write: float, events: dict[str, float],
                  info: dict) -> LayerReport:
    """Cycles = latency + max(first tile + compute, all transfers); the phases (load, compute,
    dram_stall) sum to the cycles."""
    comp = math.ceil(compute)
    transfer = math.ceil((dram_read + dram_write) / res.dram_width)
    first = min(transfer, math.ceil(fill / res.dram_width))
    stall = max(0, transfer - first - comp)
    events = {"dram.read_bytes": float(dram_read), "dram.write_bytes": float(dram_write),
              **{k: float(v) for k, v in events.items()}}
    return LayerReport(shape.name, res.dram_latency + first + comp + stall, shape.macs,
                       {"load": res.dram_latency + first, "compute": comp, "dram_stall": stall},
                       events, info={"timing": "estimate", **info})


def _build(name: str, cfg: SmartDealConfig, res: Resources, layers: list[LayerReport],
           banks: dict[str, int]) -> SimReport:
    report = SimReport.build(cfg, layers, banks, res.multipliers,
                             EnergyTable.load(res.energy_table))
    config = {"model": name, **dataclasses.asdict(res), "derived_from": cfg.to_dict()}
    return dataclasses.replace(report, arch=name, config=config)


def _stats_list(shapes: Sequence[LayerShape],
                stats: LayerStats | Sequence[LayerStats] | None) -> list[LayerStats]:
    if stats is None:
        return [LayerStats()] * len(shapes)
    if isinstance(stats, LayerStats):
        return [stats] * len(shapes)
    stats = list(stats)
    if len(stats) != len(shapes):
        raise SpecError(f"{len(stats)} layer statistics for {len(shapes)} layers: allowed is "
                        "one LayerStats, or one per layer")
    return stats


# ---------------------------------------------------------------------------------------------
# DianNao
# ---------------------------------------------------------------------------------------------

def diannao_geometry(res: Resources) -> tuple[int, int]:
    """(Tn, Ti): Tn output neurons times Ti inputs a cycle, DianNao's NFU scaled to the
    multipliers (16 x 16 in the original; 32 x 32 for 1K)."""
    ti = 1 << (res.multipliers.bit_length() - 1) // 2
    return res.multipliers // ti, ti


def _diannao_layer(res: Resources, shape: LayerShape, st: LayerStats) -> LayerReport:
    g = _Layer(shape)
    tn, ti = diannao_geometry(res)
    P, K = g.pixels, shape.K
    if shape.depthwise:
        # A depthwise output reads only its own channel: the NFU runs diagonally, Tn channels a
        # cycle with one input lane each.
        compute = P * math.ceil(K / tn) * g.taps
        in_reads = P * shape.C * g.taps
    else:
        compute = P * math.ceil(K / tn) * g.taps * math.ceil(g.cg / ti)
        in_reads = P * math.ceil(K / tn) * g.taps * g.cg
    banks = res.dense_banks()
    dr_in, dr_w = _dram_reads(g.in_bytes, g.w_bytes, banks["input"], banks["weight"])
    events = {
        "sram.input.write_bytes": dr_in, "sram.input.read_bytes": in_reads,
        "sram.weight.write_bytes": dr_w, "sram.weight.read_bytes": shape.macs,
        "sram.output.write_bytes": g.out_bytes, "sram.output.read_bytes": g.out_bytes,
        "op.mac8": shape.macs,
    }
    fill = _first_rows(shape) + min(g.w_bytes, tn * g.cg * g.taps)
    return _layer_report(res, shape, compute, fill, dr_in + dr_w, g.out_bytes, events,
                         {"dram_input_bytes": dr_in, "dram_weight_bytes": dr_w})


def simulate_diannao(cfg: SmartDealConfig, shapes: Sequence[LayerShape],
                     stats: LayerStats | Sequence[LayerStats] | None = None) -> SimReport:
    """DianNao (Chen et al., ASPLOS 2014), dense. The NFU multiplies Ti inputs by the weights of
    Tn output neurons each cycle and reduces them in Tn adder trees; partial sums stay in the NFU
    until the whole receptive field is done. A conv loops over kernel taps and Ti-channel chunks:
    ``pixels x ceil(K/Tn) x R*S x ceil(C/Ti)`` cycles. Buffers NBin, SB, NBout are the input,
    weight and output buffers; every weight byte is read from SB once per use (no reuse in the
    NFU), every input byte once per Tn group. Zeros are multiplied like any value."""
    res = Resources.of(cfg)
    layers = [_diannao_layer(res, s, st) for s, st in zip(shapes, _stats_list(shapes, stats))]
    return _build("diannao", cfg, res, layers, res.dense_banks())


# ---------------------------------------------------------------------------------------------
# Cambricon-X
# ---------------------------------------------------------------------------------------------

def cx_index_bits(weight_sparsity: float) -> float:
    """Index bits per stored non-zero weight: the smaller of direct indexing (a bit per weight)
    and step indexing (CX_STEP_INDEX_BITS per non-zero); a dense layer is stored without one."""
    if weight_sparsity == 0.0:
        return 0.0
    return min(1.0 / (1.0 - weight_sparsity), float(CX_STEP_INDEX_BITS))


def _cx_layer(res: Resources, shape: LayerShape, st: LayerStats) -> LayerReport:
    g = _Layer(shape)
    pes = res.multipliers // CX_PE_WIDTH
    d = 1.0 - st.weight_sparsity
    reduction = g.taps if shape.depthwise else g.cg * g.taps
    # One PE per output neuron; the PEs of a batch wait for the one with most non-zero weights.
    full, rest = divmod(shape.K, pes)
    per_pixel = full * e_max_ceil(reduction, d, CX_PE_WIDTH, pes, floor=1)
    if rest:
        per_pixel += e_max_ceil(reduction, d, CX_PE_WIDTH, rest, floor=1)
    compute = g.pixels * per_pixel
    nnz_w = g.w_bytes * d
    w_stored = nnz_w * (1.0 + cx_index_bits(st.weight_sparsity) / 8)
    banks = res.dense_banks()
    dr_in, dr_w = _dram_reads(g.in_bytes, w_stored, banks["input"], banks["weight"])
    macs = shape.macs * d
    sparse = st.weight_sparsity > 0.0
    events = {
        "sram.input.write_bytes": dr_in,
        # the buffer controller reads every neuron of a receptive field once per PE batch and
        # the indexing module picks each PE's non-zero positions out of it
        "sram.input.read_bytes": g.pixels * math.ceil(shape.K / pes) * reduction,
        "sram.weight.write_bytes": dr_w,
        "sram.weight.read_bytes": macs * w_stored / nnz_w,
        "sram.output.write_bytes": g.out_bytes, "sram.output.read_bytes": g.out_bytes,
        "op.mac8": macs,
        "op.add8": macs if sparse else 0.0,    # step-index decoding: a running sum per weight
    }
    fill = _first_rows(shape) + w_stored * min(shape.K, pes) / shape.K
    return _layer_report(res, shape, compute, fill, dr_in + dr_w, g.out_bytes, events,
                         {"dram_input_bytes": dr_in, "dram_weight_bytes": dr_w})


def simulate_cambricon_x(cfg: SmartDealConfig, shapes: Sequence[LayerShape],
                         stats: LayerStats | Sequence[LayerStats] | None = None) -> SimReport:
    """Cambricon-X (Zhang et al., MICRO 2016), unstructured weight sparsity. Multipliers / 16
    PEs, each computing one output neuron from 16 non-zero weights a cycle (its indexing module
    selects the matching input neurons from the broadcast receptive field). Only non-zero weights
    are stored, fetched and multiplied, each with an index (``cx_index_bits``). A batch of PEs
    (one per output channel) waits for its slowest PE: ``pixels x sum over batches of
    E[max over PEs of ceil(nnz / 16)]`` cycles, at least one per batch; with no zero weights this
    is ``pixels x ceil(K/PEs) x ceil(C*R*S/16)``. Depthwise layers reduce over R*S only.
    Activation zeros are not skipped."""
    res = Resources.of(cfg)
    layers = [_cx_layer(res, s, st) for s, st in zip(shapes, _stats_list(shapes, stats))]
    return _build("cambricon-x", cfg, res, layers, res.dense_banks())


# ---------------------------------------------------------------------------------------------
# SCNN
# ---------------------------------------------------------------------------------------------

def scnn_grid(res: Resources) -> tuple[int, int]:
    """(rows, columns) of PEs: multipliers / (F*I) PEs in a near-square grid (8 x 8 for 1K)."""
    pes = res.multipliers // (SCNN_F * SCNN_I)
    rows = 1 << (pes.bit_length() - 1) // 2
    return rows, pes // rows


def scnn_buffers(res: Resources) -> dict[str, int]:
    """SCNN's split of the same SRAM: per-PE accumulators (64 x 6 KB for 1K multipliers) and
    weight FIFOs come first; IARAM and OARAM share the rest."""
    pes = res.multipliers // (SCNN_F * SCNN_I)
    acc = pes * 2 * SCNN_ACC_ENTRIES * SCNN_ACC_BYTES
    fifo = pes * SCNN_FIFO_BYTES
    return {"acc": acc, "fifo": fifo, "act": res.sram_bytes - acc - fifo}


def _scnn_layer(res: Resources, shape: LayerShape, st: LayerStats) -> LayerReport:
    g = _Layer(shape)
    gy, gx = scnn_grid(res)
    th, tw = math.ceil(shape.H / gy), math.ceil(shape.W / gx)
    active = math.ceil(shape.H / th) * math.ceil(shape.W / tw)
    da, dw = 1.0 - st.act_sparsity, 1.0 - st.weight_sparsity
    # Activation vectors of one channel in the largest tile (PEs wait for each other at the end
    # of every output-channel group).
    a_vec = e_ceil(th * tw, da, SCNN_I)
    if shape.depthwise:
        kc = 1
        compute = shape.C * a_vec * e_ceil(g.taps, dw, SCNN_F)
        w_per_act = g.taps * dw
    else:
        halo = (th + shape.R - 1) * (tw + shape.S - 1)
        kc = max(1, min(shape.K, SCNN_ACC_ENTRIES // halo))
        full, rest = divmod(shape.K, kc)
        w_vec = full * e_ceil(kc * g.taps, dw, SCNN_F)
        if rest:
            w_vec += e_ceil(rest * g.taps, dw, SCNN_F)
        compute = shape.C * a_vec * w_vec
        w_per_act = shape.K * g.taps * dw
    # Every non-zero activation meets every non-zero weight of its channel (Cartesian product):
    # products whose output falls between strides or outside the map are computed, then dropped.
    products = g.in_bytes * da * w_per_act
    stored = 1.0 + SCNN_INDEX_BITS / 8
    in_b = g.in_bytes * da * stored
    w_b = g.w_bytes * dw * stored
    out_b = g.out_bytes * (1.0 - st.out_sparsity) * stored
    bufs = scnn_buffers(res)
    iaram = bufs["act"] // 2
    n_in = max(1, math.ceil(in_b / iaram))       # input stationary: weights stream per band
    dr_in, dr_w = in_b, n_in * w_b
    events = {
        # IARAM is filled from DRAM and read one vector of I activations (with indexes) a cycle
        # by every active PE; OARAM takes the outputs and drains them to DRAM
        "sram.act.write_bytes": dr_in + out_b,
        "sram.act.read_bytes": compute * active * SCNN_I * stored + out_b,
        "sram.fifo.write_bytes": dr_w * active, "sram.fifo.read_bytes": dr_w * active,
        "op.mul8": products,
        "op.add24": products,                     # accumulate into an accumulator bank
        "rf.acc.read_bytes": products * SCNN_ACC_BYTES,
        "rf.acc.write_bytes": products * SCNN_ACC_BYTES,
    }
    # channel by channel: the first input channel and its weights of the first group
    fill = (in_b + w_b * kc / shape.K) / shape.C
    return _layer_report(res, shape, compute, fill, dr_in + dr_w, out_b, events,
                         {"dram_input_bytes": dr_in, "dram_weight_bytes": dr_w, "kc": kc,
                          "tile": [th, tw], "active_pes": active, "products": products})


def simulate_scnn(cfg: SmartDealConfig, shapes: Sequence[LayerShape],
                  stats: LayerStats | Sequence[LayerStats] | None = None) -> SimReport:
    """SCNN (Parashar et al., ISCA 2017), weight and activation sparsity, PT-IS-CP-sparse: the
    input plane is tiled over a grid of PEs (8 x 8 for 1K multipliers), each multiplying vectors
    of F=4 non-zero weights by I=4 non-zero activations of one input channel (Cartesian product)
    and scattering the 16 products into its accumulator banks; output channels go in groups of
    Kc, as many as the accumulators hold for the tile and its halo. Cycles: ``C x E[ceil(a/4)]
    x sum over groups E[ceil(w/4)]``, with a the non-zero activations of the largest tile and w
    the non-zero weights of a group. Weights and activations are stored compressed (value plus a
    4-bit zero run), also in DRAM; the compressed input stays in IARAM and the weights stream
    through once per input band. SCNN is designed for unit-stride convolutions: strided layers
    and borders cost their discarded products. Accumulator banks (about 200 bytes each) are
    priced as register files; IARAM and OARAM per PE, as SCNN distributes them."""
    res = Resources.of(cfg)
    layers = [_scnn_layer(res, s, st) for s, st in zip(shapes, _stats_list(shapes, stats))]
    pes = res.multipliers // (SCNN_F * SCNN_I)
    # a PE reads only its own IARAM or OARAM, a 1/pes share of one half of the activation RAM
    banks = {"act": scnn_buffers(res)["act"] // 2 // pes, "fifo": SCNN_FIFO_BYTES}
    return _build("scnn", cfg, res, layers, banks)


# ---------------------------------------------------------------------------------------------
# Bit-pragmatic
# ---------------------------------------------------------------------------------------------

def pragmatic_windows(res: Resources) -> int:
    """Windows processed at once: bit-serial multipliers / (16 lanes x 16 filters)."""
    return res.serial // (PRA_LANES * PRA_FILTERS)


def pragmatic_brick_cycles(bit_density: float) -> float:
    """Expected cycles of one brick: the most one-bits among its 16 activations, at least one."""
    return e_max_ceil(8, bit_density, 1, PRA_LANES, floor=1)


def _pragmatic_layer(res: Resources, shape: LayerShape, st: LayerStats) -> LayerReport:
    g = _Layer(shape)
    windows = pragmatic_windows(res)
    brick = pragmatic_brick_cycles(st.bit_density)
    P = g.pixels
    if shape.depthwise:
        # diagonal: lane i feeds only filter i, 16 channels a brick
        steps = math.ceil(P / windows) * math.ceil(shape.C / PRA_LANES) * g.taps
        in_reads = P * shape.C * g.taps
    else:
        steps = (math.ceil(P / windows) * math.ceil(shape.K / PRA_FILTERS)
                 * math.ceil(g.cg / PRA_LANES) * g.taps)
        in_reads = P * math.ceil(shape.K / PRA_FILTERS) * g.cg * g.taps
    banks = res.dense_banks()
    dr_in, dr_w = _dram_reads(g.in_bytes, g.w_bytes, banks["input"], banks["weight"])
    events = {
        "sram.input.write_bytes": dr_in, "sram.input.read_bytes": in_reads,
        "sram.weight.write_bytes": dr_w,
        "sram.weight.read_bytes": math.ceil(P / windows) * g.w_bytes,  # shared by the windows
        "sram.output.write_bytes": g.out_bytes, "sram.output.read_bytes": g.out_bytes,
        "op.add8": in_reads,                                  # one-bit offset encoders
        "op.add16": shape.macs * 8 * st.bit_density,          # one shifted weight per one-bit
        "op.add32": shape.macs / PRA_LANES,                   # adder-tree result into the sum
    }
    fill = _first_rows(shape) + min(g.w_bytes, PRA_FILTERS * g.cg * g.taps)
    return _layer_report(res, shape, steps * brick, fill, dr_in + dr_w, g.out_bytes, events,
                         {"dram_input_bytes": dr_in, "dram_weight_bytes": dr_w,
                          "brick_cycles": brick})


def simulate_pragmatic(cfg: SmartDealConfig, shapes: Sequence[LayerShape],
                       stats: LayerStats | Sequence[LayerStats] | None = None) -> SimReport:
    """Bit-pragmatic (Albericio et al., MICRO 2017), essential activation bits. The bit-serial
    multipliers form PIPs of 16 lanes for 16 filters per window, serial / 256 windows at once
    (32 for 8K): each cycle every lane adds its weight shifted by the next one-bit offset of its
    activation. A brick of 16 activations takes as many cycles as its activation with the most
    one-bits (at least one); windows synchronize per column only, so a brick costs
    ``E[max of 16 Binomial(8, bit_density)]``. Cycles: ``ceil(pixels/windows) x ceil(K/16) x
    ceil(C/16) x R*S`` bricks; at bit density 1 this is the DianNao time of the same
    multipliers. Weights and activations are dense 8-bit in DRAM and SRAM; depthwise layers run
    diagonally (lane i feeds filter i only)."""
    res = Resources.of(cfg)
    layers = [_pragmatic_layer(res, s, st) for s, st in zip(shapes, _stats_list(shapes, stats))]
    return _build("bit-pragmatic", cfg, res, layers, res.dense_banks())


#: The four baselines by the name reports and the CLI use, in the paper's order (Table VIII).
BASELINES: dict[str, Callable[..., SimReport]] = {
    "diannao": simulate_diannao,
    "cambricon-x": simulate_cambricon_x,
    "scnn": simulate_scnn,
    "bit-pragmatic": simulate_pragmatic,
}
