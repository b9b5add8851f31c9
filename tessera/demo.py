"""The main job, end to end on embedded defaults: compile, simulate, generate, cross-check, report.

A small CNN (int8, seeded random weights; SmartDeal codes and bases on the SmartDeal array) is
compiled for both accelerator families, simulated cycle-exactly with its energy breakdown, each
accelerator's Verilog is generated, and the whole network runs on that Verilog under cocotb and is
compared with the golden model (values) and the simulator (cycles, DRAM traffic). Then ResNet-18
is simulated on the paper-size arrays (SmartDeal against an LCP array with as many multipliers).
A report with plots goes to ``build/demo/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.table import Table

from .backends import backend
from .compiler.layers import LayerShape
from .config import PRESETS
from .console import make_console

#: The accelerators the small CNN runs on: one of each family, small enough to simulate the RTL.
DEMO_PRESETS = ("lcp-8x16", "smartdeal-small")

_PAD = (1, 1, 1, 1)
#: The demo network: 3x8x8 input; 3x3 convolutions (stride 1 and 2), a 1x1 convolution and a
#: classifier: layers both families run (SmartDeal has no pooling unit, so it downsamples by
#: stride).
NETWORK = [
    LayerShape("conv1", "conv", C=3, K=16, H=8, W=8, R=3, S=3, pads=_PAD, relu=True),
    LayerShape("conv2", "conv", C=16, K=32, H=8, W=8, R=3, S=3, stride=2, pads=_PAD, relu=True),
    LayerShape("conv3", "conv", C=32, K=32, H=4, W=4, R=1, S=1, relu=True),
    LayerShape("conv4", "conv", C=32, K=64, H=4, W=4, R=3, S=3, stride=2, pads=_PAD, relu=True),
    LayerShape("conv5", "conv", C=64, K=64, H=2, W=2, R=3, S=3, stride=2, pads=_PAD, relu=True),
    LayerShape("fc", "fc", C=64, K=10, H=1, W=1, R=1, S=1),
]

#: The paper-scale comparison: a zoo network on smartdeal-paper and equal-multiplier LCP arrays.
PAPER_NETWORK = "resnet18"


def plot_energy(reports: dict, path: Path) -> None:
    """Per-layer energy of the small CNN, one panel per accelerator."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(5 * len(reports), 3.5), dpi=120,
                             squeeze=False)
    for ax, (preset, report) in zip(axes[0], reports.items()):
        names = [l.name for l in report.layers]
        bottom = np.zeros(len(names))
        for cat, color in (("dram", "#c44e52"), ("sram", "#4c72b0"), ("rf", "#55a868"),
                           ("compute", "#8172b2")):
            vals = np.array([l.energy_pj[cat] for l in report.layers]) / 1e3
            ax.bar(names, vals, bottom=bottom, label=cat if cat == "compute" else cat.upper(),
                   color=color)
            bottom += vals
        ax.set_ylabel("energy per inference (nJ)")
        ax.set_title(f"{preset} ({report.energy_table})", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _run_accelerator(console, preset: str, out: Path, simulator: str) -> dict:
    """Compile, simulate, generate and RTL-check the demo network on one preset."""
    from .crosscheck import compare, random_program
    from .hdl.top import verilog_for

    cfg = PRESETS[preset].build()
    be = backend(cfg)
    console.rule(f"{preset}: {PRESETS[preset].description} ({cfg.config_hash})")
    with console.status("compiling the network"):
        prog = random_program(cfg, NETWORK, seed=0)
        prog.save(out / "program")
    console.print(f"[green]compiled[/] {len(NETWORK)} layers: {prog.manifest['steps']:,} steps, "
                  f"{prog.manifest['image_size']:,}-byte image -> {out / 'program'}")

    t0 = time.perf_counter()
    report = be.simulate_program(prog)
    sim_s = time.perf_counter() - t0
    console.print(report.table(title=f"cycle-exact simulation ({sim_s * 1e3:.1f} ms)"))

    with console.status("generating Verilog"):
        name, text, _ = verilog_for(cfg)
        (out / f"{name}.v").write_text(text)
        (out / "config.json").write_text(cfg.to_json())
    console.print(f"[green]generated[/] {out / (name + '.v')} ({len(text.splitlines()):,} lines)")

    with console.status(f"running the network on the Verilog ({simulator}, cocotb; "
                        f"{report.total.cycles:,} cycles)"):
        t0 = time.perf_counter()
        check, = compare(cfg, [("network", prog)], out / "rtl", simulator)
        rtl_s = time.perf_counter() - t0
    check["rtl_seconds"] = round(rtl_s, 1)
    return {"cfg": cfg, "report": report, "sim_seconds": sim_s, "check": check}


def _agreement_table(runs: dict) -> Table:
    t = Table(title="The whole network on the RTL vs the simulator and the golden model")
    for col in ("accelerator", "RTL cycles", "simulated cycles", "outputs vs golden",
                "DRAM bytes read/written (RTL | sim)", "RTL run"):
        t.add_column(col, justify="left" if col == "accelerator" else "right")
    for preset, r in runs.items():
        c = r["check"]
        rd, wr = c["dram_read_bytes"], c["dram_write_bytes"]
        t.add_row(preset, f"{c['rtl_cycles']:,}", f"{c['sim_cycles']:,}",
                  "bit-exact" if c["outputs_match"] else "[red]DIFFER",
                  f"{rd['rtl']:,}/{wr['rtl']:,} | {rd['sim']:,}/{wr['sim']:,}",
                  f"{c['rtl_seconds']:.0f} s")
    return t


def _agrees(check: dict) -> bool:
    return check["outputs_match"] and check["cycles_equal"] and check["dram_traffic_equal"]


def run(out_dir: str | Path = "build/demo", simulator: str = "icarus") -> int:
    from .commands.reproduce import compare_table
    from .reproduce import compare_sd_lcp

    console = make_console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = {p: _run_accelerator(console, p, out / p, simulator) for p in DEMO_PRESETS}
    console.print(_agreement_table(runs))

    console.rule(f"Paper scale: {PAPER_NETWORK} on smartdeal-paper vs equal-multiplier LCP arrays")
    with console.status(f"simulating {PAPER_NETWORK} (four runs)"):
        t0 = time.perf_counter()
        paper = compare_sd_lcp(out / PAPER_NETWORK, PAPER_NETWORK)
        paper_s = time.perf_counter() - t0
    console.print(compare_table(paper))
    console.print(f"simulated in {paper_s:.1f} s; "
                  + "; ".join(f"left out: {e['layer']} ({e['reason']})" for e in paper["excluded"]))

    plot_energy({p: r["report"] for p, r in runs.items()}, out / "energy.png")
    ok = all(_agrees(r["check"]) for r in runs.values())
    summary = {"network": [s.describe() for s in NETWORK],
               "accelerators": {p: {"config_hash": r["cfg"].config_hash,
                                    "simulation": r["report"].to_json(),
                                    "rtl_check": r["check"]} for p, r in runs.items()},
               "paper_scale": {k: paper[k] for k in ("network", "results", "excluded")}}
    (out / "report.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (out / "report.md").write_text(_markdown(runs, paper))
    console.print(f"[green]report[/] {out / 'report.md'}, {out / 'report.json'}, "
                  f"{out / 'energy.png'}, {out / PAPER_NETWORK / 'compare.png'}")
    console.rule("[green]RTL, simulator and golden model agree" if ok
                 else "[red]DISAGREEMENT: see the table above")
    return 0 if ok else 1


def _markdown(runs: dict, paper: dict) -> str:
    lines = ["# Tessera demo", "",
             f"A {len(NETWORK)}-layer CNN ({', '.join(s.describe() for s in NETWORK[:1])}, ...) "
             "with seeded random weights on one accelerator of each family.", "",
             "| accelerator | config | MACs | cycles | latency us | energy nJ | DRAM share "
             "| RTL cycles | outputs |", "|---|---|---|---|---|---|---|---|---|"]
    for p, r in runs.items():
        rep, c = r["report"], r["check"]
        t = rep.total
        lines.append(f"| {p} | `{r['cfg'].config_hash}` | {t.macs:,} | {t.cycles:,} | "
                     f"{rep.latency_us(t.cycles):,.1f} | {t.energy_pj['total'] / 1e3:,.1f} | "
                     f"{t.energy_pj['dram'] / t.energy_pj['total']:.0%} | {c['rtl_cycles']:,} | "
                     f"{'bit-exact' if c['outputs_match'] else 'DIFFER'} |")
    lines += ["", "![energy per layer](energy.png)", "",
              f"## {paper['network']} at paper scale", "",
              "| run | cycles | latency ms | energy uJ | DRAM MB |", "|---|---|---|---|---|"]
    for name, r in paper["results"].items():
        lines.append(f"| {name} | {r['cycles']:,} | {r['latency_us'] / 1e3:.3f} | "
                     f"{r['energy_pj'] / 1e6:.1f} | {r['dram_bytes'] / 1e6:.2f} |")
    lines += ["", f"![comparison]({paper['network']}/compare.png)", ""]
    return "\n".join(lines)
