"""`tessera simulate`: cycles, latency, utilization and energy, per layer and in total."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from ..cli import add_config_options, config_from_args
from ..compiler.runtime import HostModel
from ..console import make_console
from ..errors import SpecError
from ._common import layer_shapes, write_json


def register(sub) -> None:
    p = sub.add_parser(
        "simulate", help="predict cycles, latency and energy of layers, a topology, a program "
                           "or a model",
        description="Simulate cycle-exactly (the RTL takes the same number of cycles) and report, "
                    "per layer and in total: cycles, latency at the configured clock, MACs, "
                    "utilization and energy with its DRAM/SRAM/RF/compute breakdown. Give layers "
                    "with --layer SPEC, a SCALE-Sim topology CSV with --topology (or as SOURCE), "
                    "a compiled PROGRAM_DIR, or a model (FILE.onnx or zoo:NAME): its conv/gemm "
                    "layers run on the array (one program per chain of them) and every other "
                    "operator is a host step, reported with its operations, bytes and estimated "
                    "time (docs/runtime.md). --set dram_latency=.. and clock_mhz=.. may change a "
                    "program's memory system and clock; hardware fields must match the program.")
    add_config_options(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--layer", metavar="SPEC", action="append", help="a layer (repeatable)")
    src.add_argument("--topology", metavar="CSV", help="a SCALE-Sim topology file")
    src.add_argument("program", metavar="SOURCE", nargs="?",
                     help="a compiled PROGRAM_DIR, a model (FILE.onnx, zoo:NAME) or a "
                          "topology FILE.csv")
    host = p.add_argument_group("host steps (models)")
    host.add_argument("--host-mops", type=float, default=HostModel.ops_per_s / 1e6,
                      help="host element-wise operations, millions per second (default "
                           f"{HostModel.ops_per_s / 1e6:g}: a 650 MHz Cortex-A9)")
    host.add_argument("--host-mbps", type=float, default=HostModel.bytes_per_s / 1e6,
                      help=f"host copy bandwidth in MB/s (default {HostModel.bytes_per_s / 1e6:g})")
    host.add_argument("--unsupported", choices=["error", "host"], default="error",
                      help="a model layer the accelerator cannot run (e.g. a 7x7 kernel on "
                           "SmartDeal): stop with an error (default) or run it as a host step, "
                           "priced at 2 operations per MAC and listed with its reason")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=run)


def is_model(source: str) -> bool:
    return source.startswith("zoo:") or source.lower().endswith(".onnx")


def run(args) -> int:
    from ..backends import backend

    if args.program and args.program.lower().endswith(".csv"):
        args.topology, args.program = args.program, None
    if args.program and is_model(args.program):
        return _run_model(args)
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
            from ..compiler.topology import read_topology

            layers = read_topology(args.topology)
            if not layers:
                raise SpecError(f"topology '{args.topology}' holds no layers")
            report = backend(cfg).simulate_topology(cfg, layers)
            title = Path(args.topology).name
        else:
            report = backend(cfg).simulate_shapes(cfg, layer_shapes(args.layer))
            title = "layers"
    make_console().print(report.table(title=f"{title}: {cfg.arch} {cfg.config_hash} at "
                                       f"{cfg.clock_mhz:g} MHz, energy {report.energy_table}"))
    if args.json:
        write_json(args.json, report.to_json())
    return 0


def _run_model(args) -> int:
    """A graph: its accelerator segments simulated, its host steps priced."""
    from ..compiler.runtime import load_graph, simulate_graph

    graph = load_graph(args.program)
    cfg = config_from_args(args)
    report, host, segs = simulate_graph(graph, cfg, HostModel(args.host_mops * 1e6,
                                                              args.host_mbps * 1e6),
                                        unsupported_on_host=args.unsupported == "host")
    console = make_console()
    console.print(report.table(title=f"{graph.name}: {cfg.arch} {cfg.config_hash} at "
                                     f"{cfg.clock_mhz:g} MHz, energy {report.energy_table}, "
                                     f"{len(segs)} program(s)"))
    t = Table(title=f"host steps at {args.host_mops:g} Mop/s and {args.host_mbps:g} MB/s")
    for col in ("step", "op", "ops", "bytes", "time us"):
        t.add_column(col, justify="left" if col in ("step", "op") else "right")
    for st in host["steps"]:
        t.add_row(st["name"], st["kind"], f"{st['ops']:,}", f"{st['bytes']:,}",
                  f"{st['time_us']:,.2f}")
    tot = host["total"]
    t.add_section()
    t.add_row("total", "", f"{tot['ops']:,}", f"{tot['bytes']:,}", f"{tot['time_us']:,.2f}")
    console.print(t)
    for st in host["steps"]:
        if "reason" in st:
            console.print(f"on the host: {st['name']}: {st['reason']}")
    accel_us = report.latency_us(report.total.cycles)
    console.print(f"end to end: {accel_us:,.2f} us on the accelerator + {tot['time_us']:,.2f} us "
                  f"of host steps = {accel_us + tot['time_us']:,.2f} us")
    if args.json:
        data = report.to_json()
        data.update(model=graph.name, segments=segs, host=host,
                    end_to_end_us=accel_us + tot["time_us"])
        write_json(args.json, data)
    return 0
