"""`tessera asic`: an OpenROAD-flow-scripts design directory and an ASAP7 estimate."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..cli import add_config_options, config_from_args
from ..console import make_console
from ._common import write_json


def register(sub) -> None:
    p = sub.add_parser(
        "asic", help="write an ORFS (OpenROAD) design directory and estimate area/timing/power",
        description="Write the OpenROAD-flow-scripts design directory of the configured core "
                    "for ASAP7 (config.mk, constraint.sdc with the clock in ps, the Verilog with "
                    "the on-chip buffers as FakeRAM macros, README.md with the make line), and, "
                    "given the ASAP7 platform folder, estimate.json: cell and macro area, "
                    "critical path against the clock, and power, from yosys synthesis of each "
                    "block and a switching-activity simulation (docs/asic.md).")
    add_config_options(p)
    p.add_argument("--platform", choices=["asap7"], default="asap7",
                   help="technology platform (default: asap7)")
    p.add_argument("--platform-dir", metavar="DIR", default=None,
                   help="ORFS's flow/platforms/asap7 folder (lib/NLDM, lef); default: "
                        "$TESSERA_ASAP7_DIR. Without it only the ORFS inputs are written")
    p.add_argument("--activity-layer", metavar="SPEC", default=None,
                   help="layer whose simulation gives the switching activity (default: a 3x3 "
                        "convolution sized to the array)")
    p.add_argument("--core-verilog", choices=["auto", "yes", "no"], default="auto",
                   help="write the whole core's Verilog into the ORFS directory: auto (default) "
                        "does when converting it is practical here (smartdeal up to "
                        "1,024 MACs); the estimate never needs it for smartdeal")
    p.add_argument("-o", "--output", metavar="DIR", default=None,
                   help="output directory (default: build/asic/<preset or config hash>)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)

    from ..asic_flow.estimate import estimate
    from ..asic_flow.fakeram import macros_in
    from ..asic_flow.orfs import write_design
    from ..asic_flow.parts import planned_macros, table_for
    from ..asic_flow.platform import find_platform
    from ..hdl.memories import asic_memories
    from ..errors import ConfigError
    from ..hdl.top import module_name, verilog_for

    cfg = config_from_args(args)
    table = table_for(cfg)                           # fail early for an arch without a table
    platform = find_platform(args.platform_dir)
    out = Path(args.output or f"build/asic/{args.preset or cfg.config_hash}")
    console = make_console(stderr=True)
    command = _command(args, out)
    whole = {"yes": True, "no": False, "auto": table.whole_core}[args.core_verilog]
    if not whole and table.buffers is None:
        raise ConfigError(f"--core-verilog no: arch '{cfg.arch}' needs the core's Verilog for "
                          f"its SRAM macros; allowed is auto or yes")
    name = module_name(cfg, "core")
    verilog = None
    if whole:
        with console.status(f"generating the ASIC {cfg.arch} core ({cfg.config_hash})"):
            with asic_memories():
                name, verilog, _ = verilog_for(cfg)
        macros = macros_in(verilog)
    else:
        macros = planned_macros(cfg, table)[0]
    if platform is not None:
        for macro in macros:
            platform.macro_files(macro)
    files = write_design(out, cfg, name, verilog, macros, command,
                         regenerate=_command(args, out, core_verilog="yes"))
    if verilog is None:
        console.print(f"wrote the ORFS design directory {out}: {files['config'].name}, "
                      f"{files['sdc'].name}, {files['readme'].name}; not {files['verilog'].name}:"
                      f" this core is too large to convert here ({files['readme'].name} says "
                      f"how to add it)")
    else:
        console.print(f"wrote the ORFS design directory {out}: {files['config'].name}, "
                      f"{files['sdc'].name}, {files['verilog'].name}, {files['readme'].name}")
    if platform is None:
        console.print("no estimate: it needs the ASAP7 libraries; pass --platform-dir "
                      "<ORFS>/flow/platforms/asap7 (or set TESSERA_ASAP7_DIR)")
        return 0
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        report = estimate(cfg, platform, (name, verilog) if verilog is not None else None,
                          out / "synth", progress, args.activity_layer)
    write_json(out / "estimate.json", report)
    _print(make_console(), report)
    return 0


def _command(args, out: Path, core_verilog: str | None = None) -> str:
    """The tessera command line that reproduces this design directory."""
    words = ["tessera", "asic", "--platform", args.platform]
    for flag, value in (("--arch", args.arch), ("--preset", args.preset),
                        ("--config", args.config)):
        if value:
            words += [flag, value]
    for assignment in args.sets:
        words += ["--set", assignment]
    if args.activity_layer:
        words += ["--activity-layer", args.activity_layer]
    if (core_verilog or args.core_verilog) != "auto":
        words += ["--core-verilog", core_verilog or args.core_verilog]
    words += ["-o", str(out)]
    return " ".join(shlex.quote(w) for w in words)


def _print(console, r: dict) -> None:
    from rich.table import Table

    t = Table(title=f"ASAP7 estimate, {r['config']['arch']} {r['config_hash']} "
                    f"at {r['config']['clock_mhz']:g} MHz")
    for col in ("part", "count", "um^2 each", "um^2 total", "flops each", "delay ps",
                "toggle rate", "mW", "how"):
        t.add_column(col, justify="left" if col in ("part", "how") else "right")
    for p in r["parts"]:
        t.add_row(p["name"], str(p["count"]), f"{p['area_um2']:,.2f}",
                  f"{p['total_area_um2']:,.0f}", f"{p['flops']:,.0f}", f"{p['delay_ps']:.0f}",
                  f"{p['toggle_rate']:.3f}", f"{p['power_mw']:.3f}", p["method"])
    console.print(t)
    macros = ", ".join(f"{m} x{v['count']}" for m, v in r["macros"].items()) or "none"
    console.print(f"area: cells {r['cell_area_um2']:,.0f} um^2 + macros "
                  f"{r['macro_area_um2']:,.0f} um^2 ({macros}) = {r['total_area_mm2']:.4f} mm^2; "
                  f"{r['std_cells']:,.0f} cells, {r['flops']:,.0f} flip-flops")
    verdict = "meets" if r["meets_timing"] else "misses"
    console.print(f"timing: critical path {r['critical_path_ps']:.0f} ps ({r['critical_part']}) "
                  f"vs clock {r['clock_period_ps']:.0f} ps: {verdict} timing "
                  f"(fmax ~{r['fmax_mhz']:.0f} MHz)")
    b = r["power_breakdown_mw"]
    console.print(f"power: {r['power_mw']:.2f} mW = logic {b['logic_switching']:.2f} + clock "
                  f"pins {b['clock_pins']:.2f} + leakage {b['cell_leakage']:.2f} + macros "
                  f"{b['macro_leakage']:.2f} leakage, {b['macro_access']:.2f} access")
    for group, share in r["separate_shares_percent"].items():
        console.print(f"share of the area: {group} {share:.2f}%")
    ref = r.get("reference")
    if ref:
        parts = []
        if ref["area_mm2"]:
            parts.append(f"{ref['area_mm2']} mm^2 (estimate x{ref['area_ratio']})")
        if ref["power_mw"]:
            parts.append(f"{ref['power_mw']} mW (estimate x{ref['power_ratio']})")
        if ref["clock_mhz"]:
            parts.append(f"{ref['clock_mhz']:g} MHz")
        parts += [f"{g} {s}%" for g, s in ref["shares_percent"].items()]
        console.print(f"{ref['source']}: {', '.join(parts)}; {ref['note']}")
