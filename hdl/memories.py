"""On-chip buffers behind one small interface, so the ASIC build can swap in SRAM macros.

``SimpleDualPortRam`` has one write port and one synchronous read port (data one cycle after the
address). Simulation and FPGA builds implement it with ``lib.memory.Memory``; the ASIC build
(asic_flow/) replaces it with FakeRAM macros behind the same ports.
"""

from amaranth import Module
from amaranth.hdl import Shape
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["SimpleDualPortRam"]


class SimpleDualPortRam(wiring.Component):
    """``depth`` words of ``shape``: write (w_addr, w_data, w_en), read (r_addr, r_en -> r_data
    on the next cycle; r_data holds while r_en is low)."""

    def __init__(self, shape, depth: int, name: str = "ram"):
        if not isinstance(depth, int) or depth < 2:
            raise TypeError(f"depth must be an integer of at least 2, not {depth!r}")
        self._shape, self._depth, self._name = shape, depth, name
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

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self._shape, depth=self._depth, init=[])
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data),
                     wp.en.eq(self.w_en.replicate(len(wp.en))),
                     rp.addr.eq(self.r_addr), rp.en.eq(self.r_en), self.r_data.eq(rp.data)]
        return m
