"""ONNX models (opsets 11-21) into the graph IR, float weights kept for compression.

Walks the ONNX nodes in order. Shape arithmetic that exporters emit around Reshape (Shape,
Gather, Unsqueeze, Concat, ...) is folded into constants; BatchNormalization and per-channel
Add/Mul/Sub/Div by constants are folded into the Conv/Gemm right before them; Identity and
Dropout become aliases. Every other operator maps to one IR node or fails: an operator, attribute
or attribute value outside the supported set raises SpecError with one line naming the node,
what is wrong and what is supported. Nothing is skipped silently.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from tessera.errors import SpecError

from .graph import (Add, AvgPool, Clip, Concat, Conv2d, Flatten, Gemm, GlobalAvgPool, Graph,
                    GraphBuilder, HardSigmoid, HardSwish, MaxPool, Mul, Node, Relu, Reshape,
                    Resize, Sigmoid, Softmax)

OPSETS = range(11, 22)


def load(path: str | Path) -> Graph:
    """Import the ONNX file at ``path``."""
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, DecodeError, ValueError) as exc:
        raise SpecError(f"{path}: not a readable ONNX model ({_first_line(exc)})") from None
    return from_model(model, name=path.stem, origin=str(path))


def from_model(model: onnx.ModelProto, name: str | None = None, origin: str = "model") -> Graph:
    """Import an in-memory ONNX model (checked with onnx.checker first)."""
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise SpecError(f"{origin}: invalid ONNX model ({_first_line(exc)})") from None
    return _Importer(model, name or model.graph.name or "onnx").run()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _channel_vector(c: np.ndarray, rank: int, channels: int) -> np.ndarray | None:
    """A constant that broadcasts per channel (axis 1 of a batched tensor of ``rank``) as a
    float64 vector of ``channels``; None if it varies along any other axis."""
    if c.ndim > rank:
        return None
    shape = (1,) * (rank - c.ndim) + c.shape
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(shape[1]).astype(np.float64), (channels,))


def _same_pads(size: int, kernel: int, stride: int, upper: bool) -> tuple[int, int]:
    """(begin, end) padding of auto_pad SAME_UPPER / SAME_LOWER."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if upper else (large, small)


def _reshape_target(in_shape: tuple[int, ...], shape: np.ndarray, allowzero: int) -> tuple:
    """ONNX Reshape's output shape: 0 copies the input dimension (unless allowzero), -1 infers."""
    out = [int(d) for d in shape]
    if not allowzero:
        out = [in_shape[i] if d == 0 and i < len(in_shape) else d for i, d in enumerate(out)]
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise SpecError(f"invalid Reshape target {list(shape)}")
    known = math.prod(d for d in out if d != -1)
    total = math.prod(in_shape)
    if -1 in out:
        if known == 0 or total % known:
            raise SpecError(f"cannot reshape {in_shape} into {list(shape)}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total:
        raise SpecError(f"cannot reshape {in_shape} into {list(shape)}")
    return tuple(out)


class _Importer:
    """One import: constants, the ONNX-name -> IR-tensor map, and one handler per operator."""

    def __init__(self, model: onnx.ModelProto, name: str):
        self.g = model.graph
        opsets = {o.domain: o.version for o in model.opset_import}
        self.opset = opsets.get("", opsets.get("ai.onnx", 0))
        if self.opset not in OPSETS:
            raise SpecError(f"ONNX opset {self.opset} is not supported; supported: opsets "
                            f"{OPSETS.start}-{OPSETS.stop - 1} (re-export with one of them)")
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in self.g.initializer}
        self.ir: dict[str, str] = {}        # ONNX tensor -> IR tensor
        self.alias_of: dict[str, str] = {}  # ONNX tensor -> the ONNX tensor it passes through
        self.uses = Counter(t for n in self.g.node for t in n.input if t)
        self.uses.update(o.name for o in self.g.output)
        self.b = GraphBuilder(name, self._inputs())
        self.ir.update({t: t for t in self.b.graph.inputs})
        self.node_names: set[str] = set()
        self.where = ""

    def _inputs(self) -> dict[str, tuple[int, ...]]:
        inputs = {}
        for vi in self.g.input:
            if vi.name in self.consts:
                continue
            where = f"ONNX graph input {vi.name!r}"
            tt = vi.type.tensor_type
            if vi.type.WhichOneof("value") != "tensor_type" or \
                    tt.elem_type != onnx.TensorProto.FLOAT:
                raise SpecError(f"{where}: must be a float32 tensor")
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            if len(dims) not in (2, 4):
                raise SpecError(f"{where}: rank {len(dims)} is not supported; supported: "
                                f"(N, F) vectors and (N, C, H, W) images")
            if dims[0] not in (None, 0, 1):
                raise SpecError(f"{where}: batch size {dims[0]} is not supported; supported: 1 "
                                f"or a symbolic batch dimension")
            if any(not d for d in dims[1:]):
                raise SpecError(f"{where}: dimensions {dims[1:]} must all be fixed positive "
                                f"numbers (export with a fixed input size)")
            inputs[vi.name] = tuple(dims[1:])
        if not inputs:
            raise SpecError("ONNX graph has no non-constant input")
        return inputs

    # --- the walk -------------------------------------------------------------------------------

    def run(self) -> Graph:
        for index, node in enumerate(self.g.node):
            name = node.name if node.name and node.name not in self.node_names else \
                f"{node.op_type}_{index}"
            self.node_names.add(name)
            self.name, self.where = name, f"ONNX node {name!r} ({node.op_type})"
            handler = getattr(self, f"_op_{node.op_type}", None)
            if node.domain not in ("", "ai.onnx") or handler is None:
                op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
                self._fail(f"operator {op} is not supported; supported operators: "
                           f"{', '.join(SUPPORTED_OPERATORS)}")
            self._check_extra_outputs(node)
            try:
                handler(node)
            except SpecError as exc:
                if str(exc).startswith(self.where):
                    raise
                raise SpecError(f"{self.where}: {exc}") from None
        outputs = []
        for o in self.g.output:
            if o.name in self.consts:
                raise SpecError(f"ONNX graph output {o.name!r} is a constant; nothing to compute")
            ir_name = self.ir[o.name]
            if ir_name != o.name and ir_name not in self.b.graph.inputs and \
                    ir_name not in outputs and not self.b.graph.consumers(ir_name):
                self.b.rename(ir_name, o.name)  # an output behind Identity keeps its ONNX name
                ir_name = o.name
            outputs.append(ir_name)
        return self.b.build(*outputs)

    def _fail(self, message: str):
        raise SpecError(f"{self.where}: {message}")

    def _check_extra_outputs(self, node) -> None:
        for extra in node.output[1:]:
            if extra and self.uses[extra]:
                self._fail(f"output {extra!r} (only the first output of {node.op_type} is "
                           f"supported) is used")

    def _attrs(self, node, **allowed) -> dict:
        """The node's attributes over the given defaults; any other attribute is an error."""
        values = dict(allowed)
        for a in node.attribute:
            if a.name not in allowed:
                self._fail(f"attribute {a.name!r} is not supported; supported attributes: "
                           f"{', '.join(sorted(allowed)) or 'none'}")
            v = helper.get_attribute_value(a)
            values[a.name] = v.decode() if isinstance(v, bytes) else v
        return values

    def _require(self, attrs: dict, key: str, allowed: list) -> None:
        if attrs[key] not in allowed:
            self._fail(f"attribute {key}={attrs[key]!r} is not supported; supported: "
                       f"{' or '.join(repr(a) for a in allowed)}")

    def _const(self, node, i: int, what: str) -> np.ndarray:
        name = node.input[i] if i < len(node.input) else ""
        if name not in self.consts:
            self._fail(f"input {i} ({what}) must be a constant (an initializer or Constant)")
        return self.consts[name]

    def _opt_const(self, node, i: int, what: str) -> np.ndarray | None:
        if i >= len(node.input) or not node.input[i]:
            return None
        return self._const(node, i, what)

    def _tensor(self, node, i: int) -> str:
        name = node.input[i]
        if name in self.consts:
            self._fail(f"input {i} ({name!r}) is a constant; {node.op_type} is supported on "
                       f"computed tensors only")
        return self.ir[name]

    def _all_const(self, node) -> bool:
        return all(not t or t in self.consts for t in node.input)

    def _shape(self, ir_tensor: str) -> tuple[int, ...]:
        """The batched ONNX shape of an IR tensor."""
        return (1, *self.b.shape(ir_tensor))

    def _emit(self, node, op, *inputs, weight=None, bias=None) -> None:
        self.ir[node.output[0]] = self.b.add(op, *inputs, name=self.name, output=node.output[0],
                                             weight=weight, bias=bias, where=self.where)

    def _alias(self, node, source: str) -> None:
        out = node.output[0]
        if source in self.consts:
            self.consts[out] = self.consts[source]
        else:
            self.ir[out] = self.ir[source]
            self.alias_of[out] = source

    # --- folding into conv/gemm ----------------------------------------------------------------

    def _sole_producer(self, onnx_name: str) -> Node | None:
        """The conv2d/gemm node computing ``onnx_name`` when nothing else reads that value (also
        through Identity/Dropout aliases), so it may be rescaled in place."""
        t = onnx_name
        while True:
            if self.uses[t] != 1:
                return None
            if t not in self.alias_of:
                break
            t = self.alias_of[t]
        ir_name = self.ir.get(onnx_name)
        node = next((n for n in reversed(self.b.graph.nodes) if n.output == ir_name), None)
        return node if node is not None and node.kind in ("conv2d", "gemm") else None

    def _fold_affine(self, node, target: Node, scale, shift) -> None:
        """Fold y = x * scale + shift (per output channel) into ``target``; the folded node then
        writes this node's output tensor."""
        w = target.weight.astype(np.float64)
        target.weight = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        b = target.bias.astype(np.float64) if target.bias is not None else 0.0
        target.bias = (b * scale + shift).astype(np.float32)
        target.op = dataclasses.replace(target.op, has_bias=True)
        self.b.rename(target.output, node.output[0])
        self.ir[node.output[0]] = node.output[0]

    def _fold_constant_operand(self, node) -> None:
        """Add/Sub/Mul/Div of a computed tensor and a per-channel constant, folded into the
        Conv/Gemm that computes the tensor."""
        ci = 0 if node.input[0] in self.consts else 1
        x = node.input[1 - ci]
        target = self._sole_producer(x)
        c = self.consts[node.input[ci]]
        if target is None:
            self._fail(f"{node.op_type} with a constant operand is supported only right after a "
                       f"Conv, Gemm or MatMul whose output nothing else reads (folded into it)")
        out_channels = target.op.weight_shape[0]
        vec = _channel_vector(c, len(self._shape(self.ir[x])), out_channels)
        if vec is None or (node.op_type in ("Sub", "Div") and ci == 0):
            self._fail(f"constant operand of shape {c.shape} is not supported; supported: "
                       f"x {node.op_type} c with c constant along all axes but the channels")
        ones, zeros = np.ones(out_channels), np.zeros(out_channels)
        scale, shift = {"Add": (ones, vec), "Sub": (ones, -vec), "Mul": (vec, zeros),
                        "Div": (1.0 / vec, zeros)}[node.op_type]
        self._fold_affine(node, target, scale, shift)

    # --- constants ------------------------------------------------------------------------------

    def _op_Constant(self, node):
        a = self._attrs(node, value=None, value_float=None, value_floats=None, value_int=None,
                        value_ints=None)
        if a["value"] is not None:
            value = numpy_helper.to_array(a["value"])
        elif a["value_float"] is not None or a["value_floats"] is not None:
            value = np.array(a["value_float"] if a["value_float"] is not None
                             else a["value_floats"], np.float32)
        else:
            value = np.array(a["value_int"] if a["value_int"] is not None
                             else a["value_ints"], np.int64)
        self.consts[node.output[0]] = value

    def _op_Identity(self, node):
        self._attrs(node)
        self._alias(node, node.input[0])

    def _op_Dropout(self, node):
        self._attrs(node, seed=0, ratio=0.5)
        training = self._opt_const(node, 2, "training_mode")
        if training is not None and bool(training):
            self._fail("training_mode=true is not supported; supported: inference (false)")
        self._alias(node, node.input[0])

    def _op_Shape(self, node):
        a = self._attrs(node, start=0, end=None)
        src = node.input[0]
        shape = self.consts[src].shape if src in self.consts else self._shape(self.ir[src])
        self.consts[node.output[0]] = np.array(shape[a["start"]:a["end"]], np.int64)

    def _fold_only(self, node, compute) -> None:
        if not self._all_const(node):
            self._fail(f"{node.op_type} is supported only on constants (shape arithmetic, folded "
                       f"at import)")
        self.consts[node.output[0]] = np.asarray(compute())

    def _op_Gather(self, node):
        a = self._attrs(node, axis=0)
        self._fold_only(node, lambda: np.take(self.consts[node.input[0]],
                                              self.consts[node.input[1]], axis=a["axis"]))

    def _axes(self, node, a) -> list[int] | None:
        if self.opset >= 13:
            axes = self._opt_const(node, 1, "axes")
            return None if axes is None else [int(v) for v in axes]
        return a.get("axes")

    def _op_Unsqueeze(self, node):
        a = self._attrs(node, **({} if self.opset >= 13 else {"axes": None}))
        axes = self._axes(node, a)

        def compute():
            data = self.consts[node.input[0]]
            rank = data.ndim + len(axes)
            return np.expand_dims(data, tuple(sorted(ax % rank for ax in axes)))
        self._fold_only(node, compute)

    def _op_Squeeze(self, node):
        a = self._attrs(node, **({} if self.opset >= 13 else {"axes": None}))
        axes = self._axes(node, a)
        self._fold_only(node, lambda: np.squeeze(self.consts[node.input[0]],
                                                 None if axes is None else tuple(axes)))

    def _op_Slice(self, node):
        self._attrs(node)

        def compute():
            data = self.consts[node.input[0]]
            starts, ends = self.consts[node.input[1]], self.consts[node.input[2]]
            axes = self._opt_const(node, 3, "axes")
            steps = self._opt_const(node, 4, "steps")
            axes = range(len(starts)) if axes is None else axes
            steps = np.ones(len(starts), np.int64) if steps is None else steps
            index = [slice(None)] * data.ndim
            for ax, s, e, st in zip(axes, starts, ends, steps):
                index[int(ax)] = slice(int(s), int(e), int(st))
            return data[tuple(index)]
        self._fold_only(node, compute)

    def _op_Cast(self, node):
        a = self._attrs(node, to=None, saturate=1)
        dtype = helper.tensor_dtype_to_np_dtype(a["to"])
        self._fold_only(node, lambda: self.consts[node.input[0]].astype(dtype))

    def _op_CastLike(self, node):
        """A constant cast to another tensor's type: computed tensors are float32 here."""
        self._attrs(node, saturate=1)
        like = node.input[1]
        dtype = self.consts[like].dtype if like in self.consts else np.float32
        if node.input[0] not in self.consts:
            self._fail("CastLike is supported only on constants (folded at import)")
        self.consts[node.output[0]] = self.consts[node.input[0]].astype(dtype)

    def _op_Expand(self, node):
        self._attrs(node)
        self._fold_only(node, lambda: self.consts[node.input[0]] * np.ones(
            [int(v) for v in self.consts[node.input[1]]], self.consts[node.input[0]].dtype))

    def _binary_const(self, node, fn) -> None:
        self._fold_only(node, lambda: fn(self.consts[node.input[0]], self.consts[node.input[1]]))

    def _arith(self, node, fn, ir_op) -> None:
        self._attrs(node)
        if self._all_const(node):
            self._binary_const(node, fn)
        elif any(t in self.consts for t in node.input):
            self._fold_constant_operand(node)
        elif ir_op is None:
            self._fail(f"{node.op_type} of two computed tensors is not supported; supported: Add "
                       f"and Mul of computed tensors, {node.op_type} by a per-channel constant "
                       f"right after a Conv/Gemm")
        else:
            self._emit(node, ir_op(), self._tensor(node, 0), self._tensor(node, 1))

    def _op_Add(self, node):
        self._arith(node, np.add, Add)

    def _op_Mul(self, node):
        self._arith(node, np.multiply, Mul)

    def _op_Sub(self, node):
        self._arith(node, np.subtract, None)

    def _op_Div(self, node):
        def div(a, b):
            if np.issubdtype(a.dtype, np.integer):
                return np.trunc(a / b).astype(a.dtype)
            return a / b
        self._arith(node, div, None)

    # --- compute layers -------------------------------------------------------------------------

    def _window(self, node, a, in_hw, kernel) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
        """(stride, pads as top/left/bottom/right) from strides/pads/auto_pad."""
        self._require(a, "auto_pad", ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"])
        if a["dilations"] is not None and any(d != 1 for d in a["dilations"]):
            self._fail(f"attribute dilations={list(a['dilations'])} is not supported; supported: "
                       f"dilations=1 (no dilation)")
        stride = tuple(a["strides"] or (1, 1))
        if len(stride) != 2 or len(kernel) != 2:
            self._fail(f"only 2-D windows are supported, got kernel {list(kernel)}")
        if a["auto_pad"] in ("SAME_UPPER", "SAME_LOWER"):
            upper = a["auto_pad"] == "SAME_UPPER"
            (pt, pb), (pl, pr) = (_same_pads(in_hw[i], kernel[i], stride[i], upper)
                                  for i in range(2))
            return stride, (pt, pl, pb, pr)
        pads = tuple(a["pads"] or (0, 0, 0, 0)) if a["auto_pad"] == "NOTSET" else (0, 0, 0, 0)
        return stride, pads

    def _op_Conv(self, node):
        a = self._attrs(node, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                        pads=None, strides=None)
        x = self._tensor(node, 0)
        w = self._const(node, 1, "weight")
        b = self._opt_const(node, 2, "bias")
        shape = self._shape(x)
        if w.ndim != 4 or len(shape) != 4:
            self._fail(f"only 2-D convolution (4-D weight and input) is supported, got weight "
                       f"shape {w.shape}")
        if a["kernel_shape"] is not None and tuple(a["kernel_shape"]) != w.shape[2:]:
            self._fail(f"kernel_shape {list(a['kernel_shape'])} disagrees with the weight "
                       f"shape {w.shape}")
        if w.shape[1] * a["group"] != shape[1]:
            self._fail(f"weight shape {w.shape} with group={a['group']} does not match "
                       f"{shape[1]} input channels")
        stride, pads = self._window(node, a, shape[2:], w.shape[2:])
        op = Conv2d(shape[1], w.shape[0], w.shape[2:], stride, pads, a["group"], b is not None)
        self._emit(node, op, x, weight=self._float(w, "weight"),
                   bias=None if b is None else self._float(b, "bias"))

    def _float(self, value: np.ndarray, what: str) -> np.ndarray:
        if not np.issubdtype(value.dtype, np.floating):
            self._fail(f"{what} has type {value.dtype}; supported: floating-point weights "
                       f"(quantized models are not imported)")
        return np.ascontiguousarray(value, dtype=np.float32)

    def _vector_input(self, node) -> str:
        x = self._tensor(node, 0)
        if len(self._shape(x)) != 2:
            self._fail(f"input of shape {self._shape(x)} is not supported; supported: (1, F) "
                       f"(flatten feature maps first)")
        return x

    def _op_Gemm(self, node):
        a = self._attrs(node, alpha=1.0, beta=1.0, transA=0, transB=0)
        self._require(a, "transA", [0])
        x = self._vector_input(node)
        w = self._float(self._const(node, 1, "B"), "weight")
        w = (w if a["transB"] else w.T) * np.float32(a["alpha"])
        c = self._opt_const(node, 2, "C")
        bias = None
        if c is not None:
            if c.size not in (1, w.shape[0]) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
                self._fail(f"bias C of shape {c.shape} is not supported; supported: (N,), "
                           f"(1, N) or a scalar")
            bias = np.broadcast_to(self._float(c, "bias").reshape(-1) * np.float32(a["beta"]),
                                   (w.shape[0],)).copy()
        op = Gemm(w.shape[1], w.shape[0], bias is not None)
        self._emit(node, op, x, weight=np.ascontiguousarray(w, np.float32), bias=bias)

    def _op_MatMul(self, node):
        self._attrs(node)
        x = self._vector_input(node)
        w = self._float(self._const(node, 1, "weight"), "weight")
        if w.ndim != 2:
            self._fail(f"weight of shape {w.shape} is not supported; supported: a 2-D constant")
        self._emit(node, Gemm(w.shape[0], w.shape[1], False), x,
                   weight=np.ascontiguousarray(w.T))

    def _op_BatchNormalization(self, node):
        a = self._attrs(node, epsilon=1e-5, momentum=0.9, training_mode=0)
        self._require(a, "training_mode", [0])
        target = self._sole_producer(node.input[0])
        if target is None:
            src = next((n for n in self.b.graph.nodes if n.output == self.ir.get(node.input[0])),
                       None)
            what = f"{src.kind} node {src.name!r}" if src else "a graph input or constant"
            self._fail(f"cannot fold: its input comes from {what} or is also read elsewhere; "
                       f"supported: BatchNormalization directly after a Conv, Gemm or MatMul whose "
                       f"output nothing else reads")
        gamma, beta, mean, var = (self._const(node, i, w).astype(np.float64)
                                  for i, w in enumerate(("scale", "B", "mean", "var"), 1))
        scale = gamma / np.sqrt(var + a["epsilon"])
        self._fold_affine(node, target, scale, beta - mean * scale)

    def _unary(self, node, op) -> None:
        self._emit(node, op, self._tensor(node, 0))

    def _op_Relu(self, node):
        self._attrs(node)
        self._unary(node, Relu())

    def _op_Sigmoid(self, node):
        self._attrs(node)
        self._unary(node, Sigmoid())

    def _op_HardSigmoid(self, node):
        a = self._attrs(node, alpha=0.2, beta=0.5)
        self._unary(node, HardSigmoid(float(a["alpha"]), float(a["beta"])))

    def _op_HardSwish(self, node):
        self._attrs(node)
        self._unary(node, HardSwish())

    def _op_Clip(self, node):
        self._attrs(node)
        lo, hi = self._opt_const(node, 1, "min"), self._opt_const(node, 2, "max")
        self._unary(node, Clip(-math.inf if lo is None else float(lo),
                               math.inf if hi is None else float(hi)))

    def _op_Softmax(self, node):
        a = self._attrs(node, axis=-1 if self.opset >= 13 else 1)
        x = self._tensor(node, 0)
        rank = len(self._shape(x))
        axis = a["axis"] % rank
        if axis == 0:
            self._fail("softmax over the batch axis is not supported; supported: axis >= 1")
        if self.opset < 13 and axis != rank - 1:
            self._fail(f"opset {self.opset} Softmax over axes {axis}..{rank - 1} together is "
                       f"not supported; supported: the last axis (or opset >= 13)")
        self._unary(node, Softmax(axis - 1))

    def _pool(self, node, cls, **extra) -> None:
        a = self._attrs(node, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None,
                        pads=None, strides=None, **extra)
        x = self._tensor(node, 0)
        shape = self._shape(x)
        if len(shape) != 4:
            self._fail(f"input of shape {shape} is not supported; supported: (1, C, H, W)")
        stride, pads = self._window(node, a, shape[2:], a["kernel_shape"])
        kwargs = {"count_include_pad": bool(a["count_include_pad"])} if cls is AvgPool else {}
        if "storage_order" in a:
            self._require(a, "storage_order", [0])
        self._unary(node, cls(tuple(a["kernel_shape"]), stride, pads, bool(a["ceil_mode"]),
                              **kwargs))

    def _op_MaxPool(self, node):
        self._pool(node, MaxPool, storage_order=0)

    def _op_AveragePool(self, node):
        self._pool(node, AvgPool, count_include_pad=0)

    def _op_GlobalAveragePool(self, node):
        self._attrs(node)
        self._unary(node, GlobalAvgPool())

    def _op_ReduceMean(self, node):
        """The mean over the spatial axes of an NCHW map, as exporters write
        ``AdaptiveAvgPool2d(1)`` and ``x.mean((2, 3))``: a global average pool, flattened when
        ``keepdims`` is 0."""
        a = self._attrs(node, keepdims=1, noop_with_empty_axes=0,
                        **({} if self.opset >= 18 else {"axes": None}))
        x = self._tensor(node, 0)
        rank = len(self._shape(x))
        axes = self._opt_const(node, 1, "axes") if self.opset >= 18 else a["axes"]
        if axes is None or sorted(int(v) % rank for v in axes) != [2, 3] or rank != 4:
            shown = "all" if axes is None else [int(v) for v in axes]
            self._fail(f"axes={shown} of a rank-{rank} tensor is not supported; supported: "
                       f"the spatial axes [2, 3] (or [-2, -1]) of an NCHW feature map")
        if a["keepdims"]:
            self._unary(node, GlobalAvgPool())
            return
        pooled = self.b.add(GlobalAvgPool(), x, name=f"{self.name}/pool",
                            output=f"{node.output[0]}/pool", where=self.where)
        self.ir[node.output[0]] = self.b.add(Flatten(), pooled, name=self.name,
                                             output=node.output[0], where=self.where)

    def _op_Flatten(self, node):
        a = self._attrs(node, axis=1)
        x = self._tensor(node, 0)
        rank = len(self._shape(x))
        if a["axis"] % rank > 1:
            self._fail(f"axis={a['axis']} is not supported; supported: 0 or 1 (keep the batch)")
        if rank == 2:
            self._alias(node, node.input[0])
        else:
            self._unary(node, Flatten())

    def _op_Reshape(self, node):
        a = self._attrs(node, allowzero=0)
        target = self._const(node, 1, "shape")
        if node.input[0] in self.consts:
            data = self.consts[node.input[0]]
            self.consts[node.output[0]] = data.reshape(_reshape_target(data.shape, target,
                                                                       a["allowzero"]))
            return
        x = self._tensor(node, 0)
        shape = self._shape(x)
        out = _reshape_target(shape, target, a["allowzero"])
        if out[0] != 1:
            self._fail(f"reshaping {shape} into {out} moves the batch dimension; supported: "
                       f"targets that keep the batch of 1 first")
        if out == shape:
            self._alias(node, node.input[0])
        elif len(out) == 2:
            self._unary(node, Flatten())
        else:
            self._unary(node, Reshape(out[1:]))

    def _op_Concat(self, node):
        a = self._attrs(node, axis=None)
        if self._all_const(node):
            self._fold_only(node, lambda: np.concatenate([self.consts[t] for t in node.input],
                                                         axis=a["axis"]))
            return
        xs = [self._tensor(node, i) for i in range(len(node.input))]
        axis = a["axis"] % len(self._shape(xs[0]))
        if axis == 0:
            self._fail("concatenation along the batch axis is not supported; supported: axis >= 1")
        self._emit(node, Concat(axis - 1), *xs)

    def _op_Resize(self, node):
        a = self._attrs(node, antialias=0, axes=None, coordinate_transformation_mode="half_pixel",
                        cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=0.0,
                        keep_aspect_ratio_policy="stretch", mode="nearest",
                        nearest_mode="round_prefer_floor")
        for key, ok in (("antialias", [0]), ("axes", [None]), ("exclude_outside", [0]),
                        ("keep_aspect_ratio_policy", ["stretch"])):
            self._require(a, key, ok)
        x = self._tensor(node, 0)
        shape = self._shape(x)
        scales, sizes = self._opt_const(node, 2, "scales"), self._opt_const(node, 3, "sizes")
        if sizes is not None and sizes.size:
            out = tuple(int(s) for s in sizes)
        elif scales is not None and scales.size == len(shape):
            exact = [d * float(s) for d, s in zip(shape, scales)]
            if any(e != int(e) for e in exact):
                self._fail(f"scales {list(scales)} give a fractional output size for input "
                           f"{shape}; supported: scales giving whole sizes, or sizes")
            out = tuple(int(e) for e in exact)
        else:
            self._fail("needs constant scales or sizes for all 4 axes")
        if len(shape) != 4 or out[:2] != shape[:2]:
            self._fail(f"resizing {shape} to {out} is not supported; supported: (1, C, H, W) "
                       f"resized along H and W only")
        mode, ctm = a["mode"], a["coordinate_transformation_mode"]
        if mode == "linear" and ctm in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            if ctm == "pytorch_half_pixel" and min(out[2:]) == 1 and max(shape[2:]) > 1:
                self._fail("pytorch_half_pixel resizing to a size of 1 is not supported")
            op = Resize(out[2:], "bilinear", ctm == "align_corners")
        elif mode == "nearest" and ctm == "asymmetric" and a["nearest_mode"] == "floor":
            op = Resize(out[2:], "nearest")
        else:
            self._fail(f"mode={mode!r} with coordinate_transformation_mode={ctm!r} is not "
                       f"supported; supported: mode 'linear' with 'half_pixel', "
                       f"'pytorch_half_pixel' or 'align_corners'; mode 'nearest' with "
                       f"'asymmetric' and nearest_mode 'floor'")
        self._unary(node, op)


#: ONNX operators the importer understands (the error for any other one lists these).
SUPPORTED_OPERATORS = sorted(name[4:] for name in vars(_Importer) if name.startswith("_op_"))
