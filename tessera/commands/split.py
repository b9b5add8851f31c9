"""`tessera split`: the LCP splitter, and what the split model costs on several accelerators."""

from __future__ import annotations

from rich.table import Table

from ..cli import add_config_options, config_from_args
from ..compiler.runtime import HostModel
from ..compiler.splitter import Link
from ..console import make_console
from ._common import write_json


def register(sub) -> None:
    p = sub.add_parser(
        "split", help="split a model into narrow branches for several devices (LCP)",
        description="Run the LCP splitter (lcp.md Procedure 1) on MODEL (FILE.onnx or zoo:NAME): "
                    "divide every layer's width by --division-factor until one branch fits a "
                    "device's memory and MAC budget (default: the model's divided by --devices), "
                    "then optionally fatten the branches by --fatten percent. Report the "
                    "parameters, MACs and per-device footprint, the bytes crossing the link per "
                    "inference against model parallelism, and the end-to-end latency and energy "
                    "when the branches run on --devices accelerator instances (the cycle "
                    "simulator per branch, the link model below). Split models must be trained: "
                    "the result has no weights. Default configuration: --preset lcp-pynq-z1.")
    p.add_argument("model", metavar="MODEL", help="FILE.onnx or zoo:NAME")
    p.add_argument("--devices", type=int, required=True, help="number of devices")
    p.add_argument("--division-factor", type=int, default=2,
                   help="width divisor per splitter step (default 2)")
    p.add_argument("--branches", type=int,
                   help="use this many branches instead of searching for them")
    p.add_argument("--fatten", type=int, default=0, metavar="PERCENT",
                   help="widen every split layer by this percentage (default 0)")
    p.add_argument("--device-memory", type=int, metavar="BYTES",
                   help="memory budget of a device (int8 weights, int32 biases, the largest "
                        "layer's activations); default: the model's / --devices")
    p.add_argument("--device-macs", type=int, metavar="MACS",
                   help="MACs per inference a device may run; default: the model's / --devices")
    link = p.add_argument_group("inter-chip link (default: the LCP paper's measured WiFi)")
    link.add_argument("--link-mbps", type=float, default=Link.bandwidth * 8 / 1e6,
                      help=f"bandwidth in Mbit/s (default {Link.bandwidth * 8 / 1e6:g})")
    link.add_argument("--link-latency-ms", type=float, default=Link.latency * 1e3,
                      help=f"latency per message in ms (default {Link.latency * 1e3:g})")
    link.add_argument("--link-nj-per-byte", type=float, default=Link.energy_per_byte * 1e9,
                      help=f"energy per byte in nJ (default {Link.energy_per_byte * 1e9:g})")
    host = p.add_argument_group("host steps")
    host.add_argument("--host-mops", type=float, default=HostModel.ops_per_s / 1e6,
                      help="host element-wise operations, millions per second (default "
                           f"{HostModel.ops_per_s / 1e6:g})")
    host.add_argument("--host-mbps", type=float, default=HostModel.bytes_per_s / 1e6,
                      help=f"host copy bandwidth in MB/s (default {HostModel.bytes_per_s / 1e6:g})")
    add_config_options(p)
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="plot link traffic and latency")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..compiler.runtime import load_graph
    from ..compiler.splitter import plot_split, split_report

    if not (args.arch or args.preset or args.config):
        args.preset = "lcp-pynq-z1"
    cfg = config_from_args(args)
    link = Link(args.link_mbps * 1e6 / 8, args.link_latency_ms / 1e3,
                args.link_nj_per_byte / 1e9)
    host = HostModel(args.host_mops * 1e6, args.host_mbps * 1e6)
    report = split_report(load_graph(args.model), args.devices, cfg, args.division_factor,
                          args.device_memory, args.device_macs, args.fatten, args.branches,
                          link, host)
    console = make_console()
    if not console.is_terminal:
        console.width = max(console.width, 150)  # pipes and logs get whole rows
    console.print(_search_table(report))
    console.print(_ways_table(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        plot_split(report, args.plot)
        console.print(f"wrote {args.plot}")
    return 0


def _search_table(r: dict) -> Table:
    b = r["search"]["budget"]
    t = Table(title=f"{r['model']}: splitter (division factor {r['division_factor']}), device "
                    f"budget {b['memory_bytes']:,} bytes and {b['macs']:,} MACs")
    for col in ("branches", "params / branch", "memory / branch", "MACs / branch", "fits"):
        t.add_column(col, justify="right")
    for s in r["search"]["trace"]:
        fits = ("yes" if s["fits_memory"] and s["fits_macs"] else
                "memory only" if s["fits_memory"] else "MACs only" if s["fits_macs"] else "no")
        t.add_row(str(s["branches"]), f"{s['params']:,}", f"{s['memory_bytes']:,}",
                  f"{s['macs']:,}", fits)
    f = f", fattened {r['fatten']}%" if r["fatten"] else ""
    t.caption = (f"{r['split_model']}: {r['branches']} branches{f}, {r['split']['params']:,} "
                 f"params and {r['split']['macs']:,} MACs (original {r['original']['params']:,} "
                 f"and {r['original']['macs']:,})")
    return t


def _ways_table(r: dict) -> Table:
    per = r["per_inference"]
    t = Table(title=f"per inference on {r['devices']} x {r['arch']} {r['config_hash']} at "
                    f"{r['clock_mhz']:g} MHz, link {r['link']['bandwidth'] * 8 / 1e6:g} Mbit/s, "
                    f"{r['link']['latency'] * 1e3:g} ms")
    cols = ("", "memory/device B", "MACs/device", "link B", "messages", "compute ms",
            "host ms", "link ms", "total ms", "energy uJ")
    for col in cols:
        t.add_column(col, justify="left" if not col else "right")
    names = {"single": "one device", "model_parallel": "model parallelism",
             "lcp": f"LCP split{r['branches']}"}
    for key, name in names.items():
        p = per[key]
        t.add_row(name, f"{p['memory_bytes']:,}", f"{p['macs']:,}", f"{p['link_bytes']:,}",
                  str(p["link_messages"]), f"{p['compute_us'] / 1e3:,.3f}",
                  f"{p['host_us'] / 1e3:,.3f}", f"{p['link_us'] / 1e3:,.3f}",
                  f"{p['total_us'] / 1e3:,.3f}", f"{p['energy_uj']:,.1f}")
    return t
