"""`tessera compile`: layers or a model -> Program directories (manifest, memory image, commands)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from rich.table import Table

from ..cli import add_config_options, config_from_args
from ..compiler.runtime import QUANTS
from ..console import make_console
from ._common import layer_shapes, write_json


def register(sub) -> None:
    p = sub.add_parser(
        "compile", help="compile layers or a model into Programs for an accelerator",
        description="Compile a sequential network given as --layer SPECs (random int8 weights "
                    "and input, seeded) into a Program directory: manifest.json, image.bin, "
                    "image.hex ($readmemh) and commands.txt (a readable disassembly). SPEC is "
                    "gemm:M=..,K=..,N=.. | fc:K=..,N=.. | conv:C=..,K=..,H=..,W=..[,R=3][,S=R]"
                    "[,stride=1][,pad=0], each optionally followed by ,relu and (conv) ,pool=2. "
                    "Or compile MODEL (FILE.onnx, zoo:NAME with seeded random weights, or a "
                    "SCALE-Sim topology FILE.csv with random weights): its weights are quantized "
                    "(--quant) with activation scales calibrated on --input, and each chain of "
                    "accelerator layers between host steps becomes one Program, written to "
                    "OUTPUT/NN-LAYER/ with OUTPUT/model.json saying which tensors each reads and "
                    "writes and which host steps run between them (docs/runtime.md).")
    add_config_options(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--layer", metavar="SPEC", action="append",
                     help="a layer; repeat for a chain of layers")
    src.add_argument("model", metavar="MODEL", nargs="?",
                     help="FILE.onnx, zoo:NAME or a topology FILE.csv")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and input")
    m = p.add_argument_group("models")
    m.add_argument("--input", metavar="X.npy",
                   help="the float input the programs carry (also the calibration sample); "
                        "default: a seeded standard-normal input")
    m.add_argument("--quant", default="int8", choices=QUANTS[1:],
                   help="weights as int8, or SmartDeal-decomposed (--arch smartdeal); "
                        "default int8")
    p.add_argument("-o", "--output", metavar="DIR", default="build/program",
                   help="program directory to write (default: build/program)")
    p.set_defaults(func=run)


def _disassemble(cfg, prog) -> str:
    if cfg.arch == "smartdeal":
        from ..compiler.sd.isa import decode_steps, disassemble
    else:
        from ..compiler.lcp.isa import decode_steps, disassemble
    return disassemble(decode_steps(prog.region("commands").tobytes()))


def _save(cfg, prog, directory) -> Path:
    return prog.save(directory, disassembly=_disassemble(cfg, prog))


def _describe(cfg, L) -> str:
    """How a layer maps: LCP tile and jobs, or SmartDeal mode, channel group and band."""
    if cfg.arch == "smartdeal":
        return f"{L['mode']}, group {L['group']}, band {L['band']}"
    return f"tile {'x'.join(map(str, L['tile']))}, {L['jobs']} jobs"


def _table(title: str, cfg, rows) -> Table:
    t = Table(title=title)
    for col in ("program", "layer", "shape", "mapping", "steps"):
        t.add_column(col)
    for prog_name, shape, L in rows:
        t.add_row(prog_name, L["name"], shape.describe(), _describe(cfg, L),
                  str(L["steps"][1] - L["steps"][0]))
    return t


def run(args) -> int:
    cfg = config_from_args(args)
    if args.model:
        return _run_model(args, cfg)
    from ..crosscheck import random_program

    shapes = layer_shapes(args.layer)
    prog = random_program(cfg, shapes, args.seed)
    out = _save(cfg, prog, args.output)
    console = make_console()
    console.print(_table(f"Program {out} for {cfg.arch} {cfg.config_hash}", cfg,
                         [(out.name, s, L) for s, L in zip(shapes, prog.manifest["layers"])]))
    console.print(f"image {prog.manifest['image_size']:,} bytes, "
                  f"{prog.manifest['steps']:,} steps")
    return 0


def _dirname(i: int, layer: str) -> str:
    return f"{i:02d}-" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", layer).strip("_") or "layer")


def _run_model(args, cfg) -> int:
    """One Program per segment of a model (or per layer of a topology file)."""
    from ..compiler.layers import topology_shapes
    from ..compiler.runtime import (compile_graph, load_graph, load_samples, quantize_graph,
                                    with_weights)
    from ..compiler.topology import read_topology
    from ..crosscheck import random_program
    from ..errors import SpecError

    out = Path(args.output)
    rows, programs = [], []
    if args.model.lower().endswith(".csv"):
        if args.input or args.quant != "int8":
            raise SpecError("a topology file has no weights: compile it without --input and "
                            "--quant (random int8 weights, seeded)")
        for i, shape in enumerate(topology_shapes(read_topology(args.model))):
            prog = random_program(cfg, [shape], args.seed + i)
            d = _save(cfg, prog, out / _dirname(i, shape.name))
            rows.append((d.name, shape, prog.manifest["layers"][0]))
            programs.append({"dir": d.name, "layers": [shape.name]})
        summary = {"model": Path(args.model).name, "programs": programs}
    else:
        graph = with_weights(load_graph(args.model), args.seed)
        shape = next(iter(graph.inputs.values()))
        if args.input:
            xs, _ = load_samples(args.input, shape, "--input")
            if len(xs) != 1:
                raise SpecError(f"--input '{args.input}' holds {len(xs)} inputs: a program "
                                "carries one")
            x = xs[0]
        else:
            x = np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32)
        qg = quantize_graph(graph, cfg, args.quant, [x])
        for i, (names, prog) in enumerate(compile_graph(qg, x)):
            d = _save(cfg, prog, out / _dirname(i, names[0]))
            rows += [(d.name, q.shape, L)
                     for q, L in zip(qg.program_layers(names), prog.manifest["layers"])]
            programs.append({"dir": d.name, "layers": names, "input": qg.io[names[0]][0],
                             "outputs": [qg.io[n][1] for n in names]})
        summary = {"model": graph.name, "quant": args.quant, "programs": programs,
                   "host_steps": [{"name": h.name, "kind": h.kind} for h in qg.lowered.host],
                   "scales": qg.scales}
    summary.update(arch=cfg.arch, config_hash=cfg.config_hash)
    write_json(out / "model.json", summary)
    console = make_console()
    console.print(_table(f"{summary['model']}: {len(programs)} program(s) in {out} for "
                         f"{cfg.arch} {cfg.config_hash}", cfg, rows))
    if "host_steps" in summary:
        console.print(f"host steps between them: {len(summary['host_steps'])} "
                      f"(listed in {out / 'model.json'})")
    return 0
