"""The cocotb bench: runs a list of programs on the generated core, one after another.

The driver (sim/rtl/runner.py) passes a JSON job file in $TESSERA_JOBS; for each program the bench
loads its image into a fresh DramModel, resets the core, pulses ``start``, waits for ``done`` and
records the core's cycle counter, an independent count of clock edges, and the final memory.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from .dram import DramModel


@cocotb.test()
async def run_programs(dut):
    with open(os.environ["TESSERA_JOBS"]) as f:
        jobs = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    results = []
    for job in jobs["programs"]:
        image = np.fromfile(job["image"], dtype=np.uint8)
        dut.start.value = 0
        dut.base.value = 0
        dut.rst.value = 1
        for _ in range(2):
            await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        model = DramModel(dut, image, jobs["dram_width"], job["latency"])
        task = cocotb.start_soon(model.run())
        dut.start.value = 1
        await FallingEdge(dut.clk)       # the rising edge in between sampled start
        dut.start.value = 0
        edges = 1
        while dut.done.value != 1:
            await FallingEdge(dut.clk)
            edges += 1
            if edges > job["max_cycles"]:
                raise AssertionError(f"{job['name']}: no done after {edges} cycles")
        task.cancel()
        out = job["image"] + ".out"
        model.mem.tofile(out)
        results.append({"name": job["name"], "cycles": int(dut.cycles.value), "edges": edges,
                        "error": int(dut.error.value), "final_image": out,
                        "dram_read_bytes": model.read_bytes,
                        "dram_write_bytes": model.write_bytes})
    with open(jobs["results"], "w") as f:
        json.dump(results, f, indent=1)
