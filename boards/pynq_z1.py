"""The PYNQ-Z1 board: its PL platform for Amaranth, the XC7Z020's resources, presets, clocks.

The PL pins are those of amaranth-boards' Arty Z7-20 (same XC7Z020-1CLG400C; every pin checked
against Digilent's PYNQ-Z1 master XDC, Rev. C, in tests/test_fpga.py) plus what the PYNQ-Z1 adds:
the PDM microphone (m_clk F17, m_data G18).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.build import Attrs, Pins, Resource, Subsignal
from amaranth.hdl._ir import Fragment, PortDirection
from amaranth.lib import wiring
from amaranth_boards.arty_z7 import ArtyZ720Platform

from tessera.config import ArchConfig
from tessera.errors import ConfigError

__all__ = ["PynqZ1Platform", "OutOfContextPlatform", "Board", "BOARDS"]


class PynqZ1Platform(ArtyZ720Platform):
    """PYNQ-Z1 programmable logic: the Arty Z7-20's pins and the PDM microphone."""

    resources = ArtyZ720Platform.resources + [
        Resource("pdm_mic", 0,
                 Subsignal("clk", Pins("F17", dir="o")),
                 Subsignal("data", Pins("G18", dir="i")),
                 Attrs(IOSTANDARD="LVCMOS33")),
    ]


class OutOfContextPlatform(PynqZ1Platform):
    """The PYNQ-Z1 part for a component built out of context: its signature's ports stay ports
    (no pins; the block design connects them), so Vivado can synthesize, place and route the
    accelerator alone for utilization and timing."""

    def prepare(self, elaboratable, name="top", **kwargs):
        assert not self._prepared
        self._prepared = True
        ports = {}
        for path, member, value in elaboratable.signature.flatten(elaboratable):
            direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
            ports["__".join(map(str, path))] = (value, direction)
        self._design = Fragment.get(elaboratable, self).prepare(ports=ports, hierarchy=(name,))
        return self.toolchain_prepare(self._design, name, **kwargs)

    def iter_port_constraints_bits(self):
        return iter(())


@dataclass(frozen=True)
class Board:
    """What Tessera needs to know about a board to generate and check a design for it."""
    name: str
    part: str                       # Vivado part name
    platform: type
    capacity: dict                  # resource -> count of the programmable logic
    presets: dict                   # arch -> preset name that fits with room for the shell
    clock_mhz: tuple                # (lowest, highest) PL clock the flow accepts
    max_dram_width: int             # bytes per beat of the PS memory port the shell uses
    headroom: float                 # largest fraction of any resource the generated top may use

    def check_clock(self, mhz: float) -> None:
        lo, hi = self.clock_mhz
        if not lo <= mhz <= hi:
            raise ConfigError(f"--clock-mhz {mhz:g} is invalid for board '{self.name}': allowed "
                              f"is {lo:g} to {hi:g} MHz (FCLK_CLK0 of the PS)")

    def check_config(self, cfg: ArchConfig) -> None:
        if cfg.dram_width > self.max_dram_width:
            raise ConfigError(f"config field 'dram_width' = {cfg.dram_width} is invalid for "
                              f"board '{self.name}': allowed is at most {self.max_dram_width} "
                              f"bytes (the {8 * self.max_dram_width}-bit S_AXI_HP0 port)")


BOARDS: dict[str, Board] = {b.name: b for b in [
    Board(name="pynq-z1", part="xc7z020clg400-1", platform=PynqZ1Platform,
          capacity={"lut": 53200, "ff": 106400, "dsp": 220, "bram36": 140},
          presets={"lcp": "lcp-pynq-z1", "smartdeal": "smartdeal-pynq-z1"},
          clock_mhz=(10.0, 250.0), max_dram_width=8, headroom=0.8),
]}
