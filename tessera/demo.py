"""The main job, end to end on embedded defaults: compile, simulate, generate, cross-check, report.

A small CNN (int8, seeded random weights) is compiled for the LCP array, simulated cycle-exactly
with its energy breakdown, its accelerator's Verilog is generated, one layer runs on that Verilog
under cocotb and is compared with the golden model and the simulator, and a report with a plot of
the per-layer energy goes to ``build/demo/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from .console import make_console
from rich.table import Table

from .backends import backend, golden_outputs
from .compiler.layers import LayerShape, random_quant_layer
from .config import PRESETS

PRESET = "lcp-8x16"

#: The demo network: 3x16x16 input, two conv/ReLU/pool stages, a 1x1 conv, a classifier.
NETWORK = [
    LayerShape("conv1", "conv", C=3, K=16, H=16, W=16, R=3, S=3, pads=(1,) * 4, relu=True,
               pool=True),
    LayerShape("conv2", "conv", C=16, K=32, H=8, W=8, R=3, S=3, pads=(1,) * 4, relu=True,
               pool=True),
    LayerShape("conv3", "conv", C=32, K=32, H=4, W=4, R=1, S=1, relu=True),
    # The classifier is a 4x4 convolution over the whole map: a flatten + FC without moving data.
    LayerShape("fc", "fc", C=32, K=10, H=4, W=4, R=4, S=4),
]

#: The layer run on the RTL (a 3x3 conv with padding, ReLU and pooling).
RTL_LAYER = 1


def plot_energy(report, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [l.name for l in report.layers]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    bottom = np.zeros(len(names))
    for cat, color in (("dram", "#c44e52"), ("sram", "#4c72b0"), ("rf", "#55a868"),
                       ("compute", "#8172b2")):
        vals = np.array([l.energy_pj[cat] for l in report.layers]) / 1e3
        ax.bar(names, vals, bottom=bottom, label=cat.upper() if cat != "compute" else "compute",
               color=color)
        bottom += vals
    ax.set_ylabel("energy per inference (nJ)")
    ax.set_title(f"{report.arch} {report.config_hash}: energy by layer ({report.energy_table})")
    ax.legend(frameon=False, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(out_dir: str | Path = "build/demo", simulator: str = "icarus") -> int:
    from .hdl.top import verilog_for
    from .sim.rtl.runner import run_programs

    console = make_console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = PRESETS[PRESET].build()
    be = backend(cfg)
    console.rule(f"Tessera demo: {PRESET} ({cfg.rows}x{cfg.cols} LCP array, {cfg.config_hash})")

    with console.status("compiling the network"):
        rng = np.random.default_rng(0)
        layers = [random_quant_layer(s, rng) for s in NETWORK]
        x = rng.integers(-128, 128, NETWORK[0].input_shape, dtype=np.int8)
        prog = be.compile(cfg, layers, x)
        prog.save(out / "program")
    console.print(f"[green]compiled[/] {len(layers)} layers: {prog.manifest['steps']:,} steps, "
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

    # One layer on the RTL: its program holds that layer and the golden input it would receive.
    gold = golden_outputs(prog)
    layer = layers[RTL_LAYER]
    single = be.compile(cfg, [layer], gold[RTL_LAYER - 1])
    with console.status(f"running {layer.shape.name} on the Verilog ({simulator}, cocotb)"):
        t0 = time.perf_counter()
        rtl, = run_programs(cfg, [(layer.shape.name, single, cfg.dram_latency, 10 ** 7)],
                            out / "rtl", simulator)
        rtl_s = time.perf_counter() - t0
    sim_single = be.simulate_program(single).total.cycles
    rtl_out = be.read_outputs(single, rtl.final_image)[0]
    match = bool(np.array_equal(rtl_out, gold[RTL_LAYER]))
    agree = Table(title=f"RTL vs simulator vs golden on {layer.shape.name} "
                        f"({layer.shape.describe()})")
    for col in ("executor", "cycles", "outputs"):
        agree.add_column(col)
    agree.add_row("RTL (Verilog, cocotb)", f"{rtl.cycles:,}", "bit-exact" if match else "DIFFER")
    agree.add_row("cycle simulator", f"{sim_single:,}", "-")
    agree.add_row("golden model", "-", "reference")
    console.print(agree)
    ok = match and rtl.cycles == sim_single and not rtl.error

    plot_energy(report, out / "energy.png")
    summary = {"preset": PRESET, "config_hash": cfg.config_hash, "simulation": report.to_json(),
               "rtl_check": {"layer": layer.shape.name, "rtl_cycles": rtl.cycles,
                             "sim_cycles": sim_single, "outputs_match": match,
                             "rtl_seconds": round(rtl_s, 2)}}
    (out / "report.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    t = report.total
    (out / "report.md").write_text(
        f"# Tessera demo\n\nConfiguration `{PRESET}` ({cfg.rows}x{cfg.cols} LCP array, hash "
        f"`{cfg.config_hash}`, {cfg.clock_mhz:g} MHz, DRAM {cfg.dram_width} B/cycle, "
        f"{cfg.dram_latency}-cycle latency).\n\n"
        f"- Network: {len(layers)} layers, {t.macs:,} MACs.\n"
        f"- Simulated: {t.cycles:,} cycles = {report.latency_us(t.cycles):,.1f} us, "
        f"{t.energy_pj['total'] / 1e3:,.1f} nJ "
        f"(DRAM {t.energy_pj['dram'] / t.energy_pj['total']:.0%}), "
        f"utilization {report.utilization(t):.1%}; simulated in {sim_s * 1e3:.1f} ms.\n"
        f"- RTL check on `{layer.shape.name}`: {rtl.cycles:,} RTL cycles vs {sim_single:,} "
        f"simulated; outputs {'bit-exact' if match else 'DIFFER'}.\n\n"
        "![energy per layer](energy.png)\n")
    console.print(f"[green]report[/] {out / 'report.md'}, {out / 'report.json'}, "
                  f"{out / 'energy.png'}")
    console.rule("[green]RTL, simulator and golden model agree" if ok
                 else "[red]DISAGREEMENT: see the table above")
    return 0 if ok else 1
