"""A SmartDeal PE line (smartdeal.md Fig. 4b): two rebuild engines, a FIFO, dim_f Booth MACs.

Rebuild engine: an S x S basis register file and a shift-and-add unit that turns one row of S
Ce codes (sign, exponent) into S weights, w[s] = sum_j sign_j * (B[j][s] << e_j); the input mux
also passes int8 weights straight through for layers that are not decomposed. The two engines
ping-pong: one rebuilds while the next basis loads into the other.

FIFO (1D row stationary): it holds dim_f + S - 1 activations of one input row; at step s every MAC
f multiplies FIFO[f] by the broadcast weight w[s], then the FIFO shifts by one. In pointwise mode
(rows of S input channels) it is reloaded with the next channel's dim_f pixels instead.
"""

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tessera.config import SmartDealConfig

from .mac import BoothMac

__all__ = ["RebuildEngines", "PeLine"]


def _check(cfg):
    if not isinstance(cfg, SmartDealConfig):
        raise TypeError(f"expected a SmartDealConfig, not {type(cfg).__name__}")


class RebuildEngines(wiring.Component):
    """Two basis register files; ``w`` is the row rebuilt from ``codes`` with engine ``sel``
    (or ``raw`` int8 weights when ``raw_mode``)."""

    def __init__(self, cfg: SmartDealConfig):
        _check(cfg)
        self._cfg = cfg
        S, wb = cfg.S, cfg.rebuilt_bits
        super().__init__({
            "b_we": In(1), "b_which": In(1),
            "b_data": In(data.ArrayLayout(signed(8), S * S)),
            "sel": In(1), "raw_mode": In(1),
            "codes": In(data.ArrayLayout(4, S)),
            "raw": In(data.ArrayLayout(signed(8), S)),
            "w": Out(data.ArrayLayout(signed(wb), S)),
        })

    def elaborate(self, platform):
        m = Module()
        S, wb = self._cfg.S, self._cfg.rebuilt_bits
        bases = [Signal(data.ArrayLayout(signed(8), S * S), name=f"basis{i}") for i in range(2)]
        with m.If(self.b_we):
            with m.If(self.b_which):
                m.d.sync += bases[1].eq(self.b_data)
            with m.Else():
                m.d.sync += bases[0].eq(self.b_data)
        for s in range(S):
            terms = []
            for j in range(S):
                code = self.codes[j]
                b = Mux(self.sel, bases[1][j * S + s], bases[0][j * S + s])
                signed_b = Signal(signed(9), name=f"b{s}_{j}")     # negate before the shift:
                m.d.comb += signed_b.eq(Mux(code[3], -b, b))       # 9 bits, not rebuilt_bits
                shifted = Signal(signed(wb), name=f"t{s}_{j}")
                m.d.comb += shifted.eq(signed_b << code[:3])
                terms.append(shifted)
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            m.d.comb += self.w[s].eq(Mux(self.raw_mode, self.raw[s], total))
        return m


class PeLine(wiring.Component):
    """One line of one slice: runs one pair per pass, step by step, its MACs in lockstep.

    At ``advance`` (an edge every line agrees on) the line takes the next pass: its activity, the
    FIFO window for step 0 and the rebuilt weight row latched by ``w_latch``; with ``tile_end``
    the MAC accumulators go out on ``acc_next`` and restart from zero. ``finishing`` is high in
    the cycle that completes the line's pass, and whenever the line is idle.
    """

    def __init__(self, cfg: SmartDealConfig):
        _check(cfg)
        self._cfg = cfg
        S, F = cfg.S, cfg.dim_f
        super().__init__({
            "advance": In(1), "tile_end": In(1),
            "next_active": In(1),
            "next_window": In(data.ArrayLayout(signed(8), F + S - 1)),
            "taps": In(4), "pointwise": In(1),
            "step_window": In(data.ArrayLayout(signed(8), F)),
            "k_next": Out(4),
            # rebuild engines: basis loads, and the next pass's codes (or int8 weights)
            "b_we": In(1), "b_which": In(1),
            "b_data": In(data.ArrayLayout(signed(8), S * S)),
            "sel": In(1), "raw_mode": In(1),
            "codes": In(data.ArrayLayout(4, S)),
            "raw": In(data.ArrayLayout(signed(8), S)),
            "w_latch": In(1),
            "finishing": Out(1),
            "acc_next": Out(data.ArrayLayout(signed(cfg.acc_width), F)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        S, F = cfg.S, cfg.dim_f
        m.submodules.engines = engines = RebuildEngines(cfg)
        for port in ("b_we", "b_which", "b_data", "sel", "raw_mode", "codes", "raw"):
            m.d.comb += getattr(engines, port).eq(getattr(self, port))

        w_next = Signal(data.ArrayLayout(signed(cfg.rebuilt_bits), S))
        w_row = Signal(data.ArrayLayout(signed(cfg.rebuilt_bits), S))
        with m.If(self.w_latch):
            m.d.sync += w_next.eq(engines.w)

        running = Signal()
        first = Signal()           # this cycle is a step's first
        k = Signal(4)
        fifo = Signal(data.ArrayLayout(signed(8), F + S - 1))
        macs = [BoothMac(cfg.rebuilt_bits, cfg.acc_width) for _ in range(F)]
        more = Cat(*(mac.more for mac in macs))
        w_now = Signal(signed(cfg.rebuilt_bits))
        with m.Switch(k):
            for s in range(S):
                with m.Case(s):
                    m.d.comb += w_now.eq(w_row[s])
        for f, mac in enumerate(macs):
            m.submodules[f"mac{f}"] = mac
            m.d.comb += [mac.x.eq(fifo[f]), mac.w.eq(w_now), mac.start.eq(first),
                         mac.run.eq(running), mac.clear.eq(self.advance & self.tile_end),
                         self.acc_next[f].eq(mac.acc_next)]

        step_done = running & (more == 0)
        last_step = k == self.taps - 1
        m.d.comb += [self.finishing.eq(~running | (step_done & last_step)),
                     self.k_next.eq(k + 1)]
        shifted = Cat(fifo.as_value()[8:], Signal(8))
        reload = Cat(self.step_window.as_value(), Signal(8 * (S - 1)))
        with m.If(self.advance):
            m.d.sync += [running.eq(self.next_active), k.eq(0), first.eq(1),
                         fifo.eq(self.next_window), w_row.eq(w_next)]
        with m.Elif(step_done & ~last_step):
            m.d.sync += [k.eq(k + 1), first.eq(1),
                         fifo.as_value().eq(Mux(self.pointwise, reload, shifted))]
        with m.Elif(step_done):
            m.d.sync += [running.eq(0), first.eq(0)]
        with m.Else():
            m.d.sync += first.eq(0)
        return m
