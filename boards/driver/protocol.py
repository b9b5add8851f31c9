"""The register protocol of one accelerator run, written once.

``run_sequence`` is a generator of register operations (Read, Write, WaitDone). It is executed
by ``execute`` over pynq.MMIO on the board and by ``execute_async`` over cocotbext-axi's
AxiLiteMaster in the RTL tests, so the tests exercise exactly the sequence the board runs.
"""

from __future__ import annotations

from typing import Callable, Generator, NamedTuple, Optional

from .regs import REG, VERSION


class DriverError(Exception):
    """The accelerator refused or failed a run (one line: what, which value, what was expected)."""


class Read(NamedTuple):
    reg: str


class Write(NamedTuple):
    reg: str
    value: int


class WaitDone(NamedTuple):
    """Wait for STATUS.DONE (by interrupt or polling) for at most ``timeout`` seconds."""
    timeout: float


class RunRecord(NamedTuple):
    """What the registers say about a finished run."""
    config_id: int
    cycles: int
    latency: int
    violations: int
    read_late: int
    req_stall: int
    write_stall: int
    error: bool
    axi_error: bool

    @property
    def exact(self) -> bool:
        """The core saw the DRAM contract throughout, so CYCLES is the simulator's prediction."""
        return self.violations == 0


def _bit(reg: str, field: str) -> int:
    return REG[reg].field(field).mask


def run_sequence(config_id: int, base: int, dram_width: int, latency: Optional[int],
                 timeout: float) -> Generator:
    """Check the hardware, run the program whose image starts at ``base``, return a RunRecord.

    ``latency`` (cycles) is written to LATENCY when given; otherwise the hardware's value stays.
    """
    version = yield Read("VERSION")
    if version >> 16 != VERSION[0]:
        raise DriverError(f"register map version {version >> 16}.{version & 0xFFFF} is not "
                          f"supported: the driver speaks {VERSION[0]}.x")
    ident = yield Read("CONFIG_ID")
    if ident != config_id:
        raise DriverError(f"the bitstream is configuration {ident:08x} but the program was "
                          f"compiled for {config_id:08x}: load the matching bitstream")
    status = yield Read("STATUS")
    if status & _bit("STATUS", "BUSY"):
        raise DriverError("the accelerator is busy with another run")
    if base % dram_width or not 0 <= base < 1 << 32:
        raise DriverError(f"image address 0x{base:x} is invalid: allowed is a 32-bit address "
                          f"that is a multiple of dram_width ({dram_width})")
    if latency is not None:
        most = yield Read("LATENCY_MAX")
        if not 1 <= latency <= most:
            raise DriverError(f"latency {latency} is invalid: allowed is 1 to {most} cycles")
        yield Write("LATENCY", latency)
    yield Write("BASE", base)
    yield Write("IRQ", _bit("IRQ", "DONE"))
    yield Write("CONTROL", _bit("CONTROL", "START") | _bit("CONTROL", "IRQ_ENABLE"))
    yield WaitDone(timeout)
    status = yield Read("STATUS")
    if not status & _bit("STATUS", "DONE"):
        raise DriverError(f"the accelerator did not finish within {timeout:g} s")
    pending = yield Read("IRQ")
    if not pending & _bit("IRQ", "DONE"):
        raise DriverError("STATUS.DONE is set but the interrupt is not pending")
    yield Write("IRQ", _bit("IRQ", "DONE"))
    values = {}
    for name in ("CYCLES", "LATENCY", "VIOLATIONS", "READ_LATE", "REQ_STALL", "WRITE_STALL"):
        values[name.lower()] = yield Read(name)
    return RunRecord(config_id=ident, error=bool(status & _bit("STATUS", "ERROR")),
                     axi_error=bool(status & _bit("STATUS", "AXI_ERROR")), **values)


def execute(sequence: Generator, read: Callable[[int], int], write: Callable[[int, int], None],
            wait_done: Callable[[float], None]):
    """Run a register sequence with blocking accessors (offsets in bytes); return its result."""
    result = None
    try:
        while True:
            op = sequence.send(result)
            result = None
            if isinstance(op, Read):
                result = read(REG[op.reg].offset)
            elif isinstance(op, Write):
                write(REG[op.reg].offset, op.value)
            else:
                wait_done(op.timeout)
    except StopIteration as stop:
        return stop.value


async def execute_async(sequence: Generator, read, write, wait_done):
    """``execute`` for coroutine accessors (cocotb)."""
    result = None
    try:
        while True:
            op = sequence.send(result)
            result = None
            if isinstance(op, Read):
                result = await read(REG[op.reg].offset)
            elif isinstance(op, Write):
                await write(REG[op.reg].offset, op.value)
            else:
                await wait_done(op.timeout)
    except StopIteration as stop:
        return stop.value
