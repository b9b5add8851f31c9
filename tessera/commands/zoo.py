"""`tessera zoo`: the built-in networks (or an ONNX file) with their layers, MACs and parameters."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..console import make_console
from rich.table import Table

from ..compiler import zoo
from ..compiler.graph import Graph
from ..errors import SpecError


def register(sub) -> None:
    p = sub.add_parser("zoo", help="list the model zoo, or show one model's layers",
                       description="Without arguments, list the built-in networks of the papers "
                                   "(input shape, conv/gemm layers, MACs, parameters, source). "
                                   "With NAME (or --onnx FILE), print that model's layers: "
                                   "operator, output shape, MACs of conv/gemm layers, "
                                   "parameters, element-wise operations.")
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="zoo model (e.g. resnet50 or zoo:resnet50); see `tessera zoo`")
    p.add_argument("--onnx", metavar="FILE", help="summarize this ONNX model instead")
    p.add_argument("--json", metavar="FILE", help="also write the table's data as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    console = make_console()
    if not console.is_terminal:
        console.width = max(console.width, 150)  # pipes and logs get whole rows
    if args.onnx and args.name:
        raise SpecError("give either a zoo NAME or --onnx FILE, not both")
    if args.onnx:
        from ..compiler import onnx_import
        data = _model_data(onnx_import.load(args.onnx), source=args.onnx)
    elif args.name:
        spec = args.name if args.name.startswith("zoo:") else f"zoo:{args.name}"
        data = _model_data(zoo.from_spec(spec), source=zoo.ZOO[spec[4:]].source)
    else:
        data = {"models": [_overview(name) for name in zoo.names()]}
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    console.print(_models_table(data["models"]) if "models" in data else _layers_table(data))
    return 0


def _overview(name: str) -> dict:
    g = zoo.get(name)
    return {"name": name, "input_shape": list(next(iter(g.inputs.values()))),
            "layers": sum(n.kind in ("conv2d", "gemm") for n in g.nodes), "nodes": len(g.nodes),
            "macs": g.macs, "params": g.params, "source": zoo.ZOO[name].source}


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # an unbounded Clip side
    return value


def _model_data(g: Graph, source: str) -> dict:
    stats = g.stats()
    return {
        "name": g.name, "source": source,
        "inputs": {k: list(v) for k, v in g.inputs.items()}, "outputs": g.outputs,
        "macs": sum(s.macs for s in stats), "params": g.params, "ops": sum(s.ops for s in stats),
        "nodes": [{"name": s.name, "op": s.kind, "inputs": list(n.inputs), "output": n.output,
                   "output_shape": list(s.output_shape),
                   "attrs": {k: _jsonable(v) for k, v in n.op.attrs().items()},
                   "macs": s.macs, "params": s.params, "ops": s.ops,
                   "activations": s.activations}
                  for n, s in zip(g.nodes, stats)],
    }


def _human(n: int) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def _models_table(models: list[dict]) -> Table:
    t = Table(title="Tessera model zoo (MACs: conv/gemm multiply-accumulates, batch 1)")
    for col, justify in (("name", "left"), ("input", "left"), ("layers", "right"),
                         ("MACs", "right"), ("params", "right"), ("source", "left")):
        t.add_column(col, justify=justify)
    for m in models:
        t.add_row(m["name"], _shape(m["input_shape"]), str(m["layers"]), _human(m["macs"]),
                  _human(m["params"]), m["source"])
    return t


def _brief_attrs(node: dict) -> str:
    """Compact attributes: '3x3 s2 p1 g32' for windows, '[0, 6]' for clip, key=value else."""
    a = node["attrs"]
    if "kernel" in a:
        text = _shape(a["kernel"])
        if a["stride"] != [1, 1]:
            text += f" s{a['stride'][0] if len(set(a['stride'])) == 1 else _shape(a['stride'])}"
        if any(a["pads"]):
            pads = a["pads"]
            text += f" p{pads[0] if len(set(pads)) == 1 else ','.join(map(str, pads))}"
        if a.get("groups", 1) > 1:
            text += f" g{a['groups']}"
        if a.get("ceil_mode"):
            text += " ceil"
        return text
    if node["op"] == "clip":
        lo = "-inf" if a["min"] is None else f"{a['min']:g}"
        hi = "inf" if a["max"] is None else f"{a['max']:g}"
        return f"[{lo}, {hi}]"
    skip = {"in_features", "out_features", "has_bias"}
    return " ".join(f"{k}={v}" for k, v in a.items() if k not in skip)


def _layers_table(data: dict) -> Table:
    ins = ", ".join(f"{k} {_shape(v)}" for k, v in data["inputs"].items())
    t = Table(title=f"{data['name']}: {ins}; {_human(data['macs'])} MACs, "
                    f"{_human(data['params'])} params, {_human(data['ops'])} element-wise ops",
              caption=data["source"])
    for col, justify in (("node", "left"), ("op", "left"), ("attributes", "left"),
                         ("output", "left"), ("MACs", "right"), ("params", "right"),
                         ("elem. ops", "right")):
        t.add_column(col, justify=justify)
    for n in data["nodes"]:
        t.add_row(n["name"], n["op"], _brief_attrs(n), _shape(n["output_shape"]),
                  *(_human(n[k]) if n[k] else "" for k in ("macs", "params", "ops")))
    return t
