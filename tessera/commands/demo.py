"""`tessera demo`: the main job on its embedded defaults."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="compile, simulate, generate and RTL-check a small network on both families",
        description="Compile a small built-in CNN for the 8x16 LCP array and the small SmartDeal "
                    "array, simulate it cycle-exactly with its energy breakdown, generate each "
                    "accelerator's Verilog, run the whole network on that Verilog under cocotb and "
                    "compare RTL, simulator and golden model (values, cycles, DRAM traffic); then "
                    "simulate ResNet-18 on the paper-size SmartDeal and LCP arrays. Writes "
                    "report.md, report.json and plots. Takes a few minutes (the RTL runs).")
    p.add_argument("-o", "--output", metavar="DIR", default="build/demo",
                   help="output directory (default: build/demo)")
    p.add_argument("--simulator", choices=["icarus", "verilator"], default="icarus",
                   help="HDL simulator for the RTL check (default: icarus)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run as demo

    return demo(args.output, args.simulator)
