"""Does a generated top fit the board? Debian yosys ``synth_xilinx -family xc7`` counts the cells.

The counts follow Vivado's utilization report: Slice LUTs = logic LUTs (LUT1-LUT6) + LUTs used as
memory (distributed RAM, shift registers); flip-flops of every kind; DSP48E1; BRAM36 with each
RAMB18 counted as half. Yosys leaves inverters as INV cells that Vivado mostly folds into the
neighbouring LUTs; they are counted as LUTs (an upper bound) and reported on their own. A
design fits when every resource stays within the board's headroom (room for the block design's
interconnect, interrupt controller and reset, and for routing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from tessera.errors import TesseraError

from .pynq_z1 import Board

#: LUTs each distributed-RAM or shift-register primitive occupies.
LUTRAM_LUTS = {"RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM32X1D": 2,
               "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4, "SRL16E": 1,
               "SRLC16E": 1, "SRLC32E": 1}
LOGIC_LUTS = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV")
FLIP_FLOPS = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")
RESOURCES = ("lut", "ff", "dsp", "bram36")


def synth_cells(verilog: str, top: str) -> dict[str, int]:
    """Cell counts by type of ``top`` after ``synth_xilinx -family xc7 -flatten -noiopad``."""
    yosys = shutil.which("yosys")
    if yosys is None:
        raise TesseraError("the fit check needs Debian yosys (synth_xilinx): "
                           "apt-get install yosys")
    with tempfile.TemporaryDirectory(prefix="tessera-fit-") as tmp:
        src, stat = Path(tmp) / f"{top}.v", Path(tmp) / "stat.json"
        src.write_text(verilog)
        script = (f"read_verilog {src}; synth_xilinx -family xc7 -top {top} -flatten -noiopad; "
                  f"tee -q -o {stat} stat -json")
        run = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True)
        if run.returncode != 0 or not stat.exists():
            raise RuntimeError(f"yosys synth_xilinx failed:\n{run.stderr[-2000:]}")
        report = json.loads(stat.read_text())
    return dict(report["modules"][f"\\{top}"]["num_cells_by_type"])


def utilization(cells: dict[str, int], board: Board) -> dict:
    """utilization.json: lut, ff, dsp, bram36, fits, plus LUTRAM, carry chains and percentages."""
    lutram = sum(n * LUTRAM_LUTS[t] for t, n in cells.items() if t in LUTRAM_LUTS)
    used = {
        "lut": sum(cells.get(t, 0) for t in LOGIC_LUTS) + lutram,
        "ff": sum(cells.get(t, 0) for t in FLIP_FLOPS),
        "dsp": cells.get("DSP48E1", 0),
        "bram36": cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) / 2,
    }
    percent = {k: round(100 * used[k] / board.capacity[k], 2) for k in RESOURCES}
    return {
        **used,
        "lutram": lutram,
        "inv": cells.get("INV", 0),
        "carry4": cells.get("CARRY4", 0),
        "fits": all(used[k] <= board.headroom * board.capacity[k] for k in RESOURCES),
        "percent": percent,
        "capacity": dict(board.capacity),
        "headroom_percent": round(100 * board.headroom),
        "board": board.name,
        "part": board.part,
        "tool": "yosys synth_xilinx -family xc7 -flatten -noiopad",
        "cells": dict(sorted(cells.items())),
    }


def misfit(util: dict) -> str:
    """The one-line reason a design does not fit (the first resource over the headroom)."""
    for k in RESOURCES:
        limit = util["headroom_percent"] * util["capacity"][k] / 100
        if util[k] > limit:
            return (f"needs {util[k]:g} {k.upper()} ({util['percent'][k]:g}% of the "
                    f"{util['part']}), more than the {util['headroom_percent']}% "
                    f"({limit:g}) left beside the shell")
    return ""
