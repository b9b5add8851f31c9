"""Graph IR: the inference network (batch size 1) that every front end produces and every
accelerator compiler consumes.

A ``Graph`` is a list of ``Node`` in topological order. Each node applies one operator (a small
frozen dataclass such as ``Conv2d`` or ``MaxPool``) to named input tensors and writes one named
output tensor. Feature maps have shape (C, H, W), vectors (F,); the batch dimension is implicit.
Conv2d and Gemm nodes carry float32 ``weight``/``bias`` arrays, or None in shape-only graphs (the
model zoo). Batch norm does not exist here: front ends fold it into the preceding conv/gemm.

MAC counts cover only the multiply-accumulates of conv2d/gemm; every other operator reports its
element-wise work separately (``NodeStats.ops``) so the two are never mixed up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from tessera.errors import SpecError

Shape = tuple[int, ...]


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _pair(name: str, value) -> tuple[int, int]:
    """Accept 3 or (3, 3); reject anything that is not two positive ints."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise SpecError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return value


def _pads(value) -> tuple[int, int, int, int]:
    """Padding as (top, left, bottom, right); an int or (h, w) pads symmetrically."""
    if isinstance(value, int):
        value = (value,) * 4
    value = tuple(value)
    if len(value) == 2:
        value = value * 2
    if len(value) != 4 or not all(isinstance(v, int) and v >= 0 for v in value):
        raise SpecError(f"pads must be (top, left, bottom, right) non-negative ints, got {value!r}")
    return value


def _feature_map(shape: Shape, what: str) -> Shape:
    if len(shape) != 3:
        raise SpecError(f"{what} needs a (C, H, W) feature map, got shape {shape}")
    return shape


def _window_out(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                ceil_mode: bool = False) -> int:
    """Output length of a sliding window; ceil_mode drops a last window that would start in the
    end padding (the PyTorch and ONNX Runtime rule)."""
    span = size + pad_begin + pad_end - kernel
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


class Op:
    """Base of every operator: shape inference and work counts."""

    kind: ClassVar[str]
    arity: ClassVar[int | None] = 1  # number of inputs; None = one or more

    def infer(self, shapes: list[Shape]) -> Shape:
        return shapes[0]

    def macs(self, shapes: list[Shape], out: Shape) -> int:
        return 0

    def ops(self, shapes: list[Shape], out: Shape) -> int:
        """Element-wise operations (not MACs): one per output element unless overridden."""
        return _numel(out)

    def attrs(self) -> dict:
        """The operator's attributes as a plain dict (for summaries and JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Conv2d(Op):
    """2-D convolution, weight (out_channels, in_channels/groups, R, S); groups=in_channels is
    depthwise. Dilation is always 1."""

    kind: ClassVar[str] = "conv2d"
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    groups: int = 1
    has_bias: bool = True

    def __post_init__(self):
        object.__setattr__(self, "kernel", _pair("kernel", self.kernel))
        object.__setattr__(self, "stride", _pair("stride", self.stride))
        object.__setattr__(self, "pads", _pads(self.pads))
        for name in ("in_channels", "out_channels", "groups"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SpecError(f"conv2d {name} must be a positive int, got {value!r}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise SpecError(f"conv2d groups={self.groups} must divide in_channels="
                            f"{self.in_channels} and out_channels={self.out_channels}")

    @property
    def weight_shape(self) -> Shape:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel)

    @property
    def depthwise(self) -> bool:
        return self.groups == self.in_channels and self.groups > 1

    def infer(self, shapes):
        c, h, w = _feature_map(shapes[0], "conv2d")
        if c != self.in_channels:
            raise SpecError(f"input has {c} channels, the layer expects {self.in_channels}")
        (r, s), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pads
        ho, wo = _window_out(h, r, sh, pt, pb), _window_out(w, s, sw, pl, pr)
        if ho < 1 or wo < 1:
            raise SpecError(f"kernel {r}x{s} does not fit the padded {h}x{w} input")
        return (self.out_channels, ho, wo)

    def macs(self, shapes, out):
        return _numel(self.weight_shape) * out[1] * out[2]

    def ops(self, shapes, out):
        return 0

    @property
    def params(self) -> int:
        return _numel(self.weight_shape) + (self.out_channels if self.has_bias else 0)


@dataclass(frozen=True)
class Gemm(Op):
    """Fully connected layer y = weight @ x + bias, weight (out_features, in_features)."""

    kind: ClassVar[str] = "gemm"
    in_features: int
    out_features: int
    has_bias: bool = True

    def __post_init__(self):
        for name in ("in_features", "out_features"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SpecError(f"gemm {name} must be a positive int, got {value!r}")

    @property
    def weight_shape(self) -> Shape:
        return (self.out_features, self.in_features)

    def infer(self, shapes):
        if shapes[0] != (self.in_features,):
            raise SpecError(f"gemm needs a vector of {self.in_features} features, got shape "
                            f"{shapes[0]} (flatten feature maps first)")
        return (self.out_features,)

    def macs(self, shapes, out):
        return self.in_features * self.out_features

    def ops(self, shapes, out):
        return 0

    @property
    def params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.has_bias else 0)


@dataclass(frozen=True)
class Relu(Op):
    kind: ClassVar[str] = "relu"


@dataclass(frozen=True)
class Clip(Op):
    """min(max(x, min), max); ReLU6 is Clip(0, 6)."""

    kind: ClassVar[str] = "clip"
    min: float = -math.inf
    max: float = math.inf

    def __post_init__(self):
        if not self.min <= self.max:
            raise SpecError(f"clip needs min <= max, got min={self.min} max={self.max}")


@dataclass(frozen=True)
class Sigmoid(Op):
    kind: ClassVar[str] = "sigmoid"


@dataclass(frozen=True)
class HardSigmoid(Op):
    """max(0, min(1, alpha*x + beta)), the ONNX definition."""

    kind: ClassVar[str] = "hardsigmoid"
    alpha: float = 0.2
    beta: float = 0.5


@dataclass(frozen=True)
class HardSwish(Op):
    """x * max(0, min(1, x/6 + 1/2))."""

    kind: ClassVar[str] = "hardswish"


@dataclass(frozen=True)
class Softmax(Op):
    """Softmax along one axis of the (batch-free) tensor."""

    kind: ClassVar[str] = "softmax"
    axis: int = -1

    def infer(self, shapes):
        if not -len(shapes[0]) <= self.axis < len(shapes[0]):
            raise SpecError(f"softmax axis {self.axis} is outside shape {shapes[0]}")
        return shapes[0]


@dataclass(frozen=True)
class _Pool(Op):
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    ceil_mode: bool = False

    def __post_init__(self):
        object.__setattr__(self, "kernel", _pair("kernel", self.kernel))
        object.__setattr__(self, "stride", _pair("stride", self.stride))
        object.__setattr__(self, "pads", _pads(self.pads))
        (r, s), (pt, pl, pb, pr) = self.kernel, self.pads
        if max(pt, pb) >= r or max(pl, pr) >= s:
            raise SpecError(f"{self.kind} pads {self.pads} must be smaller than the kernel "
                            f"{self.kernel}")

    def infer(self, shapes):
        c, h, w = _feature_map(shapes[0], self.kind)
        (r, s), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pads
        ho = _window_out(h, r, sh, pt, pb, self.ceil_mode)
        wo = _window_out(w, s, sw, pl, pr, self.ceil_mode)
        if ho < 1 or wo < 1:
            raise SpecError(f"window {r}x{s} does not fit the padded {h}x{w} input")
        return (c, ho, wo)

    def ops(self, shapes, out):
        return _numel(out) * self.kernel[0] * self.kernel[1]


@dataclass(frozen=True)
class MaxPool(_Pool):
    kind: ClassVar[str] = "maxpool"


@dataclass(frozen=True)
class AvgPool(_Pool):
    """Average pooling; padded positions count in the divisor only with count_include_pad."""

    kind: ClassVar[str] = "avgpool"
    count_include_pad: bool = False


@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """(C, H, W) -> (C, 1, 1), as ONNX GlobalAveragePool."""

    kind: ClassVar[str] = "global_avgpool"

    def infer(self, shapes):
        c, _, _ = _feature_map(shapes[0], "global_avgpool")
        return (c, 1, 1)

    def ops(self, shapes, out):
        return _numel(shapes[0])


@dataclass(frozen=True)
class _Binary(Op):
    arity: ClassVar[int] = 2

    def infer(self, shapes):
        a, b = shapes
        if len(a) != len(b):
            raise SpecError(f"{self.kind} inputs need the same rank, got {a} and {b}")
        try:
            return tuple(np.broadcast_shapes(a, b))
        except ValueError:
            raise SpecError(f"{self.kind} cannot broadcast shapes {a} and {b}") from None


@dataclass(frozen=True)
class Add(_Binary):
    """Element-wise sum (residual connections), NumPy broadcasting between equal ranks."""

    kind: ClassVar[str] = "add"


@dataclass(frozen=True)
class Mul(_Binary):
    """Element-wise product; (C, H, W) * (C, 1, 1) is squeeze-and-excite's channel scaling."""

    kind: ClassVar[str] = "mul"


@dataclass(frozen=True)
class Concat(Op):
    """Concatenation along ``axis`` (0 = channels of a feature map)."""

    kind: ClassVar[str] = "concat"
    arity: ClassVar[None] = None
    axis: int = 0

    def infer(self, shapes):
        first = shapes[0]
        if not 0 <= self.axis < len(first):
            raise SpecError(f"concat axis {self.axis} is outside shape {first}")
        for s in shapes[1:]:
            if len(s) != len(first) or any(a != b for i, (a, b) in enumerate(zip(s, first))
                                           if i != self.axis):
                raise SpecError(f"concat along axis {self.axis} needs equal other dimensions, "
                                f"got {first} and {s}")
        return tuple(sum(s[self.axis] for s in shapes) if i == self.axis else d
                     for i, d in enumerate(first))

    def ops(self, shapes, out):
        return 0


@dataclass(frozen=True)
class Flatten(Op):
    """Any shape -> (F,) in C order; no data moves."""

    kind: ClassVar[str] = "flatten"

    def infer(self, shapes):
        return (_numel(shapes[0]),)

    def ops(self, shapes, out):
        return 0


@dataclass(frozen=True)
class Reshape(Op):
    """Reinterpret the tensor in C order as ``shape``; no data moves."""

    kind: ClassVar[str] = "reshape"
    shape: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(self.shape))
        if not self.shape or not all(isinstance(d, int) and d > 0 for d in self.shape):
            raise SpecError(f"reshape needs positive dimensions, got {self.shape!r}")

    def infer(self, shapes):
        if _numel(shapes[0]) != _numel(self.shape):
            raise SpecError(f"cannot reshape {shapes[0]} into {self.shape}")
        return self.shape

    def ops(self, shapes, out):
        return 0


@dataclass(frozen=True)
class Resize(Op):
    """Spatial resize of a feature map to ``size`` (H, W): nearest (floor of dst*in/out, what
    PyTorch's 'nearest' exports) or bilinear (half-pixel centres, or align_corners)."""

    kind: ClassVar[str] = "resize"
    size: tuple[int, int]
    mode: str = "bilinear"
    align_corners: bool = False

    def __post_init__(self):
        object.__setattr__(self, "size", _pair("size", self.size))
        if self.mode not in ("nearest", "bilinear"):
            raise SpecError(f"resize mode must be 'nearest' or 'bilinear', got {self.mode!r}")
        if self.align_corners and self.mode != "bilinear":
            raise SpecError("resize align_corners applies only to mode 'bilinear'")

    def infer(self, shapes):
        c, _, _ = _feature_map(shapes[0], "resize")
        return (c, *self.size)


#: Every operator of the IR by its ``kind``.
OPS: dict[str, type[Op]] = {cls.kind: cls for cls in (
    Conv2d, Gemm, Relu, Clip, Sigmoid, HardSigmoid, HardSwish, Softmax, MaxPool, AvgPool,
    GlobalAvgPool, Add, Mul, Concat, Flatten, Reshape, Resize)}


@dataclass(eq=False)
class Node:
    """One operator application. ``weight``/``bias`` are float32 arrays for conv2d/gemm nodes of a
    graph with weights, None otherwise."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    output: str
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None

    @property
    def kind(self) -> str:
        return self.op.kind

    @property
    def params(self) -> int:
        return getattr(self.op, "params", 0)


@dataclass(frozen=True)
class NodeStats:
    """Work and sizes of one node; ``activations`` counts output elements."""

    name: str
    kind: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    macs: int
    ops: int
    params: int
    activations: int


@dataclass(eq=False)
class Graph:
    """An inference graph: named inputs with their shapes, nodes in topological order, outputs."""

    name: str
    inputs: dict[str, Shape]
    nodes: list[Node]
    outputs: list[str]

    def shapes(self) -> dict[str, Shape]:
        """Shape of every tensor (graph inputs and node outputs)."""
        return self.validate()

    def validate(self) -> dict[str, Shape]:
        """Check names, topological order, operator arity, shapes and weight arrays, raising
        SpecError naming the first offending node; returns every tensor's shape."""
        shapes: dict[str, Shape] = {}
        for name, shape in self.inputs.items():
            if len(shape) not in (1, 3) or not all(isinstance(d, int) and d > 0 for d in shape):
                raise SpecError(f"graph input {name!r} must have shape (F,) or (C, H, W) of "
                                f"positive ints, got {shape!r}")
            shapes[name] = tuple(shape)
        seen_nodes = set()
        for node in self.nodes:
            where = f"node {node.name!r} ({node.kind})"
            if node.name in seen_nodes:
                raise SpecError(f"{where}: the node name is used twice")
            seen_nodes.add(node.name)
            arity = node.op.arity
            if len(node.inputs) != arity if arity else not node.inputs:
                raise SpecError(f"{where}: takes {arity or 'one or more'} inputs, "
                                f"got {len(node.inputs)}")
            for t in node.inputs:
                if t not in shapes:
                    raise SpecError(f"{where}: input tensor {t!r} is not a graph input nor the "
                                    f"output of an earlier node (nodes must be in topological "
                                    f"order)")
            if node.output in shapes:
                raise SpecError(f"{where}: output tensor {node.output!r} is already defined")
            try:
                shapes[node.output] = node.op.infer([shapes[t] for t in node.inputs])
            except SpecError as exc:
                raise SpecError(f"{where}: {exc}") from None
            self._check_arrays(node, where)
        for t in self.outputs:
            if t not in shapes:
                raise SpecError(f"graph output {t!r} is not produced by any node")
        return shapes

    @staticmethod
    def _check_arrays(node: Node, where: str) -> None:
        expected = getattr(node.op, "weight_shape", None)
        if expected is None:
            if node.weight is not None or node.bias is not None:
                raise SpecError(f"{where}: only conv2d and gemm nodes hold weights")
            return
        for what, arr, shape in (("weight", node.weight, expected),
                                 ("bias", node.bias, (expected[0],))):
            if arr is None:
                continue
            if arr.dtype != np.float32 or arr.shape != shape:
                raise SpecError(f"{where}: {what} must be float32 of shape {shape}, got "
                                f"{arr.dtype} {arr.shape}")
        if node.bias is not None and not node.op.has_bias:
            raise SpecError(f"{where}: has a bias array but has_bias is False")
        if node.op.has_bias and node.weight is not None and node.bias is None:
            raise SpecError(f"{where}: has_bias is True but the bias array is missing")

    @property
    def has_weights(self) -> bool:
        """True when every conv2d/gemm node carries its weight array."""
        return all(n.weight is not None for n in self.nodes if n.kind in ("conv2d", "gemm"))

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise SpecError(f"graph {self.name!r} has no node {name!r}")

    def producer(self, tensor: str) -> Node | None:
        """The node writing ``tensor``; None for a graph input."""
        for n in self.nodes:
            if n.output == tensor:
                return n
        if tensor in self.inputs:
            return None
        raise SpecError(f"graph {self.name!r} has no tensor {tensor!r}")

    def consumers(self, tensor: str) -> list[Node]:
        """The nodes reading ``tensor``, in topological order."""
        return [n for n in self.nodes if tensor in n.inputs]

    def stats(self) -> list[NodeStats]:
        shapes = self.shapes()
        result = []
        for n in self.nodes:
            ins = [shapes[t] for t in n.inputs]
            out = shapes[n.output]
            result.append(NodeStats(n.name, n.kind, tuple(ins), out, n.op.macs(ins, out),
                                    n.op.ops(ins, out), n.params, _numel(out)))
        return result

    @property
    def macs(self) -> int:
        """Multiply-accumulates of all conv2d and gemm nodes."""
        return sum(s.macs for s in self.stats())

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes)

    def summary(self) -> str:
        """A compact text table: one line per node, totals first."""
        stats = self.stats()
        ins = ", ".join(f"{k} {v}" for k, v in self.inputs.items())
        lines = [f"graph {self.name}: input {ins}; {len(self.nodes)} nodes, "
                 f"{_si(sum(s.macs for s in stats), 'MAC')}, {_si(self.params)} params, "
                 f"{_si(sum(s.ops for s in stats))} element-wise ops",
                 f"{'node':<28} {'op':<14} {'output':<16} {'MACs':>10} {'params':>10}"]
        for s in stats:
            lines.append(f"{s.name[:28]:<28} {s.kind:<14} {str(s.output_shape):<16} "
                         f"{_si(s.macs):>10} {_si(s.params):>10}")
        return "\n".join(lines)


def _si(n: int, unit: str = "") -> str:
    """1234567 -> '1.23 M' + unit; small numbers stay exact."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n} {unit}".rstrip()


class GraphBuilder:
    """Appends nodes one at a time, inferring each output shape at once so that a mistake is
    reported at the node that makes it. Used by the ONNX importer and the model zoo."""

    def __init__(self, name: str, inputs: dict[str, Shape]):
        self.graph = Graph(name, {k: tuple(v) for k, v in inputs.items()}, [], [])
        self._shapes = dict(self.graph.inputs)
        self._counts: dict[str, int] = {}

    def shape(self, tensor: str) -> Shape:
        return self._shapes[tensor]

    def add(self, op: Op, *inputs: str, name: str | None = None, output: str | None = None,
            weight: np.ndarray | None = None, bias: np.ndarray | None = None,
            where: str | None = None) -> str:
        """Append ``op`` applied to ``inputs``; returns the output tensor's name. Errors start
        with ``where`` (default: the node's name and kind)."""
        if name is None:
            self._counts[op.kind] = self._counts.get(op.kind, 0) + 1
            name = f"{op.kind}{self._counts[op.kind]}"
        node = Node(name, op, tuple(inputs), output or name, weight, bias)
        where = where or f"node {name!r} ({op.kind})"
        missing = [t for t in inputs if t not in self._shapes]
        if missing:
            raise SpecError(f"{where}: unknown input tensor {missing[0]!r}")
        if node.output in self._shapes:
            raise SpecError(f"{where}: output tensor {node.output!r} is already defined")
        try:
            self._shapes[node.output] = op.infer([self._shapes[t] for t in inputs])
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
        self.graph.nodes.append(node)
        return node.output

    def rename(self, tensor: str, new_name: str) -> None:
        """Give a node output that nothing reads yet another name (front ends use it to keep the
        source model's tensor names after folding a layer into its producer)."""
        node = next(n for n in self.graph.nodes if n.output == tensor)
        assert not any(tensor in n.inputs for n in self.graph.nodes), tensor
        assert new_name not in self._shapes, new_name
        node.output = new_name
        self._shapes[new_name] = self._shapes.pop(tensor)

    def build(self, *outputs: str) -> Graph:
        """The finished graph, validated."""
        self.graph.outputs = list(outputs)
        self.graph.validate()
        return self.graph
