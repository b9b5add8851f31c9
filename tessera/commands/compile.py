"""`tessera compile`: layers -> a Program directory (manifest, memory image, command stream)."""

from __future__ import annotations

from ..console import make_console
from rich.table import Table

from ..cli import add_config_options, config_from_args
from ._common import layer_shapes


def register(sub) -> None:
    p = sub.add_parser(
        "compile", help="compile layers into a Program for an accelerator",
        description="Compile a sequential network given as --layer SPECs (random int8 weights "
                    "and input, seeded) into a Program directory: manifest.json, image.bin, "
                    "image.hex ($readmemh) and commands.txt (a readable disassembly). SPEC is "
                    "gemm:M=..,K=..,N=.. | fc:K=..,N=.. | conv:C=..,K=..,H=..,W=..[,R=3][,S=R]"
                    "[,stride=1][,pad=0], each optionally followed by ,relu and (conv) ,pool=2.")
    add_config_options(p)
    p.add_argument("--layer", metavar="SPEC", action="append", required=True,
                   help="a layer; repeat for a chain of layers")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and input")
    p.add_argument("-o", "--output", metavar="DIR", default="build/program",
                   help="program directory to write (default: build/program)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..compiler.lcp.isa import decode_steps, disassemble
    from ..crosscheck import random_program

    cfg = config_from_args(args)
    shapes = layer_shapes(args.layer)
    prog = random_program(cfg, shapes, args.seed)
    steps = decode_steps(prog.region("commands").tobytes())
    out = prog.save(args.output, disassembly=disassemble(steps))
    t = Table(title=f"Program {out} for {cfg.arch} {cfg.config_hash}")
    for col in ("layer", "shape", "tile", "jobs", "steps"):
        t.add_column(col)
    for s, L in zip(shapes, prog.manifest["layers"]):
        t.add_row(L["name"], s.describe(), "x".join(map(str, L["tile"])), str(L["jobs"]),
                  str(L["steps"][1] - L["steps"][0]))
    make_console().print(t)
    make_console().print(f"image {prog.manifest['image_size']:,} bytes, "
                    f"{prog.manifest['steps']:,} steps")
    return 0
