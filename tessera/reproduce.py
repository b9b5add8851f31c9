"""Reproductions of the papers' hardware evaluations (docs/reproduce.md).

- ``reproduce_smartdeal``: SmartDeal section VI-D. The seven networks of Figures 8-10 on the
  SmartDeal accelerator (sim/smartdeal.py, estimate mode) and the four baselines of Table VIII
  (sim/baselines.py), with Table III/IV-like compression statistics from decomposing random
  (untrained) weights; energy efficiency and speedup normalized to DianNao, DRAM accesses
  normalized to SmartDeal, next to the paper's ranges.
- ``reproduce_lcp``: LCP III-B. The adder-tree array against a conventional systolic array of
  the same size (sim/systolic.py, OS/WS/IS) on batch-1 FC and conv layers.
- ``compare_sd_lcp``: issue 4 item 5. The SmartDeal paper preset against an LCP array with the
  same number of 8-bit-equivalent multipliers and the same memory system, on a zoo network.

Each returns a JSON-ready dict and writes ``results.json``, per-layer reports and PNG plots into
its output directory; the CLI (tessera/commands/reproduce.py) prints the tables.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tessera.compiler import zoo
from tessera.compiler.compression import CompressOptions, compress_layer
from tessera.compiler.graph import Clip, Concat, Flatten, Graph, MaxPool, Relu, Resize
from tessera.compiler.layers import LayerShape, parse_spec
from tessera.compiler.lower import lower_shapes
from tessera.compiler.prune import filter_rows
from tessera.compiler.sd.compile import sd_options
from tessera.compiler.sd.mapping import Mode, check_supported, group_size, mode_of
from tessera.compiler.topology import TopologyLayer
from tessera.config import PRESETS, LcpConfig, SmartDealConfig, SystolicConfig
from tessera.errors import CompileError, SpecError
from tessera.sim import lcp as lcp_sim
from tessera.sim import smartdeal as sd_sim
from tessera.sim.baselines import (BASELINES, DEFAULT_ACT_SPARSITY, DEFAULT_BIT_DENSITY,
                                   LayerStats, Resources)
from tessera.sim.report import SimReport
from tessera.sim.systolic import simulate_layer

Progress = Callable[[str], None]

# ---------------------------------------------------------------------------------------------
# The paper's figures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperNet:
    """A network of SmartDeal's hardware evaluation and its compression figures (Tables III,
    IV): compression rate and pruned-parameter ratio (None where the paper gives none)."""
    name: str          # zoo name
    label: str
    dataset: str
    cr: float | None
    sparsity: float | None


PAPER_NETS = [
    PaperNet("resnet50", "ResNet-50", "ImageNet", 15.73, 0.450),
    PaperNet("resnet164", "ResNet-164", "CIFAR-10", 10.38, 0.376),
    PaperNet("vgg11", "VGG-11", "ImageNet", 79.26, 0.860),
    PaperNet("vgg19-cifar", "VGG-19", "CIFAR-10", 112.3, 0.928),
    PaperNet("mobilenetv2", "MobileNetV2", "ImageNet", 13.92 / 1.81, 0.0),
    PaperNet("efficientnet-b0", "EfficientNet-B0", "ImageNet", 20.40 / 2.61, 0.0),
    PaperNet("deeplabv3plus", "DeepLabV3+", "CamVid", 10.86, None),
]
PAPER_BY_NAME = {p.name: p for p in PAPER_NETS}
#: DeepLabV3+ has no sparsity in the paper: its ResNet-50 backbone's is used.
DEEPLAB_SPARSITY_FROM = "resnet50"

#: Section VI-D: SmartDeal over DianNao (Figs. 8, 10), baselines over SmartDeal (Fig. 9).
PAPER_RANGES = {"energy_efficiency": (2.0, 6.7), "speedup": (8.8, 19.2),
                "dram_accesses": (1.1, 3.5)}
#: Section VI-D: SmartDeal's average latency improvement over three baselines.
PAPER_AVG_SPEEDUP = {"scnn": 3.8, "cambricon-x": 2.5, "bit-pragmatic": 2.0}

ACCELERATORS = ("diannao", "cambricon-x", "scnn", "bit-pragmatic", "smartdeal")
LABELS = {"diannao": "DianNao", "cambricon-x": "Cambricon-X", "scnn": "SCNN",
          "bit-pragmatic": "Bit-pragmatic", "smartdeal": "SmartDeal"}
#: The paper leaves EfficientNet-B0 out on SCNN (no squeeze-and-excite support).
SKIP = {("efficientnet-b0", "scnn"): "SCNN is not designed for squeeze-and-excite layers "
                                    "(the paper leaves EfficientNet-B0 out on SCNN)"}

#: Decomposition sample: layers per network and iterations (paper settings), and --fast's.
SAMPLE_LAYERS, SAMPLE_ITERATIONS = 6, 30
FAST_SAMPLE_LAYERS, FAST_SAMPLE_ITERATIONS = 2, 5


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

def _post_relu(graph: Graph, tensor: str) -> bool:
    """Whether a tensor holds ReLU (or ReLU6) outputs, through max pooling, concatenation,
    resizing and flattening."""
    node = graph.producer(tensor)
    if node is None:
        return False
    op = node.op
    if isinstance(op, Relu) or (isinstance(op, Clip) and op.min == 0.0):
        return True
    if isinstance(op, (MaxPool, Concat, Resize, Flatten)):
        return all(_post_relu(graph, t) for t in node.inputs)
    return False


def layer_stats(graph: Graph, shapes: list[LayerShape], weight_sparsity: float,
                relu_sparsity: float, bit_density: float) -> list[LayerStats]:
    """Per layer: the network's weight sparsity; ``relu_sparsity`` zeros in inputs and outputs
    that come out of a ReLU, none elsewhere (images, linear bottlenecks, SiLU, sums)."""
    out = []
    for s in shapes:
        node = graph.node(s.name)
        out.append(LayerStats(
            weight_sparsity=weight_sparsity,
            act_sparsity=relu_sparsity if _post_relu(graph, node.inputs[0]) else 0.0,
            out_sparsity=relu_sparsity if s.relu else 0.0,
            bit_density=bit_density))
    return out


def sample_compression(shapes: list[LayerShape], cfg: SmartDealConfig, seed: int,
                       n_layers: int = SAMPLE_LAYERS,
                       max_iter: int = SAMPLE_ITERATIONS) -> dict:
    """Decompose random N(0, 2/fan_in) weights -- not trained ones -- of ``n_layers`` layers
    spread evenly through the network, the first output-channel group of each (the hardware's
    options: vector sparsity per group, one basis per basis group); figures are averages weighted
    by the sampled layers' full parameter counts."""
    cand = [s for s in shapes if mode_of(s) != Mode.CONV or s.S == cfg.S]
    if not cand:
        return {"sampled_layers": [], "note": "no layer SmartDeal can decompose"}
    picks = sorted(set(np.linspace(0, len(cand) - 1, min(n_layers, len(cand)))
                       .round().astype(int).tolist()))
    rows = []
    for i in picks:
        s = cand[i]
        kc = min(s.K, group_size(s, cfg))
        shape = (kc, *s.weight_shape[1:])
        fan_in = int(np.prod(shape[1:]))
        rng = np.random.default_rng([seed, i])
        w = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        opts = CompressOptions("smartdeal", sd_options(s, cfg, max_iter=max_iter),
                               fallback="error")
        c = compress_layer(s.name, w, opts)
        r = c.report
        zero_rows = ~filter_rows(c.rebuilt, cfg.S).any(axis=(0, 2))
        rows.append({"layer": s.name, "weights": int(math.prod(s.weight_shape)),
                     "sampled_weights": int(w.size), "bits_per_weight": r.bits / w.size,
                     "w_sparsity": r.w_sparsity, "row_sparsity": float(zero_rows.mean()),
                     "ce_bits_per_element": r.details["ce_bits_per_element"],
                     "rel_err": r.rel_err})
    n = np.array([r["weights"] for r in rows], float)

    def avg(key):
        return float(np.dot(n, [r[key] for r in rows]) / n.sum())

    bpw = avg("bits_per_weight")
    return {"sampled_layers": rows, "iterations": max_iter, "bits_per_weight": bpw,
            "compression_rate": 32.0 / bpw, "w_sparsity": avg("w_sparsity"),
            "row_sparsity": avg("row_sparsity"),
            "ce_bits_per_element": avg("ce_bits_per_element"),
            "rel_err": math.sqrt(float(np.dot(n, [r["rel_err"] ** 2 for r in rows]) / n.sum()))}


# ---------------------------------------------------------------------------------------------
# SmartDeal section VI-D
# ---------------------------------------------------------------------------------------------

def _merge(reports: list[SimReport]) -> SimReport:
    """One report of the layers of several single-layer reports of the same configuration."""
    return dataclasses.replace(reports[0], layers=[l for r in reports for l in r.layers])


def _dram_split(report: SimReport) -> dict:
    """DRAM bytes by what they carry: weights (with indexes, bases), input and output
    activations, and the rest (SmartDeal's step descriptors and parameters)."""
    ev = report.total.events
    if report.arch == "smartdeal":
        weights = ev.get("sram.wb.write_bytes", 0.0) + ev.get("sram.bb.write_bytes", 0.0)
        inputs = ev.get("sram.gb.write_bytes", 0.0)
    elif report.arch == "lcp":
        return {}
    else:
        weights = sum(l.info["dram_weight_bytes"] for l in report.layers)
        inputs = sum(l.info["dram_input_bytes"] for l in report.layers)
    return {"weights": float(weights), "inputs": float(inputs),
            "outputs": float(ev.get("dram.write_bytes", 0.0)),
            "other": float(ev.get("dram.read_bytes", 0.0) - weights - inputs)}


def _summary(report: SimReport) -> dict:
    t = report.total
    return {"cycles": int(t.cycles), "latency_us": report.latency_us(t.cycles),
            "compute_cycles": int(t.phases.get("compute", 0)),
            "phases": {k: int(v) for k, v in sorted(t.phases.items())},
            "macs": int(t.macs), "energy_pj": float(t.energy_pj["total"]),
            "energy_breakdown_pj": {k: float(v) for k, v in t.energy_pj.items() if k != "total"},
            "dram_bytes": float(t.events.get("dram.read_bytes", 0.0)
                                + t.events.get("dram.write_bytes", 0.0)),
            "dram_split": _dram_split(report)}


#: Where a network's sparsity comes from: a short tag for tables, and the explanation.
SPARSITY_SOURCES = {
    "--sparsity": "given with --sparsity",
    "random": "Ce row sparsity of the random-weight decomposition",
    "paper": "the paper's Table III/IV",
    "backbone": "the paper gives none: its ResNet-50 backbone's (Table III)",
    "none": "the paper gives none: 0 assumed",
}


def _network_sparsity(name: str, source: str, override: float | None,
                      measured: dict) -> tuple[float, str]:
    """(sparsity, a key of SPARSITY_SOURCES)."""
    if override is not None:
        return override, "--sparsity"
    if source == "random":
        return measured.get("row_sparsity", 0.0), "random"
    paper = PAPER_BY_NAME.get(name)
    if paper is not None and paper.sparsity is not None:
        return paper.sparsity, "paper"
    if name == "deeplabv3plus":
        return PAPER_BY_NAME[DEEPLAB_SPARSITY_FROM].sparsity, "backbone"
    return 0.0, "none"


def _run_network(name: str, cfg: SmartDealConfig, args: dict, say: Progress) -> tuple[dict, dict]:
    graph = zoo.get(name)
    low = lower_shapes(graph)
    excluded, candidates = [], []
    for s in low.layers:
        if s.kind == "fc":
            excluded.append({"layer": s.name, "shape": s.describe(),
                             "reason": "fully connected: the paper leaves FC layers out"})
        else:
            candidates.append(s)
    say(f"{name}: SmartDeal decomposition of sampled random-weight layers")
    supported = []
    for s in candidates:
        try:
            check_supported(s, cfg)
            supported.append(s)
        except CompileError as exc:
            excluded.append({"layer": s.name, "shape": s.describe(), "reason": str(exc)})
    measured = sample_compression(supported, cfg, args["seed"], args["sample_layers"],
                                  args["sample_iterations"])
    sparsity, source = _network_sparsity(name, args["stats"], args["sparsity"], measured)

    say(f"{name}: SmartDeal accelerator, {len(supported)} layers")
    sd_reports, run = [], []
    for i, s in enumerate(supported):
        try:
            sd_reports.append(sd_sim.simulate_shapes(cfg, [s], density=args["digit_density"],
                                                     row_sparsity=sparsity,
                                                     seed=args["seed"] + i))
            run.append(s)
        except CompileError as exc:
            excluded.append({"layer": s.name, "shape": s.describe(), "reason": str(exc)})
    if not run:
        raise CompileError(f"network '{name}': no layer runs on the SmartDeal accelerator")
    order = {s.name: i for i, s in enumerate(low.layers)}
    excluded.sort(key=lambda e: order[e["layer"]])
    reports = {"smartdeal": _merge(sd_reports)}
    stats = layer_stats(graph, run, sparsity, args["relu_sparsity"], args["bit_density"])
    say(f"{name}: baselines")
    skipped = {}
    for acc, simulate in BASELINES.items():
        if (name, acc) in SKIP:
            skipped[acc] = SKIP[(name, acc)]
            continue
        reports[acc] = simulate(cfg, run, stats)
    summ = {acc: _summary(r) for acc, r in reports.items()}
    dn, sd = summ["diannao"], summ["smartdeal"]
    for acc, s in summ.items():
        s["energy_efficiency"] = dn["energy_pj"] / s["energy_pj"]
        s["speedup"] = dn["cycles"] / s["cycles"]
        s["compute_speedup"] = dn["compute_cycles"] / s["compute_cycles"]
        s["dram_accesses"] = s["dram_bytes"] / sd["dram_bytes"]
    paper = PAPER_BY_NAME.get(name)
    params = sum(math.prod(s.weight_shape) for s in run)
    result = {
        "name": name, "label": paper.label if paper else name,
        "dataset": paper.dataset if paper else "",
        "paper": ({"compression_rate": paper.cr, "sparsity": paper.sparsity} if paper else None),
        "sparsity": sparsity, "sparsity_source": source,
        "sparsity_note": SPARSITY_SOURCES[source],
        "layers_run": len(run), "macs_run": int(sum(s.macs for s in run)),
        "params_run": int(params), "excluded": excluded,
        "compression": measured, "skipped": skipped,
        "accelerators": {acc: summ.get(acc) for acc in ACCELERATORS},
    }
    return result, {acc: r.to_json() for acc, r in reports.items()}


def reproduce_smartdeal(out_dir: str | Path, networks: list[str] | None = None,
                        stats: str = "paper", sparsity: float | None = None,
                        relu_sparsity: float = DEFAULT_ACT_SPARSITY,
                        bit_density: float = DEFAULT_BIT_DENSITY,
                        digit_density: float | None = None,
                        fast: bool = False, seed: int = 0,
                        progress: Progress | None = None) -> dict:
    """SmartDeal VI-D (see the module docstring); writes results.json, layers/<net>.json and
    energy.png, speedup.png, dram.png into ``out_dir``."""
    if stats not in ("paper", "random"):
        raise SpecError(f"--stats '{stats}' is unknown: allowed is paper or random")
    for what, v in (("--sparsity", sparsity), ("--relu-sparsity", relu_sparsity)):
        if v is not None and not 0.0 <= v < 1.0:
            raise SpecError(f"{what} = {v} is invalid: allowed is a fraction from 0 to below 1")
    for what, v in (("--bit-density", bit_density), ("--digit-density", digit_density)):
        if v is not None and not 0.0 < v <= 1.0:
            raise SpecError(f"{what} = {v} is invalid: allowed is a fraction above 0, at most 1")
    networks = networks or [p.name for p in PAPER_NETS]
    for n in networks:
        if n not in zoo.ZOO:
            raise SpecError(f"network '{n}' is not in the zoo: allowed is one of "
                            f"{', '.join(zoo.names())}")
    cfg = PRESETS["smartdeal-paper"].build()
    say = progress or (lambda _msg: None)
    args = {"seed": seed, "stats": stats, "sparsity": sparsity, "relu_sparsity": relu_sparsity,
            "bit_density": bit_density,
            "digit_density": sd_sim.DIGIT_DENSITY if digit_density is None else digit_density,
            "sample_layers": FAST_SAMPLE_LAYERS if fast else SAMPLE_LAYERS,
            "sample_iterations": FAST_SAMPLE_ITERATIONS if fast else SAMPLE_ITERATIONS}
    out = Path(out_dir)
    (out / "layers").mkdir(parents=True, exist_ok=True)
    results = []
    for name in networks:
        res, layers = _run_network(name, cfg, args, say)
        results.append(res)
        _write_json(out / "layers" / f"{name}.json", layers)
    data = {
        "experiment": "SmartDeal section VI-D, Figures 8-10",
        "weights": "random N(0, 2/fan_in), not trained: compression figures are of random "
                   "weights; the accelerators run the sparsity named per network",
        "config": cfg.to_dict(), "resources": dataclasses.asdict(Resources.of(cfg)),
        "assumptions": {"stats": stats, "relu_sparsity": relu_sparsity,
                        "bit_density": bit_density, "digit_density": args["digit_density"],
                        "sample_layers": args["sample_layers"],
                        "sample_iterations": args["sample_iterations"], "seed": seed},
        "paper": {"ranges": PAPER_RANGES, "average_speedup": PAPER_AVG_SPEEDUP},
        "networks": results,
        "summary": _sd_summary(results),
    }
    _write_json(out / "results.json", data)
    say("plots")
    _plot_smartdeal(data, out)
    return data


def _sd_summary(results: list[dict]) -> dict:
    def span(values):
        return [min(values), max(values)] if values else None

    sd = [r["accelerators"]["smartdeal"] for r in results]
    dram = [a["dram_accesses"] for r in results for k, a in r["accelerators"].items()
            if a is not None and k != "smartdeal"]
    avg = {}
    for acc in PAPER_AVG_SPEEDUP:
        ratios = [r["accelerators"][acc]["cycles"] / r["accelerators"]["smartdeal"]["cycles"]
                  for r in results if r["accelerators"][acc] is not None]
        avg[acc] = float(np.mean(ratios)) if ratios else None
    return {"energy_efficiency": span([a["energy_efficiency"] for a in sd]),
            "speedup": span([a["speedup"] for a in sd]),
            "compute_speedup": span([a["compute_speedup"] for a in sd]),
            "dram_accesses": span(dram), "average_speedup": avg}


def _plot_smartdeal(data: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = data["networks"]
    figures = [("energy_efficiency", "energy.png", "energy efficiency (x DianNao)",
                "Fig. 8: normalized energy efficiency"),
               ("speedup", "speedup.png", "speedup (x DianNao)", "Fig. 10: normalized speedup"),
               ("dram_accesses", "dram.png", "DRAM accesses (x SmartDeal)",
                "Fig. 9: normalized DRAM accesses")]
    width = 0.8 / len(ACCELERATORS)
    x = np.arange(len(nets))
    sources = ", ".join(sorted({n["sparsity_source"] for n in nets}))
    for key, fname, ylabel, title in figures:
        fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(nets)), 4.0))
        for j, acc in enumerate(ACCELERATORS):
            vals = [n["accelerators"][acc][key] if n["accelerators"][acc] else np.nan
                    for n in nets]
            ax.bar(x + (j - (len(ACCELERATORS) - 1) / 2) * width, vals, width, label=LABELS[acc])
        lo, hi = PAPER_RANGES[key]
        who = "baselines" if key == "dram_accesses" else "SmartDeal"
        ax.axhspan(lo, hi, color="grey", alpha=0.15, label=f"paper: {who} {lo:g}-{hi:g}x")
        ax.set_xticks(x, [n["label"] for n in nets], rotation=20)
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.set_title(f"{title} (weight sparsity: {sources}; see docs/reproduce.md)", fontsize=9)
        ax.legend(fontsize=7, ncol=3)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=110, metadata={"Software": None})
        plt.close(fig)


# ---------------------------------------------------------------------------------------------
# LCP III-B: adder trees against a systolic array
# ---------------------------------------------------------------------------------------------

#: Batch-1 layers: (label, SPEC).
LCP_LAYERS = [
    ("FC 64x64", "fc:K=64,N=64"),
    ("LeNet-300 fc1", "fc:K=784,N=300"),
    ("ResNet-18 fc", "fc:K=512,N=1000"),
    ("VGG-16 fc2", "fc:K=4096,N=4096"),
    ("LeNet conv1 5x5", "conv:C=1,K=6,H=28,W=28,R=5,pad=2"),
    ("ResNet stem 7x7/2", "conv:C=3,K=64,H=224,W=224,R=7,stride=2,pad=3"),
    ("ResNet-18 3x3 56x56", "conv:C=64,K=64,H=56,W=56,pad=1"),
    ("ResNet-18 3x3 14x14", "conv:C=256,K=256,H=14,W=14,pad=1"),
    ("ResNet-18 3x3 7x7", "conv:C=512,K=512,H=7,W=7,pad=1"),
    ("ResNet-50 1x1 14x14", "conv:C=1024,K=256,H=14,W=14,R=1"),
]
#: Memory systems: the LCP ASIC preset's, and a wide one that shows the arrays themselves.
LCP_MEMORIES = {"preset": {}, "wide": {"dram_width": 32, "dram_latency": 1}}
SYSTOLIC_SRAM_KB = 32
DATAFLOWS = ("os", "ws", "is")


def as_topology(s: LayerShape):
    """A layer in SCALE-Sim's form (the padding folded into the IFMAP size), for sim/systolic."""
    assert not s.depthwise, "SCALE-Sim's form has no depthwise convolution"
    if s.kind in ("fc", "gemm"):
        return TopologyLayer.gemm(s.name, s.W, s.K, s.C)
    pt, pl, pb, pr = s.pads
    return TopologyLayer(s.name, s.H + pt + pb, s.W + pl + pr, s.R, s.S, s.C, s.K, s.stride)


def lcp_configs(memory: str) -> tuple[LcpConfig, dict[str, SystolicConfig]]:
    """The LCP preset (32x64, 800 MHz) and systolic arrays of the same size, clock and DRAM port
    (SCALE-Sim's model with its errors corrected, so DRAM stalls count)."""
    lcp = PRESETS["lcp-asap7-32x64"].build().replace(**LCP_MEMORIES[memory])
    arrays = {df: SystolicConfig(rows=lcp.rows, cols=lcp.cols, dataflow=df,
                                 clock_mhz=lcp.clock_mhz, dram_width=lcp.dram_width,
                                 ifmap_sram_kb=SYSTOLIC_SRAM_KB, filter_sram_kb=SYSTOLIC_SRAM_KB,
                                 ofmap_sram_kb=SYSTOLIC_SRAM_KB, scalesim_compat=False)
              for df in DATAFLOWS}
    return lcp, arrays


def reproduce_lcp(out_dir: str | Path, progress: Progress | None = None) -> dict:
    """LCP III-B (see the module docstring); writes results.json and latency.png."""
    say = progress or (lambda _msg: None)
    shapes = [parse_spec(spec, name=label) for label, spec in LCP_LAYERS]
    memories = {}
    for memory in LCP_MEMORIES:
        say(f"{memory} memory")
        lcp, arrays = lcp_configs(memory)
        peak = lcp.rows * lcp.cols
        rows = []
        for s in shapes:
            r = lcp_sim.simulate_shapes(lcp, [s]).layers[0]
            entry = {"layer": s.name, "spec": s.describe(), "macs": int(s.macs),
                     "lcp": {"cycles": int(r.cycles), "utilization": s.macs / (r.cycles * peak),
                             "phases": r.phases}}
            for df, cfg in arrays.items():
                l = simulate_layer(cfg, as_topology(s))
                entry[df] = {"cycles": int(l.cycles), "utilization": s.macs / (l.cycles * peak),
                             "phases": l.phases}
            best = min(DATAFLOWS, key=lambda df: entry[df]["cycles"])
            entry["best_systolic"] = best
            entry["lcp_speedup"] = entry[best]["cycles"] / entry["lcp"]["cycles"]
            rows.append(entry)
        memories[memory] = {
            "lcp_config": lcp.to_dict(), "clock_mhz": lcp.clock_mhz,
            "systolic_config": {k: v for k, v in arrays["os"].to_dict().items()
                                if k != "dataflow"},
            "layers": rows}
    lcp, _ = lcp_configs("preset")
    data = {
        "experiment": "LCP III-B: adder-tree array vs a systolic array of the same size",
        "array": [lcp.rows, lcp.cols],
        # cycles a block or fold spends outside streaming pixels: the LCP COMPUTE step's
        # 1 + tree latency (docs/lcp.md) against the systolic skew that fills and drains the
        # array (docs/systolic.md: T + R + C - 2 per OS fold, T + 2R + C - 2 per WS/IS fold)
        "pipeline_overhead_cycles": {"lcp": int(lcp_sim.LcpTiming(lcp).compute(0)),
                                     "os": lcp.rows + lcp.cols - 2,
                                     "ws": 2 * lcp.rows + lcp.cols - 2,
                                     "is": 2 * lcp.rows + lcp.cols - 2},
        "memories": memories,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "results.json", data)
    say("plots")
    _plot_lcp(data, out)
    return data


def _plot_lcp(data: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mems = list(data["memories"])
    fig, axes = plt.subplots(len(mems), 1, figsize=(10.0, 3.4 * len(mems)))
    arches = ("lcp", *DATAFLOWS)
    width = 0.8 / len(arches)
    for ax, mem in zip(np.atleast_1d(axes), mems):
        rows = data["memories"][mem]["layers"]
        x = np.arange(len(rows))
        for j, a in enumerate(arches):
            ax.bar(x + (j - (len(arches) - 1) / 2) * width, [r[a]["cycles"] for r in rows],
                   width, label="LCP adder trees" if a == "lcp" else f"systolic {a.upper()}")
        ax.set_yscale("log")
        ax.set_ylabel("cycles")
        cfg = data["memories"][mem]["lcp_config"]
        ax.set_title(f"{data['array'][0]}x{data['array'][1]} arrays, batch 1, {mem} memory "
                     f"({cfg['dram_width']} B/cycle, latency {cfg['dram_latency']})", fontsize=9)
        ax.set_xticks(x, [r["layer"] for r in rows], rotation=25, fontsize=7)
        ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110, metadata={"Software": None})
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Issue 4 item 5: SmartDeal against LCP at equal multiplier count
# ---------------------------------------------------------------------------------------------

#: LCP arrays with SmartDeal's memory system and buffers (1 MiB) within its 1.22 MiB of SRAM:
#: 32x32 has the 1K 8-bit multipliers the SmartDeal paper equates with 8K bit-serial ones (Table
#: IX); 32x64 has 2K, the peak of SmartDeal's radix-4 Booth MACs (4 digits per 8-bit MAC).
LCP_VARIANTS = {"lcp-32x32": "lcp-32x32-1ghz", "lcp-32x64": "lcp-32x64-1ghz"}


def equal_lcp(sd: SmartDealConfig, variant: str = "lcp-32x32") -> LcpConfig:
    """The variant's preset (sized for smartdeal-paper) with ``sd``'s clock and memory system."""
    return PRESETS[LCP_VARIANTS[variant]].build().replace(
        clock_mhz=sd.clock_mhz, dram_width=sd.dram_width, dram_latency=sd.dram_latency,
        energy_table=sd.energy_table)


def compare_sd_lcp(out_dir: str | Path, network: str = "resnet18", row_sparsity: float = 0.5,
                   progress: Progress | None = None) -> dict:
    """SmartDeal (paper preset; Ce rows dense, and ``row_sparsity`` zero) against LCP 32x32 int8
    (equal multipliers) and 32x64 (SmartDeal's dense peak) on a zoo network's conv and FC layers;
    layers one of them cannot run are left out of all and listed. Writes results.json,
    layers.json and compare.png."""
    if not 0.0 <= row_sparsity < 1.0:
        raise SpecError(f"--row-sparsity = {row_sparsity} is invalid: allowed is a fraction "
                        "from 0 to below 1")
    if network not in zoo.ZOO:
        raise SpecError(f"network '{network}' is not in the zoo: allowed is one of "
                        f"{', '.join(zoo.names())}")
    say = progress or (lambda _msg: None)
    sd = PRESETS["smartdeal-paper"].build()
    lcps = {k: equal_lcp(sd, k) for k in LCP_VARIANTS}
    variants = {"smartdeal": 0.0, f"smartdeal-rows{round(row_sparsity * 100)}": row_sparsity}
    excluded, per_layer = [], {k: [] for k in (*lcps, *variants)}
    say(f"{network}: {len(per_layer)} runs per layer")
    for i, s in enumerate(lower_shapes(zoo.get(network)).layers):
        try:   # the dense run first: a layer that does not fit dense is left out of every run
            runs = {k: sd_sim.simulate_shapes(sd, [s], row_sparsity=rs, seed=i)
                    for k, rs in variants.items()}
            runs.update({k: lcp_sim.simulate_shapes(cfg, [s]) for k, cfg in lcps.items()})
        except CompileError as exc:
            excluded.append({"layer": s.name, "shape": s.describe(), "reason": str(exc)})
            continue
        for k, r in runs.items():
            per_layer[k].append(r)
    if not per_layer["smartdeal"]:
        raise CompileError(f"network '{network}': no layer runs on both accelerators")
    reports = {k: _merge(v) for k, v in per_layer.items()}
    summ = {}
    for k, r in reports.items():
        if k in lcps:
            c = lcps[k]
            mults, sram = c.rows * c.cols, (c.abuf_depth * c.rows
                                            + c.acc_depth * c.cols * c.acc_width // 8)
        else:
            mults, sram = Resources.of(sd).multipliers, Resources.of(sd).sram_bytes
        summ[k] = {**_summary(r), "multipliers_8bit_equivalent": mults, "sram_bytes": sram}
    data = {
        "experiment": "SmartDeal vs LCP at equal multiplier count (8K bit-serial = 1K 8-bit)",
        "network": network, "row_sparsity": row_sparsity,
        "smartdeal_config": sd.to_dict(),
        "lcp_configs": {k: c.to_dict() for k, c in lcps.items()},
        "excluded": excluded, "layers_run": len(per_layer["smartdeal"]),
        "results": summ,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "results.json", data)
    _write_json(out / "layers.json", {k: r.to_json() for k, r in reports.items()})
    _plot_compare(data, out)
    return data


def _plot_compare(data: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(data["results"])
    res = data["results"]
    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    bottom = np.zeros(len(names))
    for cat in ("dram", "sram", "rf", "compute"):
        vals = np.array([res[n]["energy_breakdown_pj"][cat] / 1e6 for n in names])
        ax_e.bar(names, vals, bottom=bottom, label=cat)
        bottom += vals
    ax_e.set_ylabel("energy (uJ)")
    ax_e.legend(fontsize=7)
    ax_t.bar(names, [res[n]["latency_us"] / 1e3 for n in names])
    ax_t.set_ylabel("latency (ms)")
    for ax in (ax_e, ax_t):
        ax.tick_params(axis="x", labelsize=7, rotation=15)
    fig.suptitle(f"{data['network']}: SmartDeal (8K bit-serial MACs) vs LCP (8-bit cells), "
                 "same clock, DRAM and energy table", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
