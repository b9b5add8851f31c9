"""Judge one accelerator run (on the board or through the simulated AXI shell).

A run is right when every layer's output equals the golden model bit for bit, and, when the core
saw the DRAM contract throughout (VIOLATIONS == 0), when its cycle counter equals the simulator's
prediction at the latency the run used (the LATENCY register).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tessera.backends import backend, golden_outputs
from tessera.compiler.program import Program
from tessera.errors import ProgramError

from .driver.protocol import RunRecord

#: Files of a run directory written by the board driver (python -m tessera_pynq).
RUN_FILES = ("manifest.json", "image.bin", "final.bin", "run.json")


def check_run(program: Program, record: RunRecord, final_image: np.ndarray) -> dict:
    """Outputs against the golden model, cycles against the simulator; one dict, JSON-ready."""
    be = backend(program.manifest["arch"])
    report = be.simulate_program(program, program.config.replace(dram_latency=record.latency))
    layers = []
    for L, gold, out, lr in zip(program.manifest["layers"], golden_outputs(program),
                                be.read_outputs(program, final_image), report.layers):
        layers.append({"name": L["name"], "outputs_match": bool(np.array_equal(gold, out)),
                       "mismatches": int(np.count_nonzero(gold != out)),
                       "sim_cycles": lr.cycles})
    sim_cycles = report.total.cycles
    outputs_match = all(L["outputs_match"] for L in layers) and not record.error
    cycles_equal = record.cycles == sim_cycles
    return {
        "config_hash": program.manifest["config_hash"],
        "latency": record.latency,
        "rtl_cycles": record.cycles,
        "sim_cycles": sim_cycles,
        "cycles_equal": cycles_equal,
        "exact": record.exact,
        "violations": record.violations,
        "read_late": record.read_late,
        "req_stall": record.req_stall,
        "write_stall": record.write_stall,
        "error": record.error,
        "axi_error": record.axi_error,
        "outputs_match": outputs_match,
        "ok": outputs_match and not record.axi_error and (cycles_equal or not record.exact),
        "layers": layers,
    }


def load_run(directory: str | Path) -> tuple[Program, RunRecord, np.ndarray]:
    """A run directory as the board driver writes it: the program, its record, final memory."""
    d = Path(directory)
    missing = [name for name in RUN_FILES if not (d / name).exists()]
    if missing:
        raise ProgramError(f"'{d}' is not a board run directory: {', '.join(missing)} "
                           f"missing (expected {', '.join(RUN_FILES)})")
    program = Program.load(d)
    try:
        record = RunRecord(**json.loads((d / "run.json").read_text())["record"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ProgramError(f"'{d / 'run.json'}' is corrupt: {exc}") from None
    final = np.fromfile(d / "final.bin", dtype=np.uint8)
    if final.size != program.image.size:
        raise ProgramError(f"'{d / 'final.bin'}' holds {final.size} bytes, the image "
                           f"{program.image.size}: the run directory is corrupt")
    return program, record, final
