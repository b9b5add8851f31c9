"""The accelerator on a PYNQ board: the overlay, contiguous DRAM, the register protocol.

Imports ``pynq`` only when an Accelerator is created, so this module loads anywhere.
"""

from __future__ import annotations

import asyncio
import time
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np

from .protocol import DriverError, RunRecord, execute, run_sequence
from .regs import REG

#: The accelerator's module reference in the hardware handoff (boards/vivado.py: VLNV).
VLNV = "xilinx.com:module_ref:tessera_top:1.0"


@lru_cache(maxsize=None)
def _ip_class():
    """Register the driver for the accelerator's VLNV with pynq (defining the class does it)."""
    from pynq import DefaultIP

    class TesseraIP(DefaultIP):
        """PYNQ driver of the accelerator shell: register access plus its interrupt."""
        bindto = [VLNV]

    return TesseraIP


class Accelerator:
    """One accelerator overlay: load the bitstream (its .hwh next to it), run program images."""

    def __init__(self, bitfile: str):
        from pynq import Overlay

        cls = _ip_class()
        self.overlay = Overlay(bitfile)
        found = [getattr(self.overlay, name.split("/")[-1]) for name, ip in
                 self.overlay.ip_dict.items() if ip.get("type") == VLNV]
        if len(found) != 1:
            raise DriverError(f"'{bitfile}' holds {len(found)} accelerators ({VLNV}): "
                              "allowed is exactly one")
        self.ip = found[0]
        assert isinstance(self.ip, cls)

    def _wait_done(self, timeout: float) -> None:
        """Wait on the interrupt when the overlay routes it, else poll STATUS.DONE."""
        if hasattr(self.ip, "interrupt"):
            try:
                asyncio.run(asyncio.wait_for(self.ip.interrupt.wait(), timeout))
            except asyncio.TimeoutError:
                pass
            return
        done = REG["STATUS"].field("DONE").mask
        deadline = time.monotonic() + timeout
        while not self.ip.read(REG["STATUS"].offset) & done and time.monotonic() < deadline:
            time.sleep(1e-4)

    def run(self, image: np.ndarray, config_id: int, dram_width: int,
            latency: Optional[int] = None, timeout: float = 10.0) -> Tuple[RunRecord, np.ndarray]:
        """Copy ``image`` to contiguous DRAM, run it, return the record and the final memory."""
        from pynq import allocate

        buf = allocate(shape=(image.size,), dtype=np.uint8)
        try:
            buf[:] = image
            buf.flush()
            record = execute(run_sequence(config_id, buf.device_address, dram_width, latency,
                                          timeout),
                             self.ip.read, self.ip.write, self._wait_done)
            buf.invalidate()
            return record, np.array(buf)
        finally:
            buf.freebuffer()
