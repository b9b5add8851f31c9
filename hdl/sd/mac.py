"""Bit-serial MAC over the activation, radix-4 Booth encoded (smartdeal.md V-B, [49]).

An int8 activation x has four radix-4 Booth digits d_k in {-2..2} (x = sum d_k 4**k). The MAC
adds d_k * w * 4**k for one non-zero digit per cycle, lowest first, so a step costs as many cycles
as x has non-zero digits (zero digits, and zero activations, cost nothing; the line waits for
its slowest MAC, and a step is at least one cycle).
"""

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BoothMac", "booth_digits"]


def booth_digits(x):
    """The four radix-4 Booth digits of an 8-bit two's-complement value (Amaranth or int bits)."""
    bits = [0] + [x[i] for i in range(8)]  # b_{-1} = 0
    return [bits[2 * k] + bits[2 * k + 1] - 2 * bits[2 * k + 2] for k in range(4)]


class BoothMac(wiring.Component):
    """While ``run``, one digit per cycle; ``start`` marks a step's first cycle (x is taken
    then); ``more`` says digits remain after this cycle; ``acc_next`` is the accumulator after
    this cycle, and ``clear`` zeroes it instead (a tile boundary: ``acc_next`` goes to drain)."""

    def __init__(self, w_bits: int, acc_bits: int):
        if not (isinstance(w_bits, int) and 2 <= w_bits <= 32):
            raise TypeError(f"w_bits must be an integer from 2 to 32, not {w_bits!r}")
        if not (isinstance(acc_bits, int) and w_bits + 8 <= acc_bits <= 64):
            raise TypeError(f"acc_bits must be an integer from w_bits + 8 to 64, not {acc_bits!r}")
        self._w, self._a = w_bits, acc_bits
        super().__init__({
            "x": In(signed(8)), "w": In(signed(w_bits)), "start": In(1), "run": In(1),
            "clear": In(1), "more": Out(1), "acc": Out(signed(acc_bits)),
            "acc_next": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        x_reg = Signal(signed(8))
        mask_reg = Signal(4)
        x = Mux(self.start, self.x, x_reg)
        digits = booth_digits(x.as_unsigned())
        nonzero = Cat(*(Signal(name=f"nz{k}") for k in range(4)))
        for k in range(4):
            m.d.comb += nonzero[k].eq(digits[k] != 0)
        mask = Mux(self.start, nonzero, mask_reg)
        lowest = mask & (-mask)[:4]                 # one-hot lowest remaining digit
        rest = mask & ~lowest
        term = Signal(signed(self._w + 8))
        with m.Switch(lowest):
            for k in range(4):
                with m.Case(1 << k):
                    d = digits[k]
                    mag = Mux((d == 2) | (d == -2), self.w << (2 * k + 1), self.w << (2 * k))
                    m.d.comb += term.eq(Mux(d < 0, -mag, mag))
        m.d.comb += [
            self.more.eq(self.run & (rest != 0)),
            self.acc_next.eq(Mux(self.run, (self.acc + term)[:self._a].as_signed(), self.acc)),
        ]
        with m.If(self.run):
            m.d.sync += [x_reg.eq(x), mask_reg.eq(rest)]
        with m.If(self.clear):
            m.d.sync += self.acc.eq(0)
        with m.Elif(self.run):
            m.d.sync += self.acc.eq(self.acc_next)
        return m
