"""A whole graph on an accelerator: which work the array runs, which the host runs, what it costs,
and what it computes in integers (docs/runtime.md).

Lowering (compiler/lower.py) puts every conv2d and gemm on the array, fuses a ReLU that only its
layer reads into the post-processing unit (and, on the LCP array, a following 2x2/2 max pool);
everything else is a *host step*. Depthwise convolutions run on the LCP array as dense
convolutions with a block-diagonal weight (exact, but C times the multiplies).

Quantized execution (the golden executor of a whole graph): every tensor is int8 with one scale,
calibrated on sample inputs; array layers run compiler/golden.py's integer semantics; a host step
dequantizes its inputs, applies compiler/float_exec's float operator and requantizes to its
output's scale. Accelerator layers that follow one another form *segments*, each one Program.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tessera.config import ArchConfig, SmartDealConfig
from tessera.errors import CompileError, SpecError

from . import float_exec
from .float_exec import _KERNELS as FLOAT_OPS  # the one definition of each operator's float math
from .golden import run_layer
from .graph import Graph
from .layers import LayerShape, QuantLayer
from .lower import HostStep, Lowered, lower_shapes
from .program import Program
from .quantize import calibrate_scale, quantize_activation

#: --quant: the float reference, int8 weights, SmartDeal-decomposed weights.
QUANTS = ("none", "int8", "smartdeal")
#: Host steps whose output keeps its input's scale: on int8 values they are exact integer
#: operations, so running them on the host or fused in a post-processing unit agrees bit for bit.
SCALE_PRESERVING = ("relu", "maxpool", "flatten", "reshape")


# --- model sources ------------------------------------------------------------------------------

def load_graph(spec: str) -> Graph:
    """A model named on the command line: FILE.onnx or zoo:NAME."""
    from . import onnx_import, zoo

    if spec.startswith("zoo:"):
        return zoo.from_spec(spec)
    if spec.lower().endswith(".onnx"):
        return onnx_import.load(spec)
    raise SpecError(f"model '{spec}' is not supported: allowed is FILE.onnx or zoo:NAME"
                    " (see `tessera zoo`)")


def with_weights(graph: Graph, seed: int) -> Graph:
    """The graph itself when it has weights, else a copy with seeded He-normal random weights
    (zoo models are shape-only)."""
    from . import zoo

    return graph if graph.has_weights else zoo.random_weights(graph, seed)


# --- lowering -----------------------------------------------------------------------------------

def lower(graph: Graph, arch: str) -> Lowered:
    """Accelerator layers and host steps for ``arch``: only the LCP unit pools."""
    return lower_shapes(graph, fuse_pool=arch == "lcp")


def layer_io(graph: Graph, lowered: Lowered) -> dict[str, tuple[str, str]]:
    """Per accelerator layer, the graph tensor it reads and the one it writes (after fusion)."""
    io = {}
    for shape in lowered.layers:
        node = graph.node(shape.name)
        out = node.output
        for n in graph.nodes:
            if lowered.fused.get(n.name) == shape.name:
                out = n.output
        io[shape.name] = (node.inputs[0], out)
    return io


def array_shape(shape: LayerShape, arch: str) -> LayerShape:
    """The layer as the array runs it: a depthwise conv is dense (block-diagonal) on LCP."""
    if arch == "lcp" and shape.depthwise:
        return dataclasses.replace(shape, groups=1)
    return shape


def _as_chw(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], 1, 1) if len(shape) == 1 else shape


def segments(graph: Graph, lowered: Lowered) -> list[list[str]]:
    """Accelerator layers grouped into chains: a layer joins the previous one's segment when it
    reads exactly that layer's output (a flatten or reshape that leaves the bytes where they are,
    (C,1,1) <-> (C,), counts as the same tensor). Anything else starts a new segment."""
    shapes = graph.shapes()
    io = layer_io(graph, lowered)

    def source(t: str) -> str:
        node = graph.producer(t)
        while (node is not None and node.kind in ("flatten", "reshape")
               and _as_chw(shapes[node.inputs[0]]) == _as_chw(shapes[t])):
            t = node.inputs[0]
            node = graph.producer(t)
        return t

    segs: list[list[str]] = []
    for shape in lowered.layers:
        src = source(io[shape.name][0])
        if segs and src == io[segs[-1][-1]][1]:
            segs[-1].append(shape.name)
        else:
            segs.append([shape.name])
    return segs


# --- host steps ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostModel:
    """What a host step costs: ``ops / ops_per_s + bytes / bytes_per_s``. The defaults are the
    PYNQ-Z1's host, one Cortex-A9 core at 650 MHz doing one element-wise operation per cycle and
    copying about 1 GB/s between DRAM and its caches (an estimate, not a measurement)."""

    ops_per_s: float = 650e6
    bytes_per_s: float = 1e9

    def __post_init__(self):
        for name in ("ops_per_s", "bytes_per_s"):
            value = getattr(self, name)
            if not value > 0:
                raise SpecError(f"host model: {name} = {value!r} is invalid: allowed is a "
                                "positive number")

    def seconds(self, ops: int, nbytes: int) -> float:
        return ops / self.ops_per_s + nbytes / self.bytes_per_s


def host_report(graph: Graph, lowered: Lowered, host: HostModel = HostModel()) -> dict:
    """Every host step with its element-wise operations, the int8 bytes it reads and writes and
    its estimated time; and the totals. A flatten or reshape is a copy unless it leaves the bytes
    where they are ((C,1,1) <-> (C,))."""
    shapes = graph.shapes()
    steps = []
    for h in lowered.host:
        node = graph.node(h.name)
        nbytes = sum(int(np.prod(shapes[t])) for t in node.inputs) + h.elements
        if node.kind in ("flatten", "reshape") and \
                _as_chw(shapes[node.inputs[0]]) == _as_chw(shapes[node.output]):
            nbytes = 0  # (C,1,1) <-> (C,): the bytes are already where the consumer reads
        steps.append({"name": h.name, "kind": h.kind, "ops": h.ops, "bytes": nbytes,
                      "time_us": host.seconds(h.ops, nbytes) * 1e6})
    return {"ops_per_s": host.ops_per_s, "bytes_per_s": host.bytes_per_s, "steps": steps,
            "total": {"steps": len(steps), "ops": sum(s["ops"] for s in steps),
                      "bytes": sum(s["bytes"] for s in steps),
                      "time_us": sum(s["time_us"] for s in steps)}}


def simulate_graph(graph: Graph, cfg: ArchConfig, host: HostModel = HostModel(),
                   layer_map: Callable[[LayerShape], LayerShape] | None = None,
                   unsupported_on_host: bool = False):
    """(SimReport of the accelerator layers, host report, segments). Each segment is simulated as
    the Program it compiles to; the report lists all their layers in order. ``layer_map``
    changes each layer first (the splitter uses it for one device's share of a layer).

    A layer the accelerator cannot run (a kernel or buffer it has no room for) is an error, or
    with ``unsupported_on_host`` a host step (2 operations per MAC) whose reason is reported."""
    from tessera.backends import backend

    lowered = lower(graph, cfg.arch)
    if not lowered.layers:
        raise CompileError(f"model '{graph.name}' has no conv or gemm layer for the accelerator")
    by_name = {s.name: array_shape(layer_map(s) if layer_map else s, cfg.arch)
               for s in lowered.layers}
    be = backend(cfg)

    def run(low: Lowered):
        segs = segments(graph, low)
        return [be.simulate_shapes(cfg, [by_name[n] for n in seg]) for seg in segs], segs

    moved = {}
    try:
        reports, segs = run(lowered)
    except CompileError as exc:
        if not unsupported_on_host:
            raise CompileError(f"{exc}; for a model, --unsupported host runs such layers "
                               "on the host") from None
        for s in lowered.layers:
            try:
                be.simulate_shapes(cfg, [by_name[s.name]])
            except CompileError as why:
                moved[s.name] = str(why)
        kept = [s for s in lowered.layers if s.name not in moved]
        if not kept:
            raise CompileError(f"model '{graph.name}': no layer runs on the accelerator") from None
        on_host = [HostStep(s.name, f"{s.kind} (not on the array)", 2 * s.macs,
                            int(np.prod(s.output_shape))) for s in lowered.layers
                   if s.name in moved]
        lowered = dataclasses.replace(lowered, layers=kept, host=on_host + lowered.host)
        reports, segs = run(lowered)
    report = dataclasses.replace(reports[0], layers=[l for r in reports for l in r.layers])
    hr = host_report(graph, lowered, host)
    for st in hr["steps"]:
        if st["name"] in moved:
            st["reason"] = moved[st["name"]]
    return report, hr, segs


# --- quantized execution ------------------------------------------------------------------------

def _calibrate(graph: Graph, samples, percentile: float) -> dict[str, float]:
    """Per-tensor int8 scales: the ``percentile`` of |x| over the samples maps to 127."""
    seen: dict[str, list] = {}
    n = 0
    for x in samples:
        n += 1
        values = float_exec.run(graph, x, keep_all=True)
        for t, v in values.items():
            # The maximum alone decides percentile 100: keep one number per sample.
            seen.setdefault(t, []).append(np.abs(v).max(keepdims=True) if percentile == 100
                                          else v)
    if not n:
        raise SpecError("no calibration samples: allowed is at least one input")
    return {t: calibrate_scale(v, percentile, name=t) for t, v in seen.items()}


@dataclass
class QuantGraph:
    """A graph as an accelerator computes it: int8 tensors with per-tensor ``scales``, array
    layers as QuantLayers (by conv/gemm node name), everything else on the host."""

    graph: Graph
    cfg: ArchConfig     # the accelerator: its arch, accumulator width and (SmartDeal) geometry
    quant: str
    scales: dict[str, float]
    layers: dict[str, QuantLayer]
    lowered: Lowered
    io: dict[str, tuple[str, str]]

    def run_int(self, inputs) -> dict[str, np.ndarray]:
        """Every materialized tensor as int8, for one float input (an array, or a dict for
        several graph inputs)."""
        g = self.graph
        if not isinstance(inputs, dict):
            if len(g.inputs) != 1:
                raise SpecError(f"graph {g.name!r} has inputs {list(g.inputs)}; pass a dict")
            inputs = {next(iter(g.inputs)): inputs}
        vals = {}
        for name, shape in g.inputs.items():
            if name not in inputs:
                raise SpecError(f"missing input {name!r} of shape {shape}")
            x = np.asarray(inputs[name], np.float32)
            if x.shape != shape:
                raise SpecError(f"input {name!r} has shape {x.shape}, the graph expects {shape}")
            vals[name] = quantize_activation(x, self.scales[name])
        shapes = g.shapes()
        for node in g.nodes:
            if node.name in self.layers:
                q = self.layers[node.name]
                src, dst = self.io[node.name]
                y = run_layer(q, vals[src].reshape(q.shape.input_shape), self.cfg.acc_width)
                vals[dst] = y.reshape(shapes[dst])
            elif node.name not in self.lowered.fused:
                xs = [vals[t].astype(np.float32) * np.float32(self.scales[t])
                      for t in node.inputs]
                y = FLOAT_OPS[node.kind](node, *xs)
                vals[node.output] = quantize_activation(y, self.scales[node.output])
        return vals

    def run(self, inputs) -> dict[str, np.ndarray]:
        """The graph outputs, dequantized to float32."""
        vals = self.run_int(inputs)
        return {t: vals[t].astype(np.float32) * np.float32(self.scales[t])
                for t in self.graph.outputs}

    def program_layers(self, names: list[str]) -> list[QuantLayer]:
        """The layers of one segment as the array runs them (depthwise densified on LCP)."""
        return [_densify(self.layers[n]) if self.cfg.arch == "lcp" else self.layers[n]
                for n in names]


def _densify(q: QuantLayer) -> QuantLayer:
    """A depthwise layer as the dense conv with a block-diagonal weight (same integers)."""
    s = q.shape
    if not s.depthwise:
        return q
    w = np.zeros((s.K, s.C, s.R, s.S), q.weights.dtype)
    w[np.arange(s.K), np.arange(s.K)] = q.weights[:, 0]
    return QuantLayer(dataclasses.replace(s, groups=1), w, q.bias, q.mult, q.shift)


def quantize_graph(graph: Graph, cfg: ArchConfig, quant: str, calib, percentile: float = 100.0,
                   theta: float = 4e-3) -> QuantGraph:
    """Calibrate scales on ``calib`` (an iterable of float inputs) and quantize every array
    layer: ``int8`` per-output-channel weights, or ``smartdeal`` decomposition (SmartDeal
    accelerator only; kernels it cannot decompose stay int8)."""
    from .sd.compile import quantize_layer

    if quant not in ("int8", "smartdeal"):
        raise SpecError(f"quantization '{quant}' is unknown: allowed is int8 or smartdeal "
                        "(none runs the float executor)")
    if quant == "smartdeal" and not isinstance(cfg, SmartDealConfig):
        raise SpecError(f"quantization 'smartdeal' needs --arch smartdeal: the {cfg.arch} "
                        "array multiplies int8 weights (use --quant int8)")
    if cfg.arch not in ("lcp", "smartdeal"):
        raise SpecError(f"arch '{cfg.arch}' has no integer executor: allowed is lcp, smartdeal")
    if not graph.has_weights:
        raise SpecError(f"model '{graph.name}' has no weights: quantization needs them")
    lowered = lower(graph, cfg.arch)
    io = layer_io(graph, lowered)
    scales = _calibrate(graph, calib, percentile)
    # In graph order, so chains of them share one scale. A fused ReLU is where the layer
    # requantizes, so it keeps its own calibrated scale; a fused pool follows the requantization.
    for node in graph.nodes:
        if node.kind in SCALE_PRESERVING and not (node.kind == "relu"
                                                  and node.name in lowered.fused):
            scales[node.output] = scales[node.inputs[0]]
    layers = {}
    for shape in lowered.layers:
        node = graph.node(shape.name)
        src, dst = io[shape.name]
        layers[shape.name] = quantize_layer(shape, node.weight, node.bias, scales[src],
                                            scales[dst], cfg if quant == "smartdeal" else None,
                                            theta)
    return QuantGraph(graph, cfg, quant, scales, layers, lowered, io)


def compile_graph(qg: QuantGraph, x) -> list[tuple[list[str], Program]]:
    """One Program per segment for the configuration ``qg`` was quantized for, each holding the
    int8 input the executor gives it for ``x``."""
    from tessera.backends import backend

    vals = qg.run_int(x)
    be = backend(qg.cfg)
    progs = []
    for names in segments(qg.graph, qg.lowered):
        layers = qg.program_layers(names)
        src = qg.io[names[0]][0]
        progs.append((names, be.compile(qg.cfg, layers,
                                        vals[src].reshape(layers[0].shape.input_shape))))
    return progs


def load_samples(path: str | Path, shape: tuple[int, ...],
                 what: str) -> tuple[np.ndarray, bool]:
    """Float samples from an .npy file holding one input of ``shape`` or a batch (N, *shape):
    (the batch, whether the file held one)."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            "not a readable .npy array"
        raise SpecError(f"{what} '{path}': {reason}") from None
    if not isinstance(arr, np.ndarray):
        arr.close()  # an .npz archive
        raise SpecError(f"{what} '{path}': expected one .npy array, got an .npz archive")
    if arr.dtype.kind not in "fiu":
        raise SpecError(f"{what} '{path}': expected a numeric array, got dtype {arr.dtype}")
    batched = arr.shape != shape
    if not batched:
        arr = arr[None]
    if arr.shape[1:] != shape or arr.shape[0] < 1:
        raise SpecError(f"{what} '{path}' has shape {arr.shape}: allowed is {shape} or "
                        f"(N, {', '.join(map(str, shape))})")
    if not np.all(np.isfinite(arr)):
        raise SpecError(f"{what} '{path}' holds non-finite values: allowed are finite numbers")
    return arr.astype(np.float32), batched
