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
    p.add_argument("--compare", metavar="PRESET|FILE", action="append", default=[],
                   help="also run the same layers, topology or model on another configuration "
                        "(a preset name or a .json/.toml config file; repeatable) and print the "
                        "totals side by side: latency, energy, DRAM traffic, each as a ratio to "
                        "the first configuration's, e.g. --preset smartdeal-paper --compare "
                        "lcp-32x32-1ghz")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=run)


def is_model(source: str) -> bool:
    return source.startswith("zoo:") or source.lower().endswith(".onnx")


def run(args) -> int:
    from ..backends import backend

    if args.program and args.program.lower().endswith(".csv"):
        args.topology, args.program = args.program, None
    compare = [_compare_config(spec) for spec in args.compare]
    if args.program and is_model(args.program):
        return _run_model(args, compare)
    if args.program:
        from ..compiler.program import Program

        if compare:
            raise SpecError("--compare needs layers, a topology or a model: a compiled "
                            f"program ('{args.program}') runs only on the configuration it "
                            "was compiled for")

        prog = Program.load(args.program)
        cfg = prog.config
        if args.arch or args.preset or args.config or args.sets:
            if not (args.preset or args.config):
                cfg = cfg.with_overrides(args.sets)
            else:
                cfg = config_from_args(args)
            prog.check_config(cfg)
        reports = [backend(cfg).simulate_program(prog, cfg)]
        title = f"{args.program}"
    else:
        cfg = config_from_args(args)
        if args.topology:
            from ..compiler.topology import read_topology

            layers = read_topology(args.topology)
            if not layers:
                raise SpecError(f"topology '{args.topology}' holds no layers")
            reports = [backend(c).simulate_topology(c, layers) for c in (cfg, *compare)]
            title = Path(args.topology).name
        else:
            shapes = layer_shapes(args.layer)
            reports = [backend(c).simulate_shapes(c, shapes) for c in (cfg, *compare)]
            title = "layers"
    console = make_console()
    for c, r in zip((cfg, *compare), reports):
        console.print(r.table(title=f"{title}: {c.arch} {c.config_hash} at {c.clock_mhz:g} MHz, "
                                    f"energy {r.energy_table}"))
    data = reports[0].to_json()
    if compare:
        rows = [comparison_row(label, r) for label, r in
                zip(_labels(args), reports)]
        console.print(comparison_table(title, rows))
        data["compare"] = [{**row, "report": r.to_json()} for row, r in zip(rows[1:], reports[1:])]
    if args.json:
        write_json(args.json, data)
    return 0


def _compare_config(spec: str):
    """A --compare value: a preset name, or a configuration file."""
    from ..config import PRESETS, load_config

    if spec in PRESETS:
        return PRESETS[spec].build()
    if Path(spec).suffix.lower() in (".json", ".toml"):
        return load_config(spec)
    raise SpecError(f"--compare '{spec}' is invalid: allowed is a preset name "
                    f"({', '.join(PRESETS)}) or a .json/.toml configuration file")


def _labels(args) -> list[str]:
    first = args.preset or args.config or args.arch
    if args.sets:
        first += " " + " ".join(f"--set {s}" for s in args.sets)
    return [first, *args.compare]


def comparison_row(label: str, report, host_us: float = 0.0) -> dict:
    """One configuration's totals for the comparison table and its JSON."""
    t = report.total
    accel_us = report.latency_us(t.cycles)
    return {"label": label, "arch": report.arch, "config_hash": report.config_hash,
            "peak_macs_per_cycle": report.peak_macs_per_cycle, "cycles": int(t.cycles),
            "accelerator_us": accel_us, "host_us": host_us, "end_to_end_us": accel_us + host_us,
            "energy_uj": float(t.energy_pj.get("total", 0.0)) / 1e6,
            "dram_bytes": int(t.events.get("dram.read_bytes", 0)
                              + t.events.get("dram.write_bytes", 0)),
            "utilization": report.utilization(t)}


def comparison_table(title: str, rows: list[dict]) -> Table:
    """Totals side by side; ratios (x) are to the first row. Energy and DRAM traffic are the
    accelerator's; host steps add time only."""
    base = rows[0]
    host = any(row["host_us"] for row in rows)
    t = Table(title=f"{title}: comparison (x: this / {base['label']})")
    cols = ["configuration", "arch", "MAC/cycle", "accel us", "x"]
    cols += ["host us", "total us"] if host else []
    cols += ["energy uJ", "x", "DRAM MB", "x", "util"]
    for col in cols:
        left = col in ("configuration", "arch")
        t.add_column(col, justify="left" if left else "right", no_wrap=left)

    def ratio(row, key):
        return f"{row[key] / base[key]:.2f}" if base[key] else "-"
    for row in rows:
        t.add_row(row["label"], row["arch"], f"{row['peak_macs_per_cycle']:,}",
                  f"{row['accelerator_us']:,.2f}",
                  ratio(row, "accelerator_us"),
                  *([f"{row['host_us']:,.2f}", f"{row['end_to_end_us']:,.2f}"] if host else []),
                  f"{row['energy_uj']:,.2f}", ratio(row, "energy_uj"),
                  f"{row['dram_bytes'] / 1e6:,.3f}", ratio(row, "dram_bytes"),
                  f"{row['utilization']:.1%}")
    return t


def _run_model(args, compare) -> int:
    """A graph: its accelerator segments simulated, its host steps priced; on each --compare
    configuration too."""
    from ..compiler.runtime import load_graph

    graph = load_graph(args.program)
    cfg = config_from_args(args)
    console = make_console()
    runs = [_model_on(graph, c, args, console) for c in (cfg, *compare)]
    data = runs[0][0]
    if compare:
        rows = [comparison_row(label, report, host["total"]["time_us"])
                for label, (_, report, host) in zip(_labels(args), runs)]
        console.print(comparison_table(graph.name, rows))
        data["compare"] = [{**row, "report": d} for row, (d, _, _) in zip(rows[1:], runs[1:])]
    if args.json:
        write_json(args.json, data)
    return 0


def _model_on(graph, cfg, args, console):
    """Simulate ``graph`` on ``cfg`` and print its tables: (JSON data, SimReport, host report)."""
    from ..compiler.runtime import simulate_graph

    report, host, segs = simulate_graph(graph, cfg, HostModel(args.host_mops * 1e6,
                                                              args.host_mbps * 1e6),
                                        unsupported_on_host=args.unsupported == "host")
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
    data = report.to_json()
    data.update(model=graph.name, segments=segs, host=host,
                end_to_end_us=accel_us + tot["time_us"])
    return data, report, host
