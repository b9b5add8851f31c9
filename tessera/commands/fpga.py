"""`tessera fpga`: everything to run an accelerator on an FPGA board, or judge a board run."""

from __future__ import annotations

from pathlib import Path

from ..cli import add_config_options
from ..config import resolve_config
from ..console import make_console
from ._common import write_json


def register(sub) -> None:
    p = sub.add_parser(
        "fpga", help="write the Vivado project inputs and driver for a board; check a board run",
        description="Generate everything to run the configured accelerator on an FPGA board: "
                    "the Verilog of the accelerator behind AXI (tessera_top.v), a Vivado batch "
                    "script for the block design, bitstream and .hwh (build.tcl), an "
                    "out-of-context "
                    "Amaranth build plan with its XDC (pl/), the PYNQ driver (driver/), a README "
                    "with the board steps and the yosys fit check (utilization.json). Every check "
                    "(board, clock, preset, fit) runs before a file is written. With --check RUN, "
                    "judge a run directory the board driver wrote instead: outputs against the "
                    "golden model, cycles against the simulator.")
    p.add_argument("--board", default="pynq-z1", help="target board (default: pynq-z1)")
    add_config_options(p)
    p.add_argument("--clock-mhz", type=float, metavar="F",
                   help="PL clock (FCLK_CLK0) in MHz (default: the configuration's clock_mhz)")
    p.add_argument("-o", "--output", metavar="DIR", default="build/fpga",
                   help="output directory (default: build/fpga)")
    p.add_argument("--check", metavar="RUN", help="judge a board run directory instead")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    return _check(args) if args.check else _generate(args)


def _generate(args) -> int:
    from rich.table import Table

    from ..boards.flow import board_for, board_preset, prepare, write

    board = board_for(args.board)
    preset = args.preset
    if preset is None and args.config is None and args.arch is not None:
        preset = board_preset(board, args.arch)
    cfg = resolve_config(args.arch, preset, args.config, args.sets)
    if args.clock_mhz is not None:
        cfg = cfg.replace(clock_mhz=args.clock_mhz)
    console = make_console(stderr=True)
    with console.status(f"checking {cfg.arch} {cfg.config_hash} for {board.name}") as status:
        bundle = prepare(board, cfg, preset, progress=status.update)
    out = Path(args.output)
    write(bundle, out)
    util = bundle.utilization
    table = Table(title=f"{board.part} utilization (yosys synth_xilinx; limit "
                        f"{util['headroom_percent']}%)")
    for col in ("resource", "used", "available", "share"):
        table.add_column(col, justify="left" if col == "resource" else "right")
    for key, label in (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP48E1"), ("bram36", "BRAM36")):
        table.add_row(label, f"{util[key]:g}", f"{util['capacity'][key]}",
                      f"{util['percent'][key]:.1f}%")
    table.add_row("  LUT as memory", f"{util['lutram']}", "", "")
    table.add_row("  CARRY4", f"{util['carry4']}", "", "")
    out_console = make_console()
    out_console.print(table)
    out_console.print(f"wrote {out}: tessera_top.v, build.tcl, pl/, driver/, README.md, "
                      f"utilization.json ({cfg.arch} {cfg.config_hash}, {cfg.clock_mhz:g} MHz); "
                      f"next: vivado -mode batch -source {out / 'build.tcl'}")
    if args.json:
        write_json(args.json, util)
    return 0


def _check(args) -> int:
    from rich.table import Table

    from ..boards.check import check_run, load_run

    result = check_run(*load_run(args.check))
    table = Table(title=f"board run {args.check}")
    for col in ("layer", "outputs", "sim cycles"):
        table.add_column(col)
    for layer in result["layers"]:
        table.add_row(layer["name"], "match" if layer["outputs_match"] else
                      f"{layer['mismatches']} mismatches", str(layer["sim_cycles"]))
    console = make_console()
    console.print(table)
    cycles = ("equal" if result["cycles_equal"] else
              "differ (expected: the core saw contract violations)" if not result["exact"] else
              "DIFFER")
    console.print(f"cycles: board {result['rtl_cycles']}, simulator {result['sim_cycles']} at "
                  f"latency {result['latency']}: {cycles}; contract violations "
                  f"{result['violations']} (late reads {result['read_late']}, request stalls "
                  f"{result['req_stall']}, write stalls {result['write_stall']})")
    if args.json:
        write_json(args.json, result)
    return 0 if result["ok"] else 1
