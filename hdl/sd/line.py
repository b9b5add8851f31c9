"""A SmartDeal PE line (smartdeal.md Fig. 4b): two rebuild engines, a FIFO, dim_f Booth MACs.

Rebuild engine: an S x S basis register file and a shift-and-add unit that turns one row of S
Ce codes (sign, exponent) into S weights, w[s] = sum_j sign_j * (B[j][s] << e_j); the input mux
also passes int8 weights straight through for layers that are not decomposed. The two engines
ping-pong: one rebuilds while the next basis loads into the other.

FIFO (1D row stationary): it holds dim_f + S - 1 activations of one input row; at step s every MAC
f multiplies FIFO[f] by the broadcast weight w[s], then the FIFO shifts by one. In pointwise mode
(rows of S input channels) it is reloaded with the next channel's dim_f pixels instead.

MAC clusters (``fc_clusters`` = 2, smartdeal.md V-B "Fourth"): for FC-like layers the MACs split
in two halves, each fed by one engine's own shift-and-add unit with its own codes (a different
output channel): MAC f of the second half takes FIFO[f - dim_f/2] and the second weight row.
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
    (or ``raw`` int8 weights when ``raw_mode``). With two clusters each engine has its own
    shift-and-add unit, and in ``cluster`` mode engine 0 rebuilds ``w`` from ``codes`` while
    engine 1 rebuilds ``w1`` from ``codes1``; with one, a single unit serves both engines."""

    def __init__(self, cfg: SmartDealConfig):
        _check(cfg)
        self._cfg = cfg
        S, wb = cfg.S, cfg.rebuilt_bits
        ports = {
            "b_we": In(1), "b_which": In(1),
            "b_data": In(data.ArrayLayout(signed(8), S * S)),
            "sel": In(1), "raw_mode": In(1),
            "codes": In(data.ArrayLayout(4, S)),
            "raw": In(data.ArrayLayout(signed(8), S)),
            "w": Out(data.ArrayLayout(signed(wb), S)),
        }
        if cfg.fc_clusters == 2:
            ports |= {"cluster": In(1), "codes1": In(data.ArrayLayout(4, S)),
                      "w1": Out(data.ArrayLayout(signed(wb), S))}
        super().__init__(ports)

    def _shift_add(self, m, name, basis, codes):
        """w[s] = sum_j sign_j * (B[j][s] << e_j)."""
        S, wb = self._cfg.S, self._cfg.rebuilt_bits
        row = []
        for s in range(S):
            terms = []
            for j in range(S):
                code = codes[j]
                b = basis(j * S + s)
                signed_b = Signal(signed(9), name=f"{name}b{s}_{j}")  # negate before the shift:
                m.d.comb += signed_b.eq(Mux(code[3], -b, b))         # 9 bits, not rebuilt_bits
                shifted = Signal(signed(wb), name=f"{name}t{s}_{j}")
                m.d.comb += shifted.eq(signed_b << code[:3])
                terms.append(shifted)
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            row.append(total)
        return row

    def elaborate(self, platform):
        m = Module()
        S = self._cfg.S
        bases = [Signal(data.ArrayLayout(signed(8), S * S), name=f"basis{i}") for i in range(2)]
        with m.If(self.b_we):
            with m.If(self.b_which):
                m.d.sync += bases[1].eq(self.b_data)
            with m.Else():
                m.d.sync += bases[0].eq(self.b_data)
        if self._cfg.fc_clusters == 1:
            row = self._shift_add(m, "", lambda i: Mux(self.sel, bases[1][i], bases[0][i]),
                                  self.codes)
        else:
            codes1 = Mux(self.cluster, self.codes1.as_value(), self.codes.as_value())
            row0 = self._shift_add(m, "e0", lambda i: bases[0][i], self.codes)
            row1 = self._shift_add(m, "e1", lambda i: bases[1][i],
                                   data.ArrayLayout(4, S)(codes1))
            use1 = self.sel & ~self.cluster
            row = [Mux(use1, a, b) for a, b in zip(row1, row0)]
            m.d.comb += [self.w1[s].eq(row1[s]) for s in range(S)]
        m.d.comb += [self.w[s].eq(Mux(self.raw_mode, self.raw[s], row[s])) for s in range(S)]
        return m


class PeLine(wiring.Component):
    """One line of one slice: runs one pair per pass, step by step, its MACs in lockstep.

    At ``advance`` (an edge every line agrees on) the line takes the next pass: its activity, the
    FIFO window for step 0 and the rebuilt weight row latched by ``w_latch``; with ``tile_end``
    the MAC accumulators go out on ``acc_next`` and restart from zero. ``finishing`` is high in
    the cycle that completes the line's pass, and whenever the line is idle. In ``cluster`` mode
    (two clusters built) the second half of the MACs runs the row rebuilt from ``codes1``.
    """

    def __init__(self, cfg: SmartDealConfig):
        _check(cfg)
        self._cfg = cfg
        S, F = cfg.S, cfg.dim_f
        clusters = {"cluster": In(1), "codes1": In(data.ArrayLayout(4, S))} \
            if cfg.fc_clusters == 2 else {}
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
            **clusters,
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        S, F = cfg.S, cfg.dim_f
        m.submodules.engines = engines = RebuildEngines(cfg)
        two = cfg.fc_clusters == 2
        ports = ("b_we", "b_which", "b_data", "sel", "raw_mode", "codes", "raw") \
            + (("cluster", "codes1") if two else ())
        for port in ports:
            m.d.comb += getattr(engines, port).eq(getattr(self, port))

        row = data.ArrayLayout(signed(cfg.rebuilt_bits), S)
        w_next, w_row = Signal(row), Signal(row)
        with m.If(self.w_latch):
            m.d.sync += w_next.eq(engines.w)
        if two:
            w_next1, w_row1 = Signal(row), Signal(row)
            with m.If(self.w_latch):
                m.d.sync += w_next1.eq(engines.w1)

        running = Signal()
        first = Signal()           # this cycle is a step's first
        k = Signal(4)
        fifo = Signal(data.ArrayLayout(signed(8), F + S - 1))
        macs = [BoothMac(cfg.rebuilt_bits, cfg.acc_width) for _ in range(F)]
        more = Cat(*(mac.more for mac in macs))
        w_now = Signal(signed(cfg.rebuilt_bits))
        w_now1 = Signal(signed(cfg.rebuilt_bits)) if two else None
        with m.Switch(k):
            for s in range(S):
                with m.Case(s):
                    m.d.comb += w_now.eq(w_row[s])
                    if two:
                        m.d.comb += w_now1.eq(w_row1[s])
        half = F // 2
        for f, mac in enumerate(macs):
            m.submodules[f"mac{f}"] = mac
            if two and f >= half:
                m.d.comb += [mac.x.eq(Mux(self.cluster, fifo[f - half], fifo[f])),
                             mac.w.eq(Mux(self.cluster, w_now1, w_now))]
            else:
                m.d.comb += [mac.x.eq(fifo[f]), mac.w.eq(w_now)]
            m.d.comb += [mac.start.eq(first),
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
            if two:
                m.d.sync += w_row1.eq(w_next1)
        with m.Elif(step_done & ~last_step):
            m.d.sync += [k.eq(k + 1), first.eq(1),
                         fifo.as_value().eq(Mux(self.pointwise, reload, shifted))]
        with m.Elif(step_done):
            m.d.sync += [running.eq(0), first.eq(0)]
        with m.Else():
            m.d.sync += first.eq(0)
        return m
