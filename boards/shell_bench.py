"""The cocotb test behind shell_sim.run_on_shell: programs through the AXI shell.

Each job's image goes into a cocotbext-axi AxiRam; every AXI channel named in the job is
throttled with seeded random pauses; the board driver's ``run_sequence`` runs through an
AxiLiteMaster, waiting on the interrupt line; the run record and the final memory are saved.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from .driver.protocol import execute_async, run_sequence


def _pauses(rng: random.Random, probability: float):
    while True:
        yield rng.random() < probability


@cocotb.test()
async def run_jobs(dut):
    """Reset the shell once, then run every job through the driver's register protocol."""
    spec = json.loads(Path(os.environ["TESSERA_SHELL_JOBS"]).read_text())
    clock_hz = spec["clock_mhz"] * 1e6
    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    dut.aresetn.value = 0
    size = max(j["base"] + os.path.getsize(j["image"]) for j in spec["jobs"])
    size = 1 << (size + 4095).bit_length()
    regs = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), dut.aclk, dut.aresetn,
                         reset_active_level=False)
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.aclk, dut.aresetn,
                 reset_active_level=False, size=size)
    channels = {
        "m_aw": ram.write_if.aw_channel, "m_w": ram.write_if.w_channel,
        "m_b": ram.write_if.b_channel, "m_ar": ram.read_if.ar_channel,
        "m_r": ram.read_if.r_channel,
        "s_aw": regs.write_if.aw_channel, "s_w": regs.write_if.w_channel,
        "s_b": regs.write_if.b_channel, "s_ar": regs.read_if.ar_channel,
        "s_r": regs.read_if.r_channel,
    }
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)

    async def read(offset):
        return await regs.read_dword(offset)

    async def write(offset, value):
        await regs.write_dword(offset, value)

    results = []
    for job in spec["jobs"]:
        rng = random.Random(job["seed"])
        for name, channel in channels.items():
            probability = job["pauses"].get(name, 0.0)
            channel.set_pause_generator(_pauses(random.Random(rng.random()), probability)
                                        if probability else None)
        image = np.fromfile(job["image"], dtype=np.uint8)
        ram.write(job["base"], image.tobytes())
        cap = job["timeout_cycles"]

        async def wait_done(timeout):
            cycles = min(cap, int(timeout * clock_hz))
            if dut.interrupt.value != 1:
                await First(RisingEdge(dut.interrupt), ClockCycles(dut.aclk, cycles))

        record = await execute_async(
            run_sequence(spec["config_id"], job["base"], spec["dram_width"], job["latency"],
                         cap / clock_hz),
            read, write, wait_done)
        assert dut.interrupt.value == 0, "the interrupt stays raised after it was cleared"
        out = job["image"] + ".out"
        np.frombuffer(ram.read(job["base"], image.size), dtype=np.uint8).tofile(out)
        results.append({"name": job["name"], "record": record._asdict(),
                        "final_image": out})
    Path(spec["results"]).write_text(json.dumps(results, indent=1))
