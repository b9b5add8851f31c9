"""`tessera compress`: compress a model's weights with SmartDeal, TBN, int8 or magnitude pruning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..compiler.compression import (METHODS, CompressOptions, PruneOptions, compress_model,
                                    load_arrays, load_weights)
from ..compiler.smartdeal import SmartDealOptions
from ..compiler.tbn import TbnOptions
from ..console import make_console
from ..errors import CompileError, SpecError

#: Options that only some methods read; giving one to another method is an error, not a no-op.
_ONLY_FOR = {
    "theta": ("smartdeal",), "max_iter": ("smartdeal",), "tol": ("smartdeal",),
    "exp_min": ("smartdeal",), "exp_max": ("smartdeal",), "slice_rows": ("smartdeal",),
    "scale_steps": ("smartdeal",), "coding": ("smartdeal",), "fallback": ("smartdeal",),
    "tile_factor": ("tbn",), "alpha": ("tbn",), "min_size": ("tbn",),
}
#: Options read by SmartDeal and by pruning (so also by any method when --prune is given).
_SHARED = ("structure", "group_size", "basis_size")


def register(sub) -> None:
    p = sub.add_parser(
        "compress", help="compress a model's weights (smartdeal, tbn, int8, prune)",
        description="Compress every weight of MODEL (an .npz of named arrays: conv (K,C,R,S), "
                    "FC (out,in); an ONNX model's conv/gemm weights, by node name; or the layers "
                    "of zoo:NAME or a topology FILE.csv with seeded He-normal random weights) "
                    "with one method, print a per-layer report (sparsity, bits, "
                    "compression rate vs FP32, reconstruction error, time) and write the "
                    "encoded model. smartdeal: W ~ Ce*B with sparse power-of-two Ce and an int8 "
                    "basis B (kernels S does not divide are stored int8 unless --fallback error); "
                    "tbn: one binary tile per layer; int8: symmetric per-channel weights; prune: "
                    "magnitude pruning (--prune also runs it before any other method). "
                    "See docs/compression.md.")
    p.add_argument("model", metavar="MODEL",
                   help=".npz of named weight arrays, FILE.onnx, zoo:NAME or FILE.csv")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random weights of zoo:NAME and FILE.csv (default 0)")
    p.add_argument("--method", required=True, metavar="METHOD",
                   help="smartdeal, tbn, int8 or prune")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="compressed model (.npz with a JSON header); default: "
                        "build/compress/<MODEL>-<METHOD>.npz")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    p.add_argument("--dump", metavar="DIR",
                   help="write one .npz per layer with its decoded factors and rebuilt weight")
    p.add_argument("-q", "--quiet", action="store_true", help="no table, no progress")

    sd = p.add_argument_group("smartdeal")
    sd.add_argument("--theta", type=float, help="sparsity threshold on unit-norm Ce columns "
                    "(default 4e-3)")
    sd.add_argument("--max-iter", type=int, help="iterations of Algorithm 1 (default 30)")
    sd.add_argument("--tol", type=float, help="stop when Ce changes less (default 1e-10)")
    sd.add_argument("--exp-min", type=int, help="smallest Ce exponent (default -7)")
    sd.add_argument("--exp-max", type=int, help="largest Ce exponent (default 0)")
    sd.add_argument("--slice-rows", type=int, help="most Ce rows per block (default 192)")
    sd.add_argument("--scale-steps", type=int,
                    help="column scales tried per octave before rounding (default 8)")
    sd.add_argument("--coding", metavar="CODING",
                    help="Ce codes: fixed, huffman or auto, the smaller (default auto)")
    sd.add_argument("--fallback", metavar="WHAT",
                    help="kernels S does not divide: int8 (default) or error")

    shared = p.add_argument_group("smartdeal and pruning")
    shared.add_argument("--structure", metavar="KIND",
                        help="element or vector (rows of S shared by --group-size output "
                             "channels); default element")
    shared.add_argument("--group-size", type=int,
                        help="output channels sharing vector sparsity (default 1)")
    shared.add_argument("--basis-size", type=int, metavar="S",
                        help="basis size S = vector length (default 3)")

    tbn = p.add_argument_group("tbn")
    tbn.add_argument("--tile-factor", type=int, metavar="P",
                     help="p: the tile has N/p weights (default 4)")
    tbn.add_argument("--alpha", metavar="MODE", help="layer (one alpha) or tile (default layer)")
    tbn.add_argument("--min-size", type=int,
                     help="layers with fewer weights are stored int8 (default 64000)")

    other = p.add_argument_group("pruning and calibration")
    other.add_argument("--prune", type=float, metavar="FRACTION",
                       help="prune this fraction by magnitude first (required by --method prune)")
    other.add_argument("--calib", metavar="FILE",
                       help=".npz with sample input activations per layer name: records an "
                            "int8 activation scale per layer")
    other.add_argument("--percentile", type=float,
                       help="calibration percentile of |x| mapped to 127 (default 100)")
    p.set_defaults(func=run)


def _given(args, dest: str) -> bool:
    return getattr(args, dest) is not None


def build_options(args):
    """CompressOptions from the parsed arguments; misplaced options are errors."""
    method = args.method
    if method not in METHODS:
        raise CompileError(f"--method '{method}' is unknown: allowed is one of "
                           f"{', '.join(METHODS)}")
    flag = lambda dest: "--" + dest.replace("_", "-")  # noqa: E731
    for dest, methods in _ONLY_FOR.items():
        if _given(args, dest) and method not in methods:
            raise SpecError(f"option {flag(dest)} applies to --method {', '.join(methods)}, "
                            f"not '{method}'")
    for dest in _SHARED:
        if _given(args, dest) and method != "smartdeal" and args.prune is None:
            raise SpecError(f"option {flag(dest)} applies to --method smartdeal or to pruning "
                            f"(--prune), not to '{method}' alone")
    if _given(args, "group_size") and args.structure != "vector":
        raise SpecError("option --group-size applies to vector sparsity: give --structure vector")
    if _given(args, "percentile") and args.calib is None:
        raise SpecError("option --percentile applies to calibration: give --calib FILE")

    def pick(**names):
        return {key: getattr(args, dest) for key, dest in names.items() if _given(args, dest)}

    shared = pick(structure="structure", group_size="group_size", S="basis_size")
    prune = None
    if args.prune is not None:
        prune = PruneOptions(fraction=args.prune, **shared)
    smartdeal = SmartDealOptions(**shared, **pick(
        theta="theta", max_iter="max_iter", tol="tol", exp_min="exp_min", exp_max="exp_max",
        slice_rows="slice_rows", scale_steps="scale_steps")) if method == "smartdeal" \
        else SmartDealOptions()
    tbn = TbnOptions(**pick(p="tile_factor", alpha="alpha", min_size="min_size"))
    return CompressOptions(method=method, smartdeal=smartdeal, tbn=tbn, prune=prune,
                           **pick(coding="coding", fallback="fallback", percentile="percentile"))


def _table(model) -> Table:
    t = Table(title=f"tessera compress: {model.options.method}", box=box.SIMPLE_HEAD,
              padding=(0, 1, 0, 0), pad_edge=False)
    for col in ("layer", "shape", "stored as", "Ce zeros", "W zeros", "bits/w", "rate",
                "rel err", "clamped", "time"):
        t.add_column(col, justify="left" if col in ("layer", "shape", "stored as") else "right",
                     no_wrap=True)

    def pct(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    for layer in model.layers:
        r = layer.report
        t.add_row(r.name, "x".join(map(str, r.shape)), r.method,
                  pct(r.details.get("ce_sparsity")), pct(r.w_sparsity),
                  f"{r.bits / r.n_weights:.3f}", f"{r.compression_rate:.2f}x", f"{r.rel_err:.4f}",
                  str(r.details.get("clamped", "-")), f"{r.seconds:.2f}s")
    total = model.total()
    t.add_section()
    t.caption = f"{total['n_weights']} weights in {total['bits']} bits"
    t.add_row("total", "", "", pct(total["ce_sparsity"]),
              pct(total["w_sparsity"]), f"{total['bits_per_weight']:.3f}",
              f"{total['compression_rate']:.2f}x", f"{total['rel_err']:.4f}",
              "-" if total["clamped"] is None else str(total["clamped"]),
              f"{sum(layer.report.seconds for layer in model.layers):.2f}s")
    return t


def model_weights(spec: str, seed: int) -> tuple[str, list[tuple[str, np.ndarray]]]:
    """(a name for output files, the (layer, weight) pairs) of any MODEL the command takes."""
    from ..compiler.runtime import load_graph, with_weights

    if spec.startswith("zoo:") or spec.lower().endswith(".onnx"):
        graph = with_weights(load_graph(spec), seed)
        name = spec[4:] if spec.startswith("zoo:") else Path(spec).stem
        return name, [(n.name, n.weight) for n in graph.nodes if n.kind in ("conv2d", "gemm")]
    if spec.lower().endswith(".csv"):
        from ..compiler.layers import topology_shapes
        from ..compiler.topology import read_topology

        rng = np.random.default_rng(seed)
        return Path(spec).stem, [
            (s.name, (rng.standard_normal(s.weight_shape)
                      * np.sqrt(2.0 / np.prod(s.weight_shape[1:]))).astype(np.float32))
            for s in topology_shapes(read_topology(spec))]
    return Path(spec).stem, load_weights(spec)


def run(args) -> int:
    options = build_options(args)
    stem, weights = model_weights(args.model, args.seed)
    calibration = dict(load_arrays(args.calib, "calibration file")) if args.calib else None
    console = make_console()
    total = sum(w.size for _, w in weights)
    status = make_console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("weights"), TimeElapsedColumn(), console=status, transient=True,
                  disable=args.quiet or not status.is_terminal) as progress:
        task = progress.add_task(options.method, total=total)
        done = [0]

        def before_layer(name, w):
            progress.update(task, completed=done[0], description=f"{options.method} {name}")
            done[0] += w.size

        model = compress_model(weights, options, calibration, before_layer)
    output = Path(args.output or Path("build") / "compress" / f"{stem}-{options.method}.npz")
    output.parent.mkdir(parents=True, exist_ok=True)
    model.save(output)
    if args.json:
        Path(args.json).write_text(json.dumps(model.to_json(), indent=2, sort_keys=True) + "\n")
    if args.dump:
        model.dump(args.dump)
    if not args.quiet:
        console.print(_table(model))
        console.print(f"wrote {output}" + (f", {args.json}" if args.json else "")
                      + (f", {args.dump}/" if args.dump else ""))
    return 0
