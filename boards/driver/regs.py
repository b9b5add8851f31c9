"""The AXI4-Lite register map of the accelerator shell: the one table that the RTL
(tessera.boards.axi_top), the driver (protocol.py) and docs/pynq.md are all generated from."""

from __future__ import annotations

from typing import NamedTuple, Tuple

#: Register-map version (major, minor); the driver refuses another major version.
VERSION = (1, 0)
#: Byte address bits of the AXI4-Lite slave (4 KB, the smallest block Vivado assigns).
ADDR_BITS = 12


class Field(NamedTuple):
    name: str
    bit: int
    width: int
    doc: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.bit


class Register(NamedTuple):
    name: str
    offset: int
    access: str          # "rw", "ro" or "w1c" (write 1 to clear)
    doc: str
    fields: Tuple[Field, ...] = ()

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name}")


REGISTERS = (
    Register("CONTROL", 0x00, "rw", "start a run; enable the interrupt", (
        Field("START", 0, 1, "write 1 to start the program at BASE (reads 0; ignored while BUSY); "
                             "clears DONE, IRQ and the counters"),
        Field("IRQ_ENABLE", 1, 1, "drive the interrupt line while IRQ.DONE is pending"),
    )),
    Register("STATUS", 0x04, "ro", "state of the last run", (
        Field("BUSY", 0, 1, "a run is in progress"),
        Field("DONE", 1, 1, "the core finished and every write has its AXI B response"),
        Field("ERROR", 2, 1, "the core refused the program (its header names another "
                             "configuration)"),
        Field("AXI_ERROR", 3, 1, "an AXI read or write answered SLVERR or DECERR"),
    )),
    Register("IRQ", 0x08, "w1c", "interrupt status", (
        Field("DONE", 0, 1, "set when a run finishes; write 1 to clear (START clears it too)"),
    )),
    Register("BASE", 0x0C, "rw", "DRAM byte address of the program image (a multiple of "
                                 "dram_width)"),
    Register("CYCLES", 0x10, "ro", "the core's cycle counter: cycles from start to done"),
    Register("CONFIG_ID", 0x14, "ro", "configuration hash of the hardware (config_hash as a "
                                      "32-bit number)"),
    Register("LATENCY", 0x18, "rw", "the DRAM contract's guaranteed read latency L in cycles, "
                                    "1..LATENCY_MAX (reset: the configuration's dram_latency); "
                                    "writes while BUSY or out of range are ignored"),
    Register("LATENCY_MAX", 0x1C, "ro", "largest LATENCY the latency equalizer can hold"),
    Register("VIOLATIONS", 0x20, "ro", "cycles of the last run in which the core did not see "
                                       "the DRAM contract (any of the three counters below); "
                                       "0 means CYCLES equals the simulator's prediction"),
    Register("READ_LATE", 0x24, "ro", "cycles a read beat was due but AXI had not delivered it"),
    Register("REQ_STALL", 0x28, "ro", "cycles a read request waited for room in the request "
                                      "queue"),
    Register("WRITE_STALL", 0x2C, "ro", "cycles a write beat waited for room in the write "
                                        "FIFO"),
    Register("VERSION", 0x30, "ro", "register-map version: major << 16 | minor"),
)

REG = {r.name: r for r in REGISTERS}


def version_word() -> int:
    return VERSION[0] << 16 | VERSION[1]


def markdown_table() -> str:
    """The register map as a Markdown table (for docs/pynq.md and the generated README)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| offset | name | access | bits | meaning |", "|---|---|---|---|---|"]
    for r in REGISTERS:
        bits = "" if r.fields else "31:0"
        lines.append(f"| 0x{r.offset:02X} | {r.name} | {r.access} | {bits} | {cell(r.doc)} |")
        for f in r.fields:
            bits = str(f.bit) if f.width == 1 else f"{f.bit + f.width - 1}:{f.bit}"
            lines.append(f"| | {r.name}.{f.name} | | {bits} | {cell(f.doc)} |")
    return "\n".join(lines) + "\n"
