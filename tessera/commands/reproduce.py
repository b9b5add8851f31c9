"""`tessera reproduce`: the papers' hardware evaluations, as tables, JSON and plots."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from ..console import make_console


def register(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="reproduce the papers' hardware evaluations (tables, JSON, plots)",
        description="Reproduce the papers' hardware comparisons with Tessera's simulators and "
                    "write results.json and PNG plots into -o DIR (docs/reproduce.md explains "
                    "every difference from the papers). smartdeal: SmartDeal VI-D, its "
                    "accelerator against DianNao, Cambricon-X, SCNN and Bit-pragmatic on seven "
                    "networks (Figures 8-10). lcp: LCP III-B, the adder-tree array against a "
                    "systolic array of the same size on batch-1 layers. compare: SmartDeal "
                    "against LCP with the same number of multipliers on a zoo network.")
    which = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)

    sd = which.add_parser(
        "smartdeal", help="SmartDeal VI-D: five accelerators on seven networks",
        description="Run the seven networks of SmartDeal's Figures 8-10 on the SmartDeal "
                    "accelerator (smartdeal-paper preset, estimate mode) and four baselines "
                    "with the same multipliers and SRAM (docs/baselines.md). Compression "
                    "statistics come from decomposing random, untrained weights of sampled "
                    "layers; the accelerators run the paper's sparsity (Tables III/IV) unless "
                    "--stats random or --sparsity says otherwise. FC layers and layers the "
                    "SmartDeal array cannot run are left out of every accelerator and listed.")
    sd.add_argument("--networks", metavar="LIST",
                    help="comma-separated zoo networks (default: the paper's seven)")
    sd.add_argument("--stats", choices=("paper", "random"), default="paper",
                    help="weight sparsity the accelerators run: the paper's (default) or the "
                         "random-weight decomposition's")
    sd.add_argument("--sparsity", type=float, metavar="F",
                    help="weight (Ce row) sparsity for every network, overriding --stats")
    sd.add_argument("--relu-sparsity", type=float, default=None, metavar="F",
                    help="zero fraction of ReLU outputs (SCNN; default 0.5)")
    sd.add_argument("--bit-density", type=float, default=None, metavar="F",
                    help="one-bits of activations (Bit-pragmatic; default 0.2)")
    sd.add_argument("--digit-density", type=float, default=None, metavar="F",
                    help="non-zero Booth digits of activations (SmartDeal; default 0.34)")
    sd.add_argument("--fast", action="store_true",
                    help="a smaller decomposition sample (2 layers, 5 iterations)")
    sd.add_argument("--seed", type=int, default=0, help="seed of the random weights and layers")
    sd.add_argument("-o", "--output", metavar="DIR", default="build/reproduce/smartdeal",
                    help="output directory (default: %(default)s)")
    sd.set_defaults(func=run_smartdeal)

    lcp = which.add_parser(
        "lcp", help="LCP III-B: adder-tree array vs a systolic array of the same size",
        description="Simulate batch-1 FC and conv layers on the LCP preset (32x64 cells, "
                    "column adder trees) and on 32x64 systolic arrays (OS, WS, IS) with the "
                    "same clock and DRAM port, with the preset's memory and with a wide one.")
    lcp.add_argument("-o", "--output", metavar="DIR", default="build/reproduce/lcp",
                     help="output directory (default: %(default)s)")
    lcp.set_defaults(func=run_lcp)

    cmp_ = which.add_parser(
        "compare", help="SmartDeal vs LCP with the same number of multipliers",
        description="The smartdeal-paper preset (8K bit-serial MACs) against LCP arrays of "
                    "32x32 8-bit cells (1K multipliers: the SmartDeal paper's equivalence) "
                    "and 32x64 (2K: SmartDeal's dense Booth peak) with the same clock, DRAM "
                    "port and at most the same SRAM, on a zoo network: latency, energy with "
                    "its breakdown, DRAM traffic.")
    cmp_.add_argument("--network", default="resnet18", help="zoo network (default: %(default)s)")
    cmp_.add_argument("--row-sparsity", type=float, default=0.5, metavar="F",
                      help="Ce row sparsity of the second SmartDeal run (default: %(default)s)")
    cmp_.add_argument("-o", "--output", metavar="DIR", default="build/reproduce/compare",
                      help="output directory (default: %(default)s)")
    cmp_.set_defaults(func=run_compare)


def _progress(console):
    status = console.status("starting")
    status.start()
    return status, status.update


def _recording_console():
    """The output console; it also records, so the tables can be saved as tables.txt."""
    console = make_console()
    console.record = True
    return console


def _save_tables(console, out: str) -> None:
    path = Path(out) / "tables.txt"
    console.print(f"wrote {path.parent}/: results.json, tables.txt and plots (see "
                  "docs/reproduce.md)")
    path.write_text(console.export_text())


def _x(v) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def run_smartdeal(args) -> int:
    from ..reproduce import ACCELERATORS, LABELS, PAPER_RANGES, reproduce_smartdeal
    from ..sim.baselines import DEFAULT_ACT_SPARSITY, DEFAULT_BIT_DENSITY

    console = _recording_console()
    status, say = _progress(make_console(stderr=True))
    try:
        data = reproduce_smartdeal(
            args.output,
            networks=[n.strip() for n in args.networks.split(",")] if args.networks else None,
            stats=args.stats, sparsity=args.sparsity,
            relu_sparsity=(DEFAULT_ACT_SPARSITY if args.relu_sparsity is None
                           else args.relu_sparsity),
            bit_density=DEFAULT_BIT_DENSITY if args.bit_density is None else args.bit_density,
            digit_density=args.digit_density, fast=args.fast, seed=args.seed, progress=say)
    finally:
        status.stop()
    nets = data["networks"]

    t = Table(title="Compression (Tables III/IV): paper vs SmartDeal decomposition of RANDOM, "
                    "untrained weights (sampled layers)")
    for col in ("network", "dataset", "paper CR", "paper spar.", "sampled", "CR", "W zeros",
                "Ce rows 0", "Ce bits/el", "rel. err", "run at*"):
        t.add_column(col, justify="left" if col in ("network", "dataset") else "right")
    for n in nets:
        c, p = n["compression"], n["paper"] or {}
        t.add_row(n["label"], n["dataset"],
                  f"{p['compression_rate']:.1f}x" if p.get("compression_rate") else "-",
                  f"{p['sparsity']:.1%}" if p.get("sparsity") is not None else "-",
                  str(len(c["sampled_layers"])),
                  f"{c['compression_rate']:.1f}x" if "compression_rate" in c else "-",
                  f"{c['w_sparsity']:.1%}" if "w_sparsity" in c else "-",
                  f"{c['row_sparsity']:.1%}" if "row_sparsity" in c else "-",
                  f"{c['ce_bits_per_element']:.2f}" if "ce_bits_per_element" in c else "-",
                  f"{c['rel_err']:.3f}" if "rel_err" in c else "-",
                  f"{n['sparsity']:.1%} {n['sparsity_source']}")
    console.print(t)
    console.print("* the weight (Ce row) sparsity the accelerators run: "
                  + "; ".join(sorted({f"{n['sparsity_source']} = {n['sparsity_note']}"
                                      for n in nets})))

    for key, title in (("energy_efficiency", "Energy efficiency, normalized to DianNao (Fig. 8)"),
                       ("speedup", "Speedup, normalized to DianNao (Fig. 10)"),
                       ("dram_accesses", "DRAM accesses, normalized to SmartDeal (Fig. 9)")):
        t = Table(title=title)
        t.add_column("network")
        for acc in ACCELERATORS:
            t.add_column(LABELS[acc], justify="right")
        for n in nets:
            t.add_row(n["label"], *(_x(n["accelerators"][acc][key])
                                    if n["accelerators"][acc] else "n/a" for acc in ACCELERATORS))
        console.print(t)

    t = Table(title="DRAM traffic by kind, MB: weights / input / output activations")
    t.add_column("network")
    for acc in ACCELERATORS:
        t.add_column(LABELS[acc], justify="right")
    for n in nets:
        cells = []
        for acc in ACCELERATORS:
            a = n["accelerators"][acc]
            d = a["dram_split"] if a else None
            cells.append("n/a" if not d else " / ".join(f"{d[k] / 1e6:.1f}" for k in
                                                        ("weights", "inputs", "outputs")))
        t.add_row(n["label"], *cells)
    console.print(t)

    s = data["summary"]
    t = Table(title="Against the paper (section VI-D)")
    for col in ("figure", "paper", "Tessera"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    rows = (("energy_efficiency", "SmartDeal energy efficiency over DianNao"),
            ("speedup", "SmartDeal speedup over DianNao"),
            ("compute_speedup", "  the same, compute phases only (DRAM time left out)"),
            ("dram_accesses", "baselines' DRAM accesses over SmartDeal"))
    for key, what in rows:
        lo, hi = PAPER_RANGES.get(key, (None, None))
        got = s[key]
        t.add_row(what, f"{lo:g}-{hi:g}x" if lo else "",
                  f"{got[0]:.2f}-{got[1]:.2f}x" if got else "n/a")
    for acc, paper in data["paper"]["average_speedup"].items():
        t.add_row(f"SmartDeal average speedup over {LABELS[acc]}", f"{paper:g}x",
                  _x(s["average_speedup"][acc]))
    console.print(t)

    t = Table(title="Layers left out of every accelerator")
    for col in ("network", "layer", "shape", "reason"):
        t.add_column(col)
    for n in nets:
        for e in n["excluded"]:
            t.add_row(n["label"], e["layer"], e["shape"], e["reason"])
        for acc, why in n["skipped"].items():
            t.add_row(n["label"], f"(all, on {LABELS[acc]})", "", why)
    console.print(t)
    _save_tables(console, args.output)
    return 0


def run_lcp(args) -> int:
    from ..reproduce import DATAFLOWS, reproduce_lcp

    console = _recording_console()
    status, say = _progress(make_console(stderr=True))
    try:
        data = reproduce_lcp(args.output, progress=say)
    finally:
        status.stop()
    over = data["pipeline_overhead_cycles"]
    for mem, d in data["memories"].items():
        cfg = d["lcp_config"]
        t = Table(title=f"{data['array'][0]}x{data['array'][1]} at {d['clock_mhz']:g} MHz, "
                        f"batch 1, {mem} memory ({cfg['dram_width']} B/cycle, latency "
                        f"{cfg['dram_latency']}): cycles (utilization)")
        t.add_column("layer")
        t.add_column("MACs", justify="right")
        t.add_column("LCP trees", justify="right")
        for df in DATAFLOWS:
            t.add_column(f"systolic {df.upper()}", justify="right")
        t.add_column("LCP vs best", justify="right")
        for r in d["layers"]:
            t.add_row(r["layer"], f"{r['macs']:,}",
                      *(f"{r[a]['cycles']:,} ({r[a]['utilization']:.1%})"
                        for a in ("lcp", *DATAFLOWS)),
                      f"{r['lcp_speedup']:.2f}x ({r['best_systolic'].upper()})")
        console.print(t)
    console.print(f"pipeline overhead per block or fold: LCP trees {over['lcp']} cycles, "
                  f"systolic OS {over['os']}, WS/IS {over['ws']}")
    _save_tables(console, args.output)
    return 0


def compare_table(data: dict) -> Table:
    """The SmartDeal-vs-LCP results of compare_sd_lcp as one table."""
    t = Table(title=f"{data['network']} ({data['layers_run']} layers): SmartDeal vs LCP "
                    "(8K bit-serial = 1K 8-bit multipliers), same clock, DRAM and energy table")
    for col in ("run", "mults (8-bit eq.)", "SRAM KiB", "cycles", "latency ms", "energy uJ",
                "DRAM", "SRAM", "RF", "compute", "DRAM MB"):
        t.add_column(col, justify="left" if col == "run" else "right")
    for name, r in data["results"].items():
        e = r["energy_breakdown_pj"]
        tot = r["energy_pj"] or 1.0
        t.add_row(name, f"{r['multipliers_8bit_equivalent']:,}", f"{r['sram_bytes'] / 1024:,.0f}",
                  f"{r['cycles']:,}", f"{r['latency_us'] / 1e3:.3f}", f"{r['energy_pj'] / 1e6:.1f}",
                  *(f"{e[c] / tot:.0%}" for c in ("dram", "sram", "rf", "compute")),
                  f"{r['dram_bytes'] / 1e6:.2f}")
    return t


def run_compare(args) -> int:
    from ..reproduce import compare_sd_lcp

    console = _recording_console()
    status, say = _progress(make_console(stderr=True))
    try:
        data = compare_sd_lcp(args.output, network=args.network, row_sparsity=args.row_sparsity,
                              progress=say)
    finally:
        status.stop()
    t = compare_table(data)
    console.print(t)
    for e in data["excluded"]:
        console.print(f"left out of all: {e['layer']} ({e['shape']}): {e['reason']}")
    _save_tables(console, args.output)
    return 0
