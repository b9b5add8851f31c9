"""Programs through the AXI shell under cocotb, driven by the board driver's register protocol.

``run_on_shell`` builds the Verilog of ``tessera_top`` once per configuration and runs a list of
jobs on it with the cocotb test in shell_bench.py; each job gets seeded random pauses on the AXI
channels it names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tessera.compiler.program import Program
from tessera.config import ArchConfig

#: Every AXI channel the pauses can throttle: the shell's master (m_*) and its register slave.
CHANNELS = ("m_aw", "m_w", "m_b", "m_ar", "m_r", "s_aw", "s_w", "s_b", "s_ar", "s_r")


@dataclass
class ShellJob:
    name: str
    program: Program
    base: int                       # byte address of the image in the AXI memory
    latency: int | None = None      # written to LATENCY before the run (None: keep)
    pauses: dict[str, float] = field(default_factory=dict)  # channel -> pause probability
    seed: int = 0
    timeout_cycles: int = 1_000_000


@dataclass
class ShellResult:
    name: str
    record: object                  # protocol.RunRecord
    final_image: np.ndarray


def run_on_shell(cfg: ArchConfig, jobs: list[ShellJob], workdir: str | Path,
                 simulator: str = "icarus", waves: bool = False) -> list[ShellResult]:
    """Run each job on one simulation of ``cfg``'s AXI shell; results in job order."""
    from amaranth.back import verilog

    from tessera.sim.rtl.runner import build_hdl

    from .axi_top import TOP_NAME, AxiTop
    from .driver.protocol import RunRecord

    work = Path(workdir).resolve()
    build = work / f"{simulator}-shell-{cfg.arch}-{cfg.config_hash}"
    build.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(AxiTop(cfg), name=TOP_NAME, emit_src=False, strip_internal_attrs=True)
    src = build / f"{TOP_NAME}.v"
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    runner = build_hdl(simulator, [src], TOP_NAME, build, waves)

    jobs_dir = work / "shell-jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, job in enumerate(jobs):
        job.program.check_config(cfg)
        unknown = sorted(set(job.pauses) - set(CHANNELS))
        assert not unknown, f"unknown AXI channels {unknown}"
        image = jobs_dir / f"{i:03d}.bin"
        job.program.image.tofile(image)
        entries.append({"name": job.name, "image": str(image), "base": job.base,
                        "latency": job.latency, "pauses": job.pauses, "seed": job.seed,
                        "timeout_cycles": job.timeout_cycles})
    results_file = jobs_dir / "results.json"
    results_file.unlink(missing_ok=True)
    job_file = jobs_dir / "jobs.json"
    job_file.write_text(json.dumps({"config_id": cfg.config_id, "dram_width": cfg.dram_width,
                                    "clock_mhz": cfg.clock_mhz, "jobs": entries,
                                    "results": str(results_file)}))
    runner.test(hdl_toplevel=TOP_NAME, test_module="tessera.boards.shell_bench", build_dir=build,
                test_dir=build, extra_env={"TESSERA_SHELL_JOBS": str(job_file)}, waves=waves,
                results_xml=str(jobs_dir / "results.xml"), log_file=jobs_dir / "run.log")
    if not results_file.exists():
        raise RuntimeError(f"the shell simulation did not finish; see {jobs_dir / 'run.log'}")
    return [ShellResult(r["name"], RunRecord(**r["record"]),
                        np.fromfile(r["final_image"], dtype=np.uint8))
            for r in json.loads(results_file.read_text())]
