"""A cocotb model of DRAM that implements the memory contract exactly (docs/memory-model.md).

- A read request (addr, beats) is accepted the cycle it is valid (ready is always 1).
- The first beat of a request accepted at clock edge ``a`` is transferred at edge ``a + latency``
  or later; beats follow one per edge, requests in order.
- A write beat is accepted the cycle it is valid and is visible to every later read.

Signals are sampled and driven on the falling edge: the core changes only on rising edges, so at a
falling edge its outputs are exactly what the next rising edge will sample.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from cocotb.triggers import FallingEdge


class DramModel:
    def __init__(self, dut, image: np.ndarray, width: int, latency: int):
        self.dut = dut
        self.mem = image.copy()
        self.width = width
        self.latency = latency
        self.read_bytes = 0
        self.write_bytes = 0

    def _check(self, addr: int, what: str) -> None:
        if addr % self.width or addr + self.width > self.mem.size:
            raise AssertionError(f"{what} at 0x{addr:x} is outside the {self.mem.size}-byte image "
                                 f"or not aligned to {self.width} bytes")

    async def run(self) -> None:
        dut, B, L = self.dut, self.width, self.latency
        mask = (1 << 32) - 1
        dut.rd_req__ready.value = 1
        dut.wr__ready.value = 1
        dut.rd_data__valid.value = 0
        pending: deque[list[int]] = deque()  # [earliest edge, next address, beats left]
        edge = 0  # rising edges seen since the model started
        while True:
            await FallingEdge(dut.clk)
            edge += 1
            upcoming = edge + 1
            # Read data for the upcoming edge.
            if pending and pending[0][0] <= upcoming:
                req = pending[0]
                self._check(req[1], "read")
                dut.rd_data__payload.value = int.from_bytes(self.mem[req[1]:req[1] + B].tobytes(),
                                                            "little")
                dut.rd_data__valid.value = 1
                assert dut.rd_data__ready.value == 1, "the core must always accept read data"
                self.read_bytes += B
                req[1] += B
                req[2] -= 1
                if req[2] == 0:
                    pending.popleft()
                    if pending:  # the next request's beats may start on the following edge
                        pending[0][0] = max(pending[0][0], upcoming + 1)
                else:
                    req[0] = upcoming + 1
            else:
                dut.rd_data__valid.value = 0
            # A request accepted at the upcoming edge.
            if dut.rd_req__valid.value == 1:
                payload = int(dut.rd_req__payload.value)
                addr, beats = payload & mask, payload >> 32
                assert beats > 0, "read request for zero beats"
                pending.append([upcoming + L, addr, beats])
            # A write accepted at the upcoming edge.
            if dut.wr__valid.value == 1:
                payload = int(dut.wr__payload.value)
                addr = payload & mask
                self._check(addr, "write")
                self.mem[addr:addr + B] = np.frombuffer(
                    (payload >> 32).to_bytes(B, "little"), np.uint8)
                self.write_bytes += B
