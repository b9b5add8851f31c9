"""From a graph to the work an accelerator runs and the work left to the host (docs/models.md).

Convolutions and fully connected layers run on the accelerator, a ReLU that is their only
consumer fuses into them (and, where the array has a pooling unit, a following 2x2/2 max pool);
every other operator is a *host step*: it is listed with its element-wise operation count, never
dropped. A Flatten (or Reshape to a vector) before a Gemm is free: the Gemm reads the map as a
vector.
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.errors import CompileError

from .graph import Conv2d, Gemm, Graph, MaxPool, Relu
from .layers import LayerShape


@dataclass(frozen=True)
class HostStep:
    name: str
    kind: str
    ops: int          # element-wise operations
    elements: int     # output elements


@dataclass(frozen=True)
class Lowered:
    layers: list[LayerShape]      # accelerator layers, in topological order
    host: list[HostStep]          # the rest
    fused: dict[str, str]         # graph node -> the accelerator layer it fused into


def lower_shapes(graph: Graph, fuse_pool: bool = False) -> Lowered:
    """Accelerator layers and host steps of ``graph`` (shapes only; weights are not needed)."""
    shapes = graph.validate()
    stats = {s.name: s for s in graph.stats()}
    layers, host, fused = [], [], {}
    by_name = {}
    for node in graph.nodes:
        if node.name in fused:
            continue
        op = node.op
        if isinstance(op, Conv2d):
            C, H, W = shapes[node.inputs[0]]
            if op.stride[0] != op.stride[1]:
                raise CompileError(f"node '{node.name}': stride {op.stride} is not supported: "
                                   "allowed are equal strides")
            shape = LayerShape(node.name, "conv", C=C, K=op.out_channels, H=H, W=W,
                               R=op.kernel[0], S=op.kernel[1], stride=op.stride[0],
                               pads=tuple(op.pads), groups=op.groups)
        elif isinstance(op, Gemm):
            shape = LayerShape.gemm(node.name, 1, op.in_features, op.out_features, kind="fc")
        else:
            st = stats[node.name]
            host.append(HostStep(node.name, op.kind, st.ops, st.activations))
            continue
        # Fuse a ReLU (and optionally a 2x2/2 max pool) that only this layer feeds.
        out = node.output
        relu = pool = False
        users = graph.consumers(out)
        if len(users) == 1 and isinstance(users[0].op, Relu) and out not in graph.outputs:
            relu = True
            fused[users[0].name] = node.name
            out = users[0].output
            users = graph.consumers(out)
        if (fuse_pool and len(users) == 1 and isinstance(users[0].op, MaxPool)
                and users[0].op.kernel == (2, 2) and users[0].op.stride == (2, 2)
                and not any(users[0].op.pads) and out not in graph.outputs):
            pool = True
            fused[users[0].name] = node.name
        if relu or pool:
            shape = LayerShape(shape.name, shape.kind, C=shape.C, K=shape.K, H=shape.H,
                               W=shape.W, R=shape.R, S=shape.S, stride=shape.stride,
                               pads=shape.pads, relu=relu, pool=pool, groups=shape.groups)
        layers.append(shape)
        by_name[node.name] = shape
    return Lowered(layers, host, fused)
