"""`tessera simulate`: cycles, latency, utilization and energy, per layer and in total."""

from __future__ import annotations

from pathlib import Path

from ..console import make_console

from ..cli import add_config_options, config_from_args
from ..errors import SpecError
from ._common import layer_shapes, write_json


def register(sub) -> None:
    p = sub.add_parser(
        "simulate", help="predict cycles, latency and energy of layers, a topology or a program",
        description="Simulate cycle-exactly (the RTL takes the same number of cycles) and report, "
                    "per layer and in total: cycles, latency at the configured clock, MACs, "
                    "utilization and energy with its DRAM/SRAM/RF/compute breakdown. Give layers "
                    "with --layer SPEC, a SCALE-Sim topology CSV with --topology, or a compiled "
                    "PROGRAM_DIR. --set dram_latency=.. and clock_mhz=.. may change a program's "
                    "memory system and clock; hardware fields must match the program.")
    add_config_options(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--layer", metavar="SPEC", action="append", help="a layer (repeatable)")
    src.add_argument("--topology", metavar="CSV", help="a SCALE-Sim topology file")
    src.add_argument("program", metavar="PROGRAM_DIR", nargs="?", help="a compiled program")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..backends import backend

    if args.program:
        from ..compiler.program import Program

        prog = Program.load(args.program)
        cfg = prog.config
        if args.arch or args.preset or args.config or args.sets:
            if not (args.preset or args.config):
                cfg = cfg.with_overrides(args.sets)
            else:
                cfg = config_from_args(args)
            prog.check_config(cfg)
        report = backend(cfg).simulate_program(prog, cfg)
        title = f"{args.program}"
    else:
        cfg = config_from_args(args)
        if args.topology:
            from ..compiler.layers import topology_shapes
            from ..compiler.topology import read_topology

            shapes = topology_shapes(read_topology(args.topology))
            title = Path(args.topology).name
        else:
            shapes = layer_shapes(args.layer)
            title = "layers"
        if not shapes:
            raise SpecError("nothing to simulate: no layers given")
        report = backend(cfg).simulate_shapes(cfg, shapes)
    make_console().print(report.table(title=f"{title}: {cfg.arch} {cfg.config_hash} at "
                                       f"{cfg.clock_mhz:g} MHz, energy {report.energy_table}"))
    if args.json:
        write_json(args.json, report.to_json())
    return 0
