"""Bottleneck traffic report (bottleneck-multichip.md): how narrowing the bottleneck layers of a
ResNet-style model changes the data each layer moves and the data crossing a chip boundary.

A *bottleneck ratio* r divides the width of every convolution inside a residual branch except
the branch's last one (ResNet's BasicBlock conv1, Bottleneck conv1 and conv2, MobileNetV2's
expansion): ``floor(width / r)``, at least 1. A residual branch is the chain of convolutions
(with ReLU or Clip between them) from the block input to a residual ``add``; a branch with
anything else on it is left alone. Everything is counted in int8 bytes: a layer moves its input
activations, its weights and its output activations; a boundary after node B is crossed by
every tensor written at or before B and read after it (a skip connection included).
"""

from __future__ import annotations

import math

from tessera.errors import SpecError

from .graph import Graph, Node
from .splitter import ACT_BYTES, WEIGHT_BYTES, out_width, rewidth

RATIOS = (1, 2, 4, 8, 16, 32)
_UNARY = ("relu", "clip")


def bottleneck_convs(graph: Graph) -> list[str]:
    """Names of the convolutions a bottleneck ratio narrows, in graph order."""
    names = set()
    inputs = set(graph.inputs)
    for add in (n for n in graph.nodes if n.kind == "add"):
        for t in add.inputs:
            path = []
            node = graph.producer(t)
            while node is not None and (node.kind in _UNARY or node.kind == "conv2d"):
                if node.kind == "conv2d":
                    path.append(node.name)
                t = node.inputs[0]
                if t in inputs or len(graph.consumers(t)) > 1:
                    break
                node = graph.producer(t)
            # A branch starts where the block's input forks (to the branch and the skip).
            if t not in inputs and len(graph.consumers(t)) > 1:
                names.update(path[1:])  # path runs backwards: all but the branch's last conv
    return [n.name for n in graph.nodes if n.name in names]


def with_ratio(graph: Graph, ratio: int) -> Graph:
    """A shape-only copy with the bottleneck convolutions narrowed by ``ratio``."""
    if not isinstance(ratio, int) or ratio < 1:
        raise SpecError(f"bottleneck ratio {ratio!r} is invalid: allowed is a positive integer")
    narrow = set(bottleneck_convs(graph))

    def width(node: Node) -> int:
        w = out_width(node)
        return max(1, w // ratio) if node.name in narrow else w

    return rewidth(graph, width, f"{graph.name}-b{ratio}")


def layer_traffic(graph: Graph) -> list[dict]:
    """Bytes each conv/gemm layer reads (activations, weights) and writes, in graph order."""
    rows = []
    for st, node in zip(graph.stats(), graph.nodes):
        if node.kind not in ("conv2d", "gemm"):
            continue
        row = {"name": node.name, "kind": node.kind,
               "input_bytes": sum(math.prod(s) for s in st.input_shapes) * ACT_BYTES,
               "weight_bytes": math.prod(node.op.weight_shape) * WEIGHT_BYTES,
               "output_bytes": st.activations * ACT_BYTES}
        row["bytes"] = row["input_bytes"] + row["weight_bytes"] + row["output_bytes"]
        rows.append(row)
    return rows


def crossing(graph: Graph, boundary: str) -> list[dict]:
    """The tensors crossing a chip boundary placed after node ``boundary``."""
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    if boundary not in order:
        raise SpecError(f"boundary node '{boundary}' is not in model '{graph.name}': allowed is "
                        "a node name (see `tessera zoo NAME`)")
    cut = order[boundary]
    shapes = graph.shapes()
    written = set(graph.inputs) | {n.output for n in graph.nodes[:cut + 1]}
    read = {t for n in graph.nodes[cut + 1:] for t in n.inputs}
    return [{"tensor": t, "shape": list(shapes[t]), "bytes": math.prod(shapes[t]) * ACT_BYTES}
            for t in sorted(written & read, key=lambda t: (order.get(t, -1), t))]


def default_boundary(graph: Graph) -> str:
    """The activation of a bottleneck convolution nearest the middle of the model's MACs (any
    node nearest the middle when the model has none)."""
    ends = set()
    for name in bottleneck_convs(graph):
        node = graph.node(name)
        while len(users := graph.consumers(node.output)) == 1 and users[0].kind in _UNARY:
            node = users[0]
        ends.add(node.name)
    stats = graph.stats()
    total = sum(s.macs for s in stats)
    done, best = 0, None
    for node, st in zip(graph.nodes, stats):
        done += st.macs
        if ends and node.name not in ends:
            continue
        score = abs(done - total / 2)
        if best is None or score < best[0]:
            best = (score, node.name)
    return best[1]


def traffic_report(graph: Graph, ratios=RATIOS, boundary: str | None = None,
                   cfg=None) -> dict:
    """Per ratio: parameters, MACs, every layer's bytes and the bytes crossing ``boundary``
    (default: ``default_boundary``). With an accelerator configuration ``cfg`` each layer also
    gets the DRAM bytes the cycle simulator counts for it (re-reads of tiles included)."""
    ratios = sorted(set(ratios))
    if not ratios:
        raise SpecError("no bottleneck ratios given: allowed is a list such as 1,2,4,8,16,32")
    boundary = boundary or default_boundary(graph)
    narrowed = bottleneck_convs(graph)
    per_ratio = []
    for r in ratios:
        g = with_ratio(graph, r)
        layers = layer_traffic(g)
        if cfg is not None:
            from .runtime import simulate_graph

            rep, _, _ = simulate_graph(g, cfg)
            dram = {l.name: int(l.events.get("dram.read_bytes", 0)
                                + l.events.get("dram.write_bytes", 0)) for l in rep.layers}
            for row in layers:
                row["dram_bytes"] = dram[row["name"]]
        tensors = crossing(g, boundary)
        per_ratio.append({
            "ratio": r, "params": g.params, "macs": g.macs,
            "bytes": sum(row["bytes"] for row in layers),
            "boundary": {"bytes": sum(t["bytes"] for t in tensors), "tensors": tensors},
            "layers": layers,
        })
    return {"model": graph.name, "boundary": boundary, "narrowed": narrowed,
            "ratios": per_ratio, "units": "bytes (int8 activations and weights)",
            **({"arch": cfg.arch, "config_hash": cfg.config_hash} if cfg is not None else {})}


def plot_traffic(report: dict, path) -> None:
    """Data moved per layer for each ratio (the paper's Fig. 3) and the boundary traffic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    for entry in report["ratios"]:
        ys = [row["bytes"] / 1024 for row in entry["layers"]]
        a.plot(range(1, len(ys) + 1), ys, marker=".", label=f"ratio {entry['ratio']}")
    a.set(xlabel="layer (conv/gemm, in order)", ylabel="data moved per layer (KiB)", yscale="log",
          title=f"{report['model']}: activations in + weights + activations out")
    a.xaxis.get_major_locator().set_params(integer=True)
    a.legend(fontsize="small")
    a.grid(alpha=.3)
    labels = [str(e["ratio"]) for e in report["ratios"]]
    bottom = [0.0] * len(labels)
    for i, tensor in enumerate(report["ratios"][0]["boundary"]["tensors"]):
        kib = [e["boundary"]["tensors"][i]["bytes"] / 1024 for e in report["ratios"]]
        b.bar(labels, kib, bottom=bottom, label=tensor["tensor"])
        bottom = [x + y for x, y in zip(bottom, kib)]
    b.set(xlabel="bottleneck ratio", ylabel="KiB crossing the boundary",
          title=f"boundary after {report['boundary']}")
    b.legend(fontsize="small")
    b.title.set_fontsize("small")
    b.grid(alpha=.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
