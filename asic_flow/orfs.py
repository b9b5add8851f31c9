"""An OpenROAD-flow-scripts design directory for one configuration.

The layout follows ORFS's ``flow/designs/asap7/<design>/``: ``config.mk`` (the design's make
variables), ``constraint.sdc`` (ASAP7 times are in ps), the Verilog, and a README with the make
line. Paths inside ``config.mk`` are relative to the directory holding it (through
``$(DESIGN_CONFIG)``) or to ORFS's ``$(PLATFORM_DIR)``, so the folder can live anywhere.
"""

from __future__ import annotations

from pathlib import Path

from tessera.config import ArchConfig
from tessera.hdl.memories import MACRO_HALO_UM

__all__ = ["DesignFiles", "write_design", "clock_period_ps", "CORE_UTILIZATION", "PLACE_DENSITY",
           "IO_DELAY_FRACTION"]

#: Floorplan: percent of the core area filled by cells and macros (ORFS's asap7 designs use 30-60;
#: lower leaves room for the macro halos), and the global placement density.
CORE_UTILIZATION = 40
PLACE_DENSITY = 0.60
#: Input and output delay as a fraction of the clock period (ORFS's riscv32i uses 0.125).
IO_DELAY_FRACTION = 0.2


def clock_period_ps(cfg: ArchConfig) -> float:
    return 1e6 / cfg.clock_mhz


def _ps(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


class DesignFiles:
    """The names of a design directory's files."""
    CONFIG = "config.mk"
    SDC = "constraint.sdc"
    README = "README.md"


def write_design(out: Path, cfg: ArchConfig, name: str, verilog: str | None,
                 macros: dict[str, int], command: str,
                 regenerate: str | None = None) -> dict[str, Path]:
    """Write the design directory for the core ``name`` (its ASIC-mode ``verilog`` using
    ``macros``: macro name -> count); ``command`` is the tessera command that made it.

    ``verilog`` None: the core is too large to convert here; everything else is written, and the
    README says how to add the Verilog (``regenerate``: the command that does it)."""
    out.mkdir(parents=True, exist_ok=True)
    nickname = f"{name}_{cfg.config_hash}"
    period = clock_period_ps(cfg)
    files = {"verilog": out / f"{name}.v", "config": out / DesignFiles.CONFIG,
             "sdc": out / DesignFiles.SDC, "readme": out / DesignFiles.README}
    if verilog is not None:
        files["verilog"].write_text(verilog)
    lefs = " \\\n                          ".join(
        f"$(PLATFORM_DIR)/lef/{m}.lef" for m in macros)
    libs = " \\\n                          ".join(
        f"$(PLATFORM_DIR)/lib/NLDM/{m}.lib" for m in macros)
    halo = _ps(MACRO_HALO_UM)
    lines = [
        f"# ORFS design configuration for the {cfg.arch} core {cfg.config_hash}, made by",
        f"#   {command}",
        "# Regenerate it rather than editing it. Paths: TESSERA_DESIGN_DIR is this folder.",
        "",
        "export PLATFORM               = asap7",
        f"export DESIGN_NAME            = {name}",
        f"export DESIGN_NICKNAME        = {nickname}",
        "export TESSERA_DESIGN_DIR    := $(abspath $(dir $(DESIGN_CONFIG)))",
        "",
        f"export VERILOG_FILES          = $(TESSERA_DESIGN_DIR)/{name}.v",
        f"export SDC_FILE               = $(TESSERA_DESIGN_DIR)/{DesignFiles.SDC}",
        "",
        "# The typical corner: the libraries the estimate (estimate.json) was made with.",
        "export CORNER                 = TC",
        "",
    ]
    if macros:
        lines += [
            "# FakeRAM macros of the on-chip buffers (docs/asic.md: banking and tiling).",
            f"export ADDITIONAL_LEFS        = {lefs}",
            f"export ADDITIONAL_LIBS        = {libs}",
            f"export MACRO_PLACE_HALO       = {halo} {halo}",
            "",
        ]
    lines += [
        "# Keep the hierarchy for macro placement; the array's cells are small modules.",
        "export SYNTH_HIERARCHICAL     = 1",
        "",
        f"export CORE_UTILIZATION       = {CORE_UTILIZATION}",
        "export CORE_ASPECT_RATIO      = 1",
        "export CORE_MARGIN            = 2",
        f"export PLACE_DENSITY          = {PLACE_DENSITY:.2f}",
        "export TNS_END_PERCENT        = 100",
        "",
    ]
    files["config"].write_text("\n".join(lines))
    files["sdc"].write_text(
        f"# {cfg.arch} core {cfg.config_hash} at {cfg.clock_mhz:g} MHz; ASAP7 times are in ps.\n"
        f"current_design {name}\n"
        "\n"
        "set clk_name core_clock\n"
        "set clk_port_name clk\n"
        f"set clk_period {_ps(period)}\n"
        f"set clk_io_pct {IO_DELAY_FRACTION}\n"
        "\n"
        "set clk_port [get_ports $clk_port_name]\n"
        "create_clock -name $clk_name -period $clk_period $clk_port\n"
        "\n"
        "set non_clock_inputs [lsearch -inline -all -not -exact [all_inputs] $clk_port]\n"
        "set_input_delay [expr $clk_period * $clk_io_pct] -clock $clk_name $non_clock_inputs\n"
        "set_output_delay [expr $clk_period * $clk_io_pct] -clock $clk_name [all_outputs]\n")
    macro_lines = "".join(f"- `{m}` x {n}\n" for m, n in macros.items()) or "- none\n"
    missing = "" if verilog is not None else (
        f"## Before running ORFS: generate `{name}.v`\n"
        "\n"
        f"This folder has no `{name}.v` yet: converting a core this large to Verilog with "
        "Amaranth takes more memory and time than the machine that wrote the folder had (the "
        "paper-size SmartDeal core, 8,192 MACs, was still running at 6.6 GB and 5 CPU minutes "
        "when it was stopped; how much it needs has not been measured). On a machine with "
        "much more memory, in Tessera's environment, run\n"
        "\n"
        "```sh\n"
        f"AMARANTH_USE_YOSYS=builtin {regenerate}\n"
        "```\n"
        "\n"
        f"which writes `{name}.v` (with the same {sum(macros.values())} SRAM macros as below) and "
        "rewrites the other files of this folder unchanged. `estimate.json`, when present, does "
        "not need it: it is estimated block by block (docs/asic.md).\n"
        "\n")
    files["readme"].write_text(
        f"# {name} ({cfg.arch}, config {cfg.config_hash}) for OpenROAD-flow-scripts, ASAP7\n"
        "\n"
        f"Made by `{command}`.\n"
        "\n" + missing +
        "Run the whole flow (synthesis to GDS) from an OpenROAD-flow-scripts checkout:\n"
        "\n"
        "```sh\n"
        f"make -C <ORFS>/flow DESIGN_CONFIG={out.resolve() / DesignFiles.CONFIG}\n"
        "```\n"
        "\n"
        "`DESIGN_CONFIG` must be an absolute path (or relative to `<ORFS>/flow`): `config.mk` "
        "finds the Verilog and the SDC next to itself through it. Results go to "
        f"`<ORFS>/flow/results/asap7/{nickname}/base/`.\n"
        "\n"
        f"Clock: {cfg.clock_mhz:g} MHz = {_ps(period)} ps (`constraint.sdc`). SRAM macros "
        "(from `$(PLATFORM_DIR)`):\n"
        "\n" + macro_lines +
        "\n`estimate.json` (when written) holds the yosys-based area, timing and power "
        "estimate; docs/asic.md in the Tessera repository explains it.\n")
    return files
