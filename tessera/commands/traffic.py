"""`tessera traffic`: data moved per layer and across a chip boundary, per bottleneck ratio."""

from __future__ import annotations

from rich.table import Table

from ..cli import add_config_options, config_from_args
from ..console import make_console
from ..errors import SpecError
from ._common import write_json


def register(sub) -> None:
    p = sub.add_parser(
        "traffic", help="bottleneck ratios vs data moved per layer and across a chip boundary",
        description="For MODEL (FILE.onnx or zoo:NAME, ResNet-style: residual blocks), narrow "
                    "every convolution inside a residual branch but the branch's last by each "
                    "bottleneck ratio (bottleneck-multichip.md) and report, in int8 bytes, the "
                    "data each conv/gemm layer moves (input activations + weights + output "
                    "activations) and the tensors crossing a chip boundary after --boundary NODE "
                    "(default: the bottleneck activation nearest the middle of the MACs; a skip "
                    "connection spanning it crosses too). With --arch/--preset each layer also "
                    "gets the DRAM bytes the cycle simulator counts on that accelerator.")
    p.add_argument("model", metavar="MODEL", help="FILE.onnx or zoo:NAME")
    p.add_argument("--ratios", default="1,2,4,8,16,32",
                   help="bottleneck ratios, comma-separated (default 1,2,4,8,16,32)")
    p.add_argument("--boundary", metavar="NODE", help="the chip boundary: after this node")
    add_config_options(p)
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="plot data per layer and at the boundary")
    p.set_defaults(func=run)


def _ratios(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise SpecError(f"--ratios '{text}' is invalid: allowed is a comma-separated list of "
                        "positive integers, e.g. 1,2,4,8,16,32")
    return values


def run(args) -> int:
    from ..compiler.runtime import load_graph
    from ..compiler.traffic import plot_traffic, traffic_report

    cfg = config_from_args(args) if (args.arch or args.preset or args.config) else None
    report = traffic_report(load_graph(args.model), _ratios(args.ratios), args.boundary, cfg)
    console = make_console()
    if not console.is_terminal:
        console.width = max(console.width, 150)
    console.print(_table(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        plot_traffic(report, args.plot)
        console.print(f"wrote {args.plot}")
    return 0


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f}"


def _table(r: dict) -> Table:
    entries = r["ratios"]
    t = Table(title=f"{r['model']}: KiB moved per conv/gemm layer (int8) by bottleneck ratio; "
                    f"{len(r['narrowed'])} bottleneck convs narrowed")
    t.add_column("#", justify="right")
    t.add_column("layer")
    for e in entries:
        t.add_column(f"r={e['ratio']}", justify="right")
    for i, row in enumerate(entries[0]["layers"]):
        mark = " *" if row["name"] in r["narrowed"] else ""
        t.add_row(str(i + 1), row["name"] + mark, *(_kib(e["layers"][i]["bytes"]) for e in entries))
    t.add_section()
    t.add_row("", "all layers", *(_kib(e["bytes"]) for e in entries))
    if "arch" in r:
        t.add_row("", f"DRAM on {r['arch']} {r['config_hash']}",
                  *(_kib(sum(row["dram_bytes"] for row in e["layers"])) for e in entries))
    t.add_row("", f"boundary after {r['boundary']}",
              *(_kib(e["boundary"]["bytes"]) for e in entries))
    t.add_row("", "params (k)", *(f"{e['params'] / 1e3:,.0f}" for e in entries))
    t.add_row("", "MACs (M)", *(f"{e['macs'] / 1e6:,.1f}" for e in entries))
    crossing = ", ".join(f"{x['tensor']} {'x'.join(map(str, x['shape']))}"
                         for x in entries[0]["boundary"]["tensors"])
    t.caption = f"* narrowed by the ratio; crossing the boundary: {crossing}"
    return t
