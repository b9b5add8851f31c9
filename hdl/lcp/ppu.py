"""The post-processing unit: bias, requantization, ReLU and 2x2 max pooling, lane by lane.

Stages (one register each): s = wrap(acc + bias); p = s * mult; y = clamp(round(p >> shift)) with
ReLU as the lower clamp; then the running maximum over a pooling window. The integer semantics are
those of compiler/requant.py and compiler/golden.py.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PostProcessor", "PARAM_LAYOUT"]

#: One channel's parameters as they sit in DRAM (8 bytes, little-endian).
PARAM_LAYOUT = data.StructLayout({"bias": signed(32), "mult": unsigned(16), "shift": unsigned(8),
                                  "pad": unsigned(8)})


class PostProcessor(wiring.Component):
    """``lanes`` parallel requantizers with a pooling maximum; latency ``LATENCY`` cycles.

    Every stage (``out_valid`` included) advances only when ``en`` is high, so a stalled writer
    can freeze the pipe without losing a result.
    ``first``/``last`` mark the first and last accumulator of a pooling window (both high when
    not pooling); ``out_valid`` pulses with the window's result.
    """

    LATENCY = 4

    def __init__(self, lanes: int, acc_bits: int):
        if not isinstance(lanes, int) or lanes < 1:
            raise TypeError(f"lanes must be a positive integer, not {lanes!r}")
        if not isinstance(acc_bits, int) or not 2 <= acc_bits <= 40:
            raise TypeError(f"acc_bits must be an integer from 2 to 40, not {acc_bits!r}")
        self._lanes, self._acc_bits = lanes, acc_bits
        super().__init__({
            "en": In(1),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "relu": In(1),
            "acc": In(data.ArrayLayout(signed(acc_bits), lanes)),
            "params": In(data.ArrayLayout(PARAM_LAYOUT, lanes)),
            "out": Out(data.ArrayLayout(signed(8), lanes)),
            "out_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n, a = self._lanes, self._acc_bits
        # Control tags travel with the data.
        v = [Signal(name=f"v{i}") for i in range(1, 4)]
        first = [Signal(name=f"first{i}") for i in range(1, 4)]
        last = [Signal(name=f"last{i}") for i in range(1, 4)]
        relu = [Signal(name=f"relu{i}") for i in range(1, 3)]
        with m.If(self.en):
            m.d.sync += [v[0].eq(self.valid), first[0].eq(self.first), last[0].eq(self.last),
                         relu[0].eq(self.relu)]
            for i in (1, 2):
                m.d.sync += [v[i].eq(v[i - 1]), first[i].eq(first[i - 1]), last[i].eq(last[i - 1])]
            m.d.sync += relu[1].eq(relu[0])
            m.d.sync += self.out_valid.eq(v[2] & last[2])

        for lane in range(n):
            p_in = self.params[lane]
            shift1, shift2 = Signal(6, name=f"shift1_{lane}"), Signal(6, name=f"shift2_{lane}")
            mult1 = Signal(16, name=f"mult1_{lane}")
            s = Signal(signed(a), name=f"s_{lane}")
            prod = Signal(signed(a + 17), name=f"p_{lane}")
            y = Signal(signed(9), name=f"y_{lane}")
            mx = Signal(signed(8), name=f"max_{lane}")
            rounded = Signal(signed(a + 18), name=f"r_{lane}")
            clamped = Signal(signed(9), name=f"c_{lane}")
            half = (Const(1, 48) << shift2) >> 1
            lo = Mux(relu[1], 0, -128)
            m.d.comb += rounded.eq((prod + half) >> shift2)
            m.d.comb += clamped.eq(Mux(rounded > 127, 127, Mux(rounded < lo, lo, rounded)))
            with m.If(self.en):
                m.d.sync += [
                    s.eq((self.acc[lane] + p_in.bias)[:a].as_signed()),
                    mult1.eq(p_in.mult), shift1.eq(p_in.shift),
                    prod.eq(s * mult1), shift2.eq(shift1),
                    y.eq(clamped),
                    mx.eq(Mux(first[2] | (y > mx), y, mx)),
                ]
            m.d.comb += self.out[lane].eq(mx)
        return m
