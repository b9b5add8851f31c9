"""`tessera run`: a model on an input, as the accelerator computes it (or in float)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from ..cli import add_config_options, config_from_args
from ..compiler.runtime import QUANTS
from ..console import make_console
from ..errors import SpecError


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="execute a model on inputs with the accelerators' integer semantics",
        description="Execute MODEL (FILE.onnx, or zoo:NAME with seeded random weights) on the "
                    "float input(s) in --input (.npy: one input, or a batch with a leading "
                    "dimension) and write the float output(s) to --output (.npy; .npz for "
                    "several graph outputs). --quant none runs the float reference; int8 and "
                    "smartdeal run the golden executor of the accelerator chosen with "
                    "--arch/--preset (default: lcp for int8, smartdeal for smartdeal): int8 "
                    "activations with per-tensor scales calibrated on --calib (default: the "
                    "input itself), conv/gemm layers in the array's integer semantics, the other "
                    "operators as host steps (docs/runtime.md).")
    p.add_argument("model", metavar="MODEL", help="FILE.onnx or zoo:NAME")
    p.add_argument("--input", metavar="X.npy", required=True, help="float input(s)")
    p.add_argument("--output", metavar="Y.npy", required=True,
                   help="where to write the output(s): .npy, or .npz (one array per output)")
    p.add_argument("--quant", default="int8", choices=QUANTS,
                   help="none (float), int8 or smartdeal (default int8)")
    p.add_argument("--calib", metavar="FILE.npy",
                   help="calibration inputs (one, or a batch); default: the --input samples")
    p.add_argument("--percentile", type=float, default=100.0,
                   help="calibration percentile of |x| mapped to 127 (default 100)")
    p.add_argument("--theta", type=float, default=4e-3,
                   help="SmartDeal sparsity threshold (default 4e-3)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random weights of a zoo model (default 0)")
    add_config_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..compiler import float_exec
    from ..compiler.runtime import load_graph, load_samples, quantize_graph, with_weights

    graph = with_weights(load_graph(args.model), args.seed)
    if len(graph.inputs) != 1:
        raise SpecError(f"model '{args.model}' has {len(graph.inputs)} inputs: `tessera run` "
                        "allows one")
    out = Path(args.output)
    if out.suffix not in (".npy", ".npz"):
        raise SpecError(f"--output '{out}': allowed is a .npy or .npz file")
    if out.suffix == ".npy" and len(graph.outputs) != 1:
        raise SpecError(f"model '{args.model}' has {len(graph.outputs)} outputs: write them to "
                        "an .npz file")
    shape = next(iter(graph.inputs.values()))
    xs, batched = load_samples(args.input, shape, "--input")

    def floats(x):
        return float_exec.run(graph, x)

    if args.quant == "none":
        if args.arch or args.preset or args.config or args.sets:
            raise SpecError("--quant none runs the float reference: it takes no --arch, "
                            "--preset, --config or --set")
        execute, cfg = floats, None
    else:
        if not (args.arch or args.preset or args.config):
            args.arch = "lcp" if args.quant == "int8" else "smartdeal"
        cfg = config_from_args(args)
        calib = load_samples(args.calib, shape, "--calib")[0] if args.calib else xs
        qg = quantize_graph(graph, cfg, args.quant, calib, args.percentile, args.theta)
        execute = qg.run
    results = [execute(x) for x in xs]
    arrays = {t: np.stack([r[t] for r in results]) if batched else results[0][t]
              for t in graph.outputs}
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, arrays[graph.outputs[0]])
    else:
        np.savez(out, **arrays)
    console = make_console()
    console.print(_table(graph, args, cfg, xs, results, floats))
    console.print(f"wrote {out}")
    return 0


def _table(graph, args, cfg, xs, results, floats) -> Table:
    """Per output: its shape and, for a quantized run, how far it is from the float model."""
    where = "float" if cfg is None else f"{args.quant} on {cfg.arch} {cfg.config_hash}"
    t = Table(title=f"{graph.name}: {len(xs)} input(s), {where}")
    cols = ["output", "shape"] + ([] if cfg is None else ["max |q - float|",
                                                          "top-1 = float's"])
    for col in cols:
        t.add_column(col, justify="left" if col in ("output", "shape") else "right")
    ref = [floats(x) for x in xs] if cfg is not None else None
    for name in graph.outputs:
        row = [name, "x".join(map(str, results[0][name].shape))]
        if ref is not None:
            diff = max(float(np.abs(r[name] - f[name]).max()) for r, f in zip(results, ref))
            same = sum(int(np.argmax(r[name]) == np.argmax(f[name])) for r, f in zip(results, ref))
            row += [f"{diff:.4g}", f"{same}/{len(xs)}"]
        t.add_row(*row)
    return t
