"""On-chip buffers behind one small interface, so the ASIC build can swap in SRAM macros.

``SimpleDualPortRam`` has one write port and one synchronous read port (data one cycle after the
address). Simulation and FPGA builds implement it with ``lib.memory.Memory``. The ASIC build
(``asic_memories()``, used by asic_flow/) implements it with ASAP7 FakeRAM macros, which are
single-port: the buffer is split into two banks that the two ports never touch in the same cycle,
by the address MSB (ping-pong halves) or LSB (read-modify-write of consecutive addresses), and each
bank is tiled from the macro shape with the smallest placed footprint (docs/asic.md).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

from amaranth import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, Value
from amaranth.hdl import Shape
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

__all__ = ["SimpleDualPortRam", "asic_memories", "FakeRam", "FAKERAM7", "MACRO_HALO_UM",
           "MacroPlan", "plan_bank", "BANKINGS"]


@dataclass(frozen=True)
class FakeRam:
    """One FakeRAM2.0 macro of ORFS's ASAP7 platform (lef/<name>.lef, lib/NLDM/<name>.lib)."""
    depth: int
    width: int
    lef_w_um: float
    lef_h_um: float

    @property
    def name(self) -> str:
        return f"fakeram7_{self.depth}x{self.width}"

    @property
    def abits(self) -> int:
        return exact_log2(self.depth)


#: The macros ORFS ships for ASAP7, with their LEF ``SIZE`` (tests check it against the files).
FAKERAM7 = (
    FakeRam(64, 21, 5.510, 11.200), FakeRam(64, 25, 13.110, 6.000),
    FakeRam(64, 28, 14.630, 6.000), FakeRam(64, 256, 33.250, 46.800),
    FakeRam(128, 64, 16.720, 21.600), FakeRam(256, 32, 8.360, 42.000),
    FakeRam(256, 34, 8.930, 42.000), FakeRam(256, 256, 33.250, 84.000),
    FakeRam(2048, 39, 20.330, 166.600),
)

#: Keep-out around each macro (um; ORFS's ASAP7 default), written to MACRO_PLACE_HALO and charged
#: when choosing a macro shape: many small macros pay many halos.
MACRO_HALO_UM = 10.0

#: How a buffer's two banks are chosen: by the address MSB or LSB.
BANKINGS = ("msb", "lsb")


@dataclass(frozen=True)
class MacroPlan:
    """One bank of ``depth`` x ``width`` bits as ``rows`` x ``cols`` copies of ``macro``."""
    macro: FakeRam
    depth: int
    width: int
    rows: int
    cols: int

    @property
    def count(self) -> int:
        return self.rows * self.cols


def plan_bank(width: int, depth: int) -> MacroPlan:
    """The tiling of a ``depth`` x ``width`` bank with the smallest footprint including halos
    (then fewest macros, then name): rows of macros split the address, columns the word."""
    def plan(ram):
        return MacroPlan(ram, depth, width, -(-depth // ram.depth), -(-width // ram.width))

    def cost(p):
        halo = 2 * MACRO_HALO_UM
        area = p.count * (p.macro.lef_w_um + halo) * (p.macro.lef_h_um + halo)
        return round(area, 6), p.count, p.macro.name
    return min((plan(ram) for ram in FAKERAM7), key=cost)


_ASIC = contextvars.ContextVar("tessera_asic_memories", default=False)


@contextlib.contextmanager
def asic_memories(enabled: bool = True):
    """Within this block, new ``SimpleDualPortRam`` buffers are built from FakeRAM macros."""
    token = _ASIC.set(enabled)
    try:
        yield
    finally:
        _ASIC.reset(token)


class SimpleDualPortRam(wiring.Component):
    """``depth`` words of ``shape``: write (w_addr, w_data, w_en), read (r_addr, r_en -> r_data
    on the next cycle; r_data holds while r_en is low).

    ``banking`` ("msb" or "lsb") says how the ASIC build splits the buffer into two single-port
    banks; the user of the buffer guarantees that a read and a write never hit the same bank in
    one cycle (if they do, the write wins and the read returns garbage). ``asic`` defaults to the
    mode set by ``asic_memories()``.
    """

    def __init__(self, shape, depth: int, name: str = "ram", *, banking: str | None = None,
                 asic: bool | None = None):
        if not isinstance(depth, int) or depth < 2:
            raise TypeError(f"depth must be an integer of at least 2, not {depth!r}")
        if banking is not None and banking not in BANKINGS:
            raise TypeError(f"banking must be one of {', '.join(BANKINGS)}, not {banking!r}")
        self._shape, self._depth, self._name = shape, depth, name
        self._banking = banking
        self._asic = _ASIC.get() if asic is None else asic
        if self._asic:
            if banking is None:
                raise TypeError(f"buffer '{name}' needs a banking style for an ASIC build")
            if depth & (depth - 1):
                raise TypeError(f"buffer '{name}': an ASIC build needs a power-of-two depth, "
                                f"not {depth}")
        abits = ceil_log2(depth)
        super().__init__({
            "w_addr": In(abits), "w_data": In(shape), "w_en": In(1),
            "r_addr": In(abits), "r_en": In(1), "r_data": Out(shape),
        })

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def width(self) -> int:
        return Shape.cast(self._shape).width

    @property
    def plan(self) -> MacroPlan | None:
        """The macro tiling of one bank in an ASIC build, else None."""
        return plan_bank(self.width, self._depth // 2) if self._asic else None

    def elaborate(self, platform):
        if self._asic:
            return self._elaborate_macros()
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self._shape, depth=self._depth, init=[])
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data),
                     wp.en.eq(self.w_en.replicate(len(wp.en))),
                     rp.addr.eq(self.r_addr), rp.en.eq(self.r_en), self.r_data.eq(rp.data)]
        return m

    def _elaborate_macros(self):
        m = Module()
        plan, width = self.plan, self.width
        ram = plan.macro
        split = len(self.w_addr) - 1
        if self._banking == "msb":
            def bank_of(a): return a[split], a[:split]
        else:
            def bank_of(a): return a[0], a[1:]
        w_bank, w_off = bank_of(self.w_addr)
        r_bank, r_off = bank_of(self.r_addr)
        low = min(split, ram.abits)            # offset bits inside one macro

        def row_of(off): return off[low:] if plan.rows > 1 else Const(0, 1)

        w_data = Value.cast(self.w_data)
        outputs = {}                           # (bank, row) -> that row's word
        for bank in range(2):
            for row in range(plan.rows):
                wr = self.w_en & (w_bank == bank) & (row_of(w_off) == row)
                rd = self.r_en & (r_bank == bank) & (row_of(r_off) == row)
                addr = Signal(ram.abits, name=f"b{bank}_r{row}_addr")
                m.d.comb += addr.eq(Mux(wr, w_off[:low], r_off[:low]))
                words = []
                for col in range(plan.cols):
                    lo, hi = col * ram.width, min((col + 1) * ram.width, width)
                    wd_in = Signal(ram.width, name=f"b{bank}_r{row}_c{col}_wd")
                    rd_out = Signal(ram.width, name=f"b{bank}_r{row}_c{col}_rd")
                    m.d.comb += wd_in.eq(w_data[lo:hi])          # the last column zero-padded
                    m.submodules[f"b{bank}_r{row}_c{col}"] = Instance(
                        ram.name, i_clk=ClockSignal("sync"), i_ce_in=wr | rd, i_we_in=wr,
                        i_addr_in=addr, i_wd_in=wd_in, o_rd_out=rd_out)
                    words.append(rd_out[:hi - lo])
                outputs[bank, row] = Signal(width, name=f"b{bank}_r{row}_word")
                m.d.comb += outputs[bank, row].eq(Cat(*words))

        # The read port: data from the bank and row read last cycle, else the held word.
        read_bank = Signal()
        read_row = Signal(max(1, ceil_log2(plan.rows)))
        read_valid = Signal()
        m.d.sync += read_valid.eq(self.r_en)
        with m.If(self.r_en):
            m.d.sync += [read_bank.eq(r_bank), read_row.eq(row_of(r_off))]
        fresh = Signal(width)
        with m.Switch(read_row):
            for row in range(plan.rows):
                with m.Case(row):
                    m.d.comb += fresh.eq(Mux(read_bank, outputs[1, row], outputs[0, row]))
        held = Signal(width)
        word = Mux(read_valid, fresh, held)
        m.d.sync += held.eq(word)
        m.d.comb += Value.cast(self.r_data).eq(word)
        return m
