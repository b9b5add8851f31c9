"""`tessera crosscheck`: golden model vs cycle simulator vs RTL on one random layer (or chain)."""

from __future__ import annotations

import json
import sys

from ..console import make_console

from ..cli import add_config_options, config_from_args
from ..errors import SpecError
from ._common import layer_shapes


def register(sub) -> None:
    p = sub.add_parser(
        "crosscheck", help="run a random layer on golden model, simulator and RTL; compare",
        description="Compile --layer SPEC(s) with random weights and input from --seed, run the "
                    "program on the golden model, the cycle simulator and the generated Verilog "
                    "(cocotb, DRAM model with the configured latency and width), and print one "
                    "JSON object with rtl_cycles, sim_cycles and outputs_match. Exit status 0 "
                    "only if the cycles are equal and the outputs match bit for bit.")
    add_config_options(p)
    p.add_argument("--layer", metavar="SPEC", action="append", required=True,
                   help="a layer (repeat for a chain)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and input")
    p.add_argument("--ce-row-sparsity", type=float, default=0.0, metavar="F",
                   help="smartdeal: fraction of Ce rows that are zero for a whole channel group "
                        "(skipped by the index selector; default 0)")
    p.add_argument("--zero-activations", type=float, default=0.0, metavar="F",
                   help="fraction of input activations that are zero (default 0)")
    p.add_argument("--simulator", choices=["icarus", "verilator"], default="icarus",
                   help="HDL simulator (default: icarus)")
    p.add_argument("--workdir", default="build/crosscheck",
                   help="where the RTL is built and run (default: build/crosscheck)")
    p.add_argument("--waves", action="store_true", help="dump waveforms in the work directory")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..crosscheck import compare, random_program

    cfg = config_from_args(args)
    shapes = layer_shapes(args.layer)
    console = make_console(stderr=True)
    for name, value in (("--ce-row-sparsity", args.ce_row_sparsity),
                        ("--zero-activations", args.zero_activations)):
        if not 0.0 <= value <= 1.0:
            raise SpecError(f"{name} = {value} is invalid: allowed is a fraction from 0 to 1")
    if args.ce_row_sparsity and cfg.arch != "smartdeal":
        raise SpecError(f"--ce-row-sparsity applies to --arch smartdeal, not {cfg.arch}")
    prog = random_program(cfg, shapes, args.seed, args.ce_row_sparsity, args.zero_activations)
    with console.status(f"running {', '.join(args.layer)} on the {cfg.arch} RTL "
                        f"({args.simulator})"):
        result, = compare(cfg, [(",".join(args.layer), prog)], args.workdir, args.simulator,
                          args.waves)
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    print()
    ok = result["cycles_equal"] and result["outputs_match"] and result["dram_traffic_equal"]
    return 0 if ok else 1
