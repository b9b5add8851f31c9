"""Bit-serial MAC over the activation, radix-4 Booth encoded (smartdeal.md V-B, [49]).

An int8 activation x has four radix-4 Booth digits d_k in {-2..2} (x = sum d_k 4**k). The MAC
adds d_k * w * 4**k for one non-zero digit per cycle, lowest first, so a step costs as many cycles
as x has non-zero digits (zero digits, and zero activations, cost nothing; the line waits for
its slowest MAC, and a step is at least one cycle).
"""

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BoothMac"]


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
        bits = Cat(0, x.as_unsigned())                 # b_{-1} = 0, then x's bits
        # digit k is non-zero unless its bits b_{2k+1} b_{2k} b_{2k-1} are 000 or 111
        nonzero = Cat(*(bits[2 * k:2 * k + 3].any() & ~bits[2 * k:2 * k + 3].all()
                        for k in range(4)))
        mask = Mux(self.start, nonzero, mask_reg)
        lowest = mask & (-mask)[:4]                 # one-hot lowest remaining digit
        rest = mask & ~lowest
        # The lowest digit's index k and bit triplet: d = -2 b_{2k+1} + b_{2k} + b_{2k-1}, so
        # (non-zero) its sign is b_{2k+1} and |d| = 2 when b_{2k} = b_{2k-1}.
        k = Signal(2)
        with m.Switch(lowest):
            for i in range(4):
                with m.Case(1 << i):
                    m.d.comb += k.eq(i)
        triplet = bits.word_select(k, 2)[:2]        # b_{2k-1}, b_{2k}
        neg = Signal()
        m.d.comb += neg.eq(bits.bit_select(2 * k + 2, 1) & (lowest != 0))
        shift = Cat(triplet[0] == triplet[1], k)    # 2k + (|d| == 2)
        mag = Signal(signed(self._a))
        m.d.comb += mag.eq(self.w << shift)
        # acc + (-1)**neg * mag in one carry chain: acc + (mag ^ neg) + neg, the + neg as the
        # carry into a guard bit below the sum
        addend = Mux(lowest != 0, mag, 0) ^ neg.replicate(self._a)
        total = (Cat(1, self.acc) + Cat(neg, addend))[1:self._a + 1]
        m.d.comb += [
            self.more.eq(self.run & (rest != 0)),
            self.acc_next.eq(Mux(self.run, total.as_signed(), self.acc)),
        ]
        with m.If(self.run):
            m.d.sync += [x_reg.eq(x), mask_reg.eq(rest)]
        with m.If(self.clear):
            m.d.sync += self.acc.eq(0)
        with m.Elif(self.run):
            m.d.sync += self.acc.eq(self.acc_next)
        return m
