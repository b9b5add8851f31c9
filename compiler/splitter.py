"""The LCP splitter (lcp.md, Procedure 1) and what a split model costs on several accelerators.

A model is cut into ``n`` narrow, independent branches: every conv and fully connected layer but
the classifier keeps ``floor(width / n)`` output channels (at least 1), each branch reads the
whole input, and the branches' pre-final activations are concatenated before the classifier
("RemoveNonBranchConnections"). Procedure 1 multiplies ``n`` by the division factor until one
branch fits a device's memory and MAC budget; fattening by F% then widens every split layer to
``floor(width * (100 + F) / (100 * n))``. Split models are new architectures to be trained: the
graphs here carry no weights.

Communication is counted on one shared link (the LCP paper's WiFi) whose every message costs a
latency and every byte a transfer time and energy (``Link``). The input and the result live on
device 0, which also runs the classifier.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

from tessera.errors import SpecError

from .graph import Concat, Conv2d, Gemm, Graph, GraphBuilder, Node, Reshape
from .layers import LayerShape

#: Bytes per stored weight, per bias and per activation element (int8 weights and activations,
#: int32 biases: what the accelerators store).
WEIGHT_BYTES, BIAS_BYTES, ACT_BYTES = 1, 4, 1


@dataclass(frozen=True)
class Link:
    """The inter-chip link: ``latency`` seconds per message, ``bandwidth`` bytes per second and
    ``energy_per_byte`` joules. Defaults: the WiFi the LCP paper measured between its devices
    (62.24 Mbit/s, 8.83 ms client to client) and 10 nJ/bit, an assumed 802.11 radio figure."""

    bandwidth: float = 62.24e6 / 8
    latency: float = 8.83e-3
    energy_per_byte: float = 80e-9

    def __post_init__(self):
        for name in ("bandwidth", "latency", "energy_per_byte"):
            value = getattr(self, name)
            if not (value > 0 if name == "bandwidth" else value >= 0):
                raise SpecError(f"link {name} = {value!r} is invalid: allowed is a "
                                + ("positive" if name == "bandwidth" else "non-negative")
                                + " number")

    def seconds(self, nbytes: int, messages: int) -> float:
        return messages * self.latency + nbytes / self.bandwidth


@dataclass(frozen=True)
class Footprint:
    """What one device must hold and compute: int8 weights and int32 biases, the largest input
    plus output of any one node (int8), and the multiply-accumulates."""

    params: int
    weight_bytes: int
    activation_bytes: int
    macs: int

    @property
    def memory(self) -> int:
        return self.weight_bytes + self.activation_bytes

    def to_json(self) -> dict:
        return {"params": self.params, "weight_bytes": self.weight_bytes,
                "activation_bytes": self.activation_bytes, "memory_bytes": self.memory,
                "macs": self.macs}


def footprint(graph: Graph) -> Footprint:
    stats = graph.stats()
    wbytes = 0
    for node in graph.nodes:
        if node.kind in ("conv2d", "gemm"):
            wbytes += math.prod(node.op.weight_shape) * WEIGHT_BYTES
            wbytes += node.op.weight_shape[0] * BIAS_BYTES if node.op.has_bias else 0
    act = max((sum(math.prod(s) for s in st.input_shapes) + st.activations) * ACT_BYTES
              for st in stats)
    return Footprint(graph.params, wbytes, act, sum(s.macs for s in stats))


def rewidth(graph: Graph, width: Callable[[Node], int], name: str, nodes: list[Node] | None = None,
            inputs: dict | None = None, outputs: list[str] | None = None) -> Graph:
    """A shape-only copy of ``graph`` (or of ``nodes`` over ``inputs``) in which every dense
    conv2d and gemm has ``width(node)`` outputs; depthwise convs and every input width follow
    their producers."""
    b = GraphBuilder(name, inputs if inputs is not None else graph.inputs)
    for node in graph.nodes if nodes is None else nodes:
        op, where = node.op, f"node {node.name!r} ({node.kind})"
        shape = b.shape(node.inputs[0])
        if isinstance(op, Conv2d):
            c = shape[0]
            if op.depthwise:
                op = dataclasses.replace(op, in_channels=c, out_channels=c, groups=c)
            elif op.groups == 1:
                op = dataclasses.replace(op, in_channels=c, out_channels=width(node))
            else:
                raise SpecError(f"{where}: a grouped convolution (groups={op.groups}) cannot "
                                "change width: allowed are groups=1 and depthwise")
        elif isinstance(op, Gemm):
            op = dataclasses.replace(op, in_features=shape[0], out_features=width(node))
        elif isinstance(op, Reshape):
            if len(op.shape) != 1:
                raise SpecError(f"{where}: reshape to {op.shape} cannot change width: allowed "
                                "is a reshape to a vector")
            op = Reshape((math.prod(shape),))
        b.add(op, *node.inputs, name=node.name, output=node.output, where=where)
    return b.build(*(graph.outputs if outputs is None else outputs))


def out_width(node: Node) -> int:
    """Output channels of a conv2d, output features of a gemm."""
    return node.op.out_channels if node.kind == "conv2d" else node.op.out_features


@dataclass
class Split:
    """A split (or split-fattened) model: ``branch`` is one branch (input -> pre-final
    activation), ``head`` the concatenation and classifier, ``model`` the whole split network."""

    original: Graph
    branches: int
    fatten: int
    branch: Graph
    head: Graph
    model: Graph


def _parts(graph: Graph) -> tuple[list[Node], list[Node], str]:
    """(body, tail, end): the tail is the classifier (the last conv/gemm) and what follows it,
    the body what it reads, ``end`` the pre-final activation."""
    where = f"model '{graph.name}'"
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise SpecError(f"{where} has {len(graph.inputs)} inputs and {len(graph.outputs)} "
                        "outputs: the splitter allows one of each")
    weighted = [i for i, n in enumerate(graph.nodes) if n.kind in ("conv2d", "gemm")]
    if len(weighted) < 2:
        raise SpecError(f"{where} has {len(weighted)} conv/gemm layer(s): splitting needs a "
                        "classifier and at least one layer before it")
    cut = weighted[-1]
    body, tail = graph.nodes[:cut], graph.nodes[cut:]
    end = tail[0].inputs[0]
    known = {end} | {n.output for n in tail}
    for n in tail:
        bad = [t for t in n.inputs if t not in known]
        if bad:
            raise SpecError(f"{where}: node {n.name!r} after the classifier reads {bad[0]!r}: "
                            "allowed is only the classifier's output")
    if end in graph.inputs:
        raise SpecError(f"{where}: the classifier reads the model input: nothing to split")
    return body, tail, end


def split_model(graph: Graph, branches: int, fatten: int = 0) -> Split:
    """The split-only (``fatten`` = 0) or split-fattened model with ``branches`` branches."""
    if not isinstance(branches, int) or branches < 1:
        raise SpecError(f"branches = {branches!r} is invalid: allowed is a positive integer")
    if not isinstance(fatten, int) or fatten < 0:
        raise SpecError(f"fatten = {fatten!r} is invalid: allowed is a percentage >= 0")
    body, tail, end = _parts(graph)

    def narrow(node):
        return max(1, out_width(node) * (100 + fatten) // (100 * branches))

    branch = rewidth(graph, narrow, f"{graph.name}-branch", body, outputs=[end])
    end_shape = branch.shapes()[end]
    ends = {f"b{i}.{end}": end_shape for i in range(branches)}
    head_nodes = [Node("concat", Concat(0), tuple(ends), end)] if branches > 1 else []
    head = rewidth(graph, out_width, f"{graph.name}-head", head_nodes + tail,
                   inputs=ends if branches > 1 else {end: end_shape})
    suffix = f"-split{branches}" + (f"-f{fatten}" if fatten else "")
    b = GraphBuilder(graph.name + suffix, graph.inputs)
    for i in range(branches):
        def rename(t, i=i):
            return t if t in graph.inputs or branches == 1 else f"b{i}.{t}"
        for node in branch.nodes:
            b.add(node.op, *map(rename, node.inputs), name=rename(node.name),
                  output=rename(node.output))
    for node in head.nodes:
        b.add(node.op, *node.inputs, name=node.name, output=node.output)
    return Split(graph, branches, fatten, branch, head, b.build(*graph.outputs))


def lcp_split(graph: Graph, devices: int, division_factor: int = 2,
              device_memory: int | None = None, device_macs: int | None = None,
              fatten: int = 0, branches: int | None = None) -> tuple[Split, dict]:
    """Procedure 1: divide every width by ``division_factor`` until one branch fits
    ``device_memory`` bytes and ``device_macs`` MACs (default: the model's footprint divided by
    ``devices``, LCP Table I's target), then fatten by ``fatten`` percent. ``branches`` skips the
    search. Returns the split and the search's trace."""
    for name, value, low in (("devices", devices, 1), ("division factor", division_factor, 2)):
        if not isinstance(value, int) or value < low:
            raise SpecError(f"{name} = {value!r} is invalid: allowed is an integer >= {low}")
    whole = footprint(graph)
    budget = {"memory_bytes": device_memory or -(-whole.memory // devices),
              "macs": device_macs or -(-whole.macs // devices)}
    for key, value in budget.items():
        if value < 1:
            raise SpecError(f"device {key} = {value!r} is invalid: allowed is a positive number")
    body, _, _ = _parts(graph)
    widths = [out_width(x) for x in body if x.kind in ("conv2d", "gemm")]
    trace = []
    n = branches or 1
    while True:
        fp = whole if n == 1 else footprint(split_model(graph, n).branch)
        fits = {"memory": fp.memory <= budget["memory_bytes"], "macs": fp.macs <= budget["macs"]}
        trace.append({"branches": n, **fp.to_json(), "fits_memory": fits["memory"],
                      "fits_macs": fits["macs"]})
        if branches or all(fits.values()):
            break
        if n > 1 and all(w // n <= 1 for w in widths):  # dividing further changes nothing
            raise SpecError(f"model '{graph.name}' does not fit the device: {n} branches of "
                            f"width 1 need {fp.memory} bytes and {fp.macs} MACs each, the budget "
                            f"is {budget['memory_bytes']} bytes and {budget['macs']} MACs")
        n *= division_factor
    split = split_model(graph, n, fatten)
    fp = footprint(split.branch) if n > 1 else footprint(split.model)
    return split, {"budget": budget, "trace": trace, "branch": fp.to_json(),
                   "fits": fp.memory <= budget["memory_bytes"] and fp.macs <= budget["macs"]}


def _elements(shape) -> int:
    return math.prod(shape) * ACT_BYTES


def communication(split: Split, devices: int) -> dict:
    """Bytes and messages per inference on the shared link: LCP (the input to every device
    running a branch, each remote branch's pre-final activation back to device 0) against model
    parallelism of the original model over the same devices (every layer's output channels
    divided among them: the input of each dense conv/gemm is exchanged, every device sending
    its share once; the result gathered on device 0)."""
    g = split.original
    shapes = g.shapes()
    inp, out = next(iter(g.inputs)), g.outputs[0]
    remote = sum(1 for i in range(split.branches) if i % devices)
    end = _elements(next(iter(split.head.inputs.values())))
    lcp = {"input_bytes": _elements(shapes[inp]) if remote else 0,
           "intermediate_bytes": remote * end, "output_bytes": 0,
           "messages": (1 + remote) if remote else 0}
    exchanged = {n.inputs[0] for n in g.nodes
                 if n.kind == "gemm" or (n.kind == "conv2d" and n.op.groups == 1)} - {inp}
    if devices == 1:
        exchanged = set()
    mp = {"input_bytes": _elements(shapes[inp]) if devices > 1 else 0,
          "intermediate_bytes": sum(_elements(shapes[t]) for t in exchanged),
          "output_bytes": _elements(shapes[out]) * (devices - 1) // devices,
          "messages": (devices + devices * len(exchanged)) if devices > 1 else 0,
          "exchanges": len(exchanged)}
    for d in (lcp, mp):
        d["bytes"] = d["input_bytes"] + d["intermediate_bytes"] + d["output_bytes"]
    return {"lcp": lcp, "model_parallel": mp}


def _share(devices: int) -> Callable[[LayerShape], LayerShape]:
    """One device's part of a layer under model parallelism: ceil(K / devices) outputs."""
    def share(s: LayerShape) -> LayerShape:
        k = -(-s.K // devices)
        if s.depthwise:
            return dataclasses.replace(s, C=k, K=k, groups=k)
        return dataclasses.replace(s, K=k)
    return share


def simulate_split(split: Split, devices: int, cfg, link: Link = Link(), host=None) -> dict:
    """End-to-end latency and energy per inference of the original model on one accelerator,
    of model parallelism and of the split model on ``devices`` accelerator instances.

    LCP: input broadcast, then each device runs its ceil(n / devices) branches one after the
    other (all branches in parallel across devices), the remote pre-final activations cross the
    link one message each, then device 0 runs the head. Model parallelism: each layer runs on
    every device on its share of the output channels, with the exchanges of ``communication``
    between layers; host steps are divided among the devices. Energy adds the accelerators' (the
    simulator's) and the link's; host energy is not modelled."""
    from .runtime import HostModel, simulate_graph

    host = host or HostModel()
    comm = communication(split, devices)

    def run(graph, layer_map=None):
        rep, hr, _ = simulate_graph(graph, cfg, host, layer_map)
        return (rep.latency_us(rep.total.cycles), hr["total"]["time_us"],
                rep.total.energy_pj.get("total", 0.0))

    def result(compute_us, host_us, bytes_, messages, acc_pj):
        link_us = link.seconds(bytes_, messages) * 1e6
        link_uj = bytes_ * link.energy_per_byte * 1e6
        return {"compute_us": compute_us, "host_us": host_us, "link_us": link_us,
                "total_us": compute_us + host_us + link_us, "accelerator_energy_uj": acc_pj / 1e6,
                "link_energy_uj": link_uj, "energy_uj": acc_pj / 1e6 + link_uj}

    acc_us, host_us, pj = run(split.original)
    single = result(acc_us, host_us, 0, 0, pj)
    acc_us, host_us, pj = run(split.original, _share(devices))
    mp = comm["model_parallel"]
    model_parallel = result(acc_us, host_us / devices, mp["bytes"], mp["messages"],
                            pj * devices)
    b_us, b_host, b_pj = run(split.branch)
    h_us, h_host, h_pj = run(split.head)
    rounds = -(-split.branches // devices)
    c = comm["lcp"]
    lcp = result(rounds * b_us + h_us, rounds * b_host + h_host, c["bytes"], c["messages"],
                 split.branches * b_pj + h_pj)
    lcp.update(rounds=rounds, busy_devices=min(devices, split.branches))
    return {"single": single, "model_parallel": model_parallel, "lcp": lcp,
            "link": dataclasses.asdict(link), "host": dataclasses.asdict(host),
            "arch": cfg.arch, "config_hash": cfg.config_hash, "clock_mhz": cfg.clock_mhz}


def split_report(graph: Graph, devices: int, cfg, division_factor: int = 2,
                 device_memory: int | None = None, device_macs: int | None = None,
                 fatten: int = 0, branches: int | None = None, link: Link = Link(),
                 host=None) -> dict:
    """Everything `tessera split` shows: the splitter's search, the models' sizes, and per
    inference on ``devices`` accelerators the footprint per device, the link traffic, latency
    and energy of one device, model parallelism and the split model."""
    split, search = lcp_split(graph, devices, division_factor, device_memory, device_macs,
                              fatten, branches)
    whole = footprint(graph)
    comm = communication(split, devices)
    sim = simulate_split(split, devices, cfg, link, host)
    rounds = sim["lcp"]["rounds"]
    head = footprint(split.head)
    branch = footprint(split.branch)
    per_device = {  # device 0's share: it also runs the head
        "single": {"memory_bytes": whole.memory, "macs": whole.macs},
        "model_parallel": {"memory_bytes": -(-whole.memory // devices),
                           "macs": -(-whole.macs // devices)},
        "lcp": {"memory_bytes": rounds * branch.weight_bytes + head.weight_bytes
                + max(branch.activation_bytes, head.activation_bytes),
                "macs": rounds * branch.macs + head.macs},
    }
    link_use = {"single": {"bytes": 0, "messages": 0},
                "model_parallel": comm["model_parallel"], "lcp": comm["lcp"]}
    return {
        "model": graph.name, "devices": devices, "division_factor": division_factor,
        "branches": split.branches, "fatten": fatten, "split_model": split.model.name,
        "search": search,
        "original": whole.to_json(), "split": footprint(split.model).to_json(),
        "head": head.to_json(),
        "per_inference": {k: {**per_device[k], "link_bytes": link_use[k]["bytes"],
                              "link_messages": link_use[k]["messages"], **sim[k]}
                          for k in ("single", "model_parallel", "lcp")},
        "communication": comm,
        "link": sim["link"], "host": sim["host"], "arch": sim["arch"],
        "config_hash": sim["config_hash"], "clock_mhz": sim["clock_mhz"],
    }


def plot_split(report: dict, path) -> None:
    """Link bytes and latency (compute, host, link) per inference of the three ways."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ways = [("single", "1 device"), ("model_parallel", f"model parallel x{report['devices']}"),
            ("lcp", f"LCP split{report['branches']} x{report['devices']}")]
    per = report["per_inference"]
    labels = [label for _, label in ways]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(labels, [per[k]["link_bytes"] / 1024 for k, _ in ways], color="tab:purple")
    a.set(ylabel="KiB over the link per inference", title=f"{report['model']}: communication")
    bottom = [0.0] * len(ways)
    for part, color in (("compute_us", "tab:blue"), ("host_us", "tab:orange"),
                        ("link_us", "tab:purple")):
        values = [per[k][part] / 1e3 for k, _ in ways]
        b.bar(labels, values, bottom=bottom, color=color, label=part[:-3])
        bottom = [x + y for x, y in zip(bottom, values)]
    b.set(ylabel="ms per inference", title=f"latency on {report['arch']} {report['config_hash']}")
    b.legend(fontsize="small")
    for ax in (a, b):
        ax.tick_params(axis="x", labelsize="small")
        ax.grid(alpha=.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
