"""Golden model, cycle simulator and RTL on the same random program: do they agree?"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backends import backend, golden_outputs
from .compiler.layers import LayerShape, random_quant_layer
from .config import ArchConfig


def random_program(cfg: ArchConfig, shapes: list[LayerShape], seed: int,
                   row_sparsity: float = 0.0, zero_fraction: float = 0.0):
    """A program with random weights, requantization and input for these shapes.

    On the SmartDeal accelerator the weights are random SmartDeal codes and bases with a
    fraction ``row_sparsity`` of zero Ce rows per channel group (layers it cannot decompose get
    int8 weights); ``zero_fraction`` of the input activations are zero."""
    rng = np.random.default_rng(seed)
    if cfg.arch == "smartdeal":
        from .compiler.sd.compile import random_layer
        from .compiler.sd.mapping import Mode, mode_of

        layers = [random_layer(s, cfg, rng, row_sparsity,
                               decomposed=mode_of(s) != Mode.CONV or s.S == cfg.S)
                  for s in shapes]
    else:
        layers = [random_quant_layer(s, rng) for s in shapes]
    x = rng.integers(-128, 128, size=shapes[0].input_shape, dtype=np.int8)
    x[rng.random(x.shape) < zero_fraction] = 0
    return backend(cfg, need_compiler=True).compile(cfg, layers, x)


def compare(cfg: ArchConfig, programs: list[tuple], workdir: str | Path,
            simulator: str = "icarus", waves: bool = False) -> list[dict]:
    """Run each (name, program[, dram_latency]) on one RTL build; compare outputs with the
    golden model and cycles and DRAM traffic with the simulator. One result dict per program."""
    from .sim.rtl.runner import run_programs

    be = backend(cfg, need_compiler=True)
    jobs, expected = [], []
    for name, prog, *latency in programs:
        timing_cfg = cfg.replace(dram_latency=latency[0]) if latency else cfg
        report = be.simulate_program(prog, timing_cfg)
        jobs.append((name, prog, timing_cfg.dram_latency, 2 * report.total.cycles + 1000))
        expected.append((report, golden_outputs(prog)))
    rtl_results = run_programs(cfg, jobs, workdir, simulator, waves)
    results = []
    for (name, prog, *_), (report, gold), rtl, job in zip(programs, expected, rtl_results, jobs):
        outs = be.read_outputs(prog, rtl.final_image)
        layers = []
        for L, g, o, lr in zip(prog.manifest["layers"], gold, outs, report.layers):
            layers.append({"name": L["name"], "outputs_match": bool(np.array_equal(g, o)),
                           "mismatches": int(np.count_nonzero(g != o)), "sim_cycles": lr.cycles})
        ev = report.total.events
        results.append({
            "name": name,
            "config_hash": cfg.config_hash,
            "dram_latency": job[2],
            "rtl_cycles": rtl.cycles,
            "sim_cycles": report.total.cycles,
            "cycles_equal": rtl.cycles == report.total.cycles and rtl.edges == rtl.cycles + 1,
            "outputs_match": all(l["outputs_match"] for l in layers) and not rtl.error,
            "rtl_error": rtl.error,
            "dram_read_bytes": {"rtl": rtl.dram_read_bytes, "sim": int(ev["dram.read_bytes"])},
            "dram_write_bytes": {"rtl": rtl.dram_write_bytes, "sim": int(ev["dram.write_bytes"])},
            "dram_traffic_equal": (rtl.dram_read_bytes == ev["dram.read_bytes"]
                                   and rtl.dram_write_bytes == ev["dram.write_bytes"]),
            "layers": layers,
        })
    return results
