"""Handwritten digits end to end: a real network trained here, compressed, compiled and run.

    python examples/digits/run.py [-o DIR] [--rtl-images N] [--no-rtl]

1. Train a 64-64-32-10 MLP (ReLU) on scikit-learn's 8x8 digits (1,797 images; a seeded 80/20
   split) with NumPy: Adam, mini-batches of 32, 60 epochs, about a second.
2. Quantize it for the LCP array (int8 weights per output channel, int8 activations calibrated on
   the training images) and for the SmartDeal accelerator (int8, and SmartDeal decomposition).
3. Classify the whole test set, one image at a time, with the golden executor of each
   (compiler/runtime.py), and in float.
4. Compile a few test images into Programs (the image is the program's input) for the small LCP
   and SmartDeal presets, run them on the RTL under Icarus, and check that the RTL's outputs are
   the golden executor's, bit for bit, and its cycles the simulator's.

Writes DIR/report.json and DIR/report.md (default build/examples/digits). docs/runtime.md shows
the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from tessera.compiler import float_exec
from tessera.compiler.graph import Gemm, GraphBuilder, Relu
from tessera.compiler.runtime import compile_graph, quantize_graph, segments
from tessera.config import PRESETS

WIDTHS = (64, 64, 32, 10)
EPOCHS, BATCH, LR = 60, 32, 1e-3
PRESET_LCP, PRESET_SD = "lcp-8x16", "smartdeal-small"


def load_data(seed: int = 0):
    """(x_train, y_train, x_test, y_test): pixels scaled from 0..16 to 0..1, 20% held out."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:len(x) // 5], order[len(x) // 5:]
    return x[train], y[train], x[test], y[test]


def train_mlp(x, y, widths=WIDTHS, epochs=EPOCHS, lr=LR, seed=0):
    """[(W (out, in), b (out,))] of a ReLU MLP trained with Adam on the cross-entropy."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        params += [rng.normal(0, np.sqrt(2 / fan_in), (fan_out, fan_in)).astype(np.float32),
                   np.zeros(fan_out, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            acts = [x[idx]]
            for j in range(0, len(params), 2):
                z = acts[-1] @ params[j].T + params[j + 1]
                acts.append(np.maximum(z, 0) if j + 2 < len(params) else z)
            p = np.exp(acts[-1] - acts[-1].max(axis=1, keepdims=True))
            g = p / p.sum(axis=1, keepdims=True)
            g[np.arange(len(idx)), y[idx]] -= 1
            g /= len(idx)
            grads = [None] * len(params)
            for j in range(len(params) - 2, -1, -2):
                grads[j], grads[j + 1] = g.T @ acts[j // 2], g.sum(axis=0)
                if j:
                    g = (g @ params[j]) * (acts[j // 2] > 0)
            step += 1
            for k, (p_, gr) in enumerate(zip(params, grads)):
                m[k] = 0.9 * m[k] + 0.1 * gr
                v[k] = 0.999 * v[k] + 0.001 * gr * gr
                p_ -= lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step))
                                                         + 1e-8)
    return [(params[j], params[j + 1]) for j in range(0, len(params), 2)]


def build_graph(layers):
    """The trained MLP as a Graph: fc1-relu-fc2-relu-fc3 (logits)."""
    b = GraphBuilder("digits-mlp", {"image": (layers[0][0].shape[1],)})
    x = "image"
    for i, (w, bias) in enumerate(layers, 1):
        x = b.add(Gemm(w.shape[1], w.shape[0]), x, name=f"fc{i}", weight=w, bias=bias)
        if i < len(layers):
            x = b.add(Relu(), x, name=f"relu{i}")
    return b.build(x)


def accuracy(predict, x, y) -> float:
    return float(np.mean([np.argmax(predict(img)) == label for img, label in zip(x, y)]))


def quantized(graph, x_train):
    """The three integer executors: int8 on LCP, int8 and SmartDeal on the SmartDeal array."""
    lcp, sd = PRESETS[PRESET_LCP].build(), PRESETS[PRESET_SD].build()
    return {"int8-lcp": quantize_graph(graph, lcp, "int8", x_train),
            "int8-smartdeal": quantize_graph(graph, sd, "int8", x_train),
            "smartdeal": quantize_graph(graph, sd, "smartdeal", x_train)}


PRESET_OF = {"int8-lcp": PRESET_LCP, "int8-smartdeal": PRESET_SD, "smartdeal": PRESET_SD}


def pick_images(y, n: int) -> list[int]:
    """Test-set indices of the first image of each of n different digits."""
    return [int(np.flatnonzero(y == d)[0]) for d in np.unique(y)[:n]]


def rtl_check(executors: dict, x, y, idx: list[int], workdir) -> list[dict]:
    """Each image as a Program on each accelerator's RTL: RTL == golden executor, bit for bit,
    and RTL cycles == simulator cycles."""
    from tessera.backends import golden_outputs
    from tessera.crosscheck import compare

    rows = []
    for name in ("int8-lcp", "smartdeal"):
        qg = executors[name]
        jobs, expected = [], []
        for i in idx:
            img = x[i]
            (layers, prog), = compile_graph(qg, img)
            vals = qg.run_int(img)
            # The program's golden model is the executor: same integers at every layer.
            same = all(np.array_equal(g.reshape(vals[qg.io[n][1]].shape), vals[qg.io[n][1]])
                       for n, g in zip(layers, golden_outputs(prog)))
            jobs.append((f"test image {i}", prog))
            expected.append((same, int(np.argmax(vals[qg.graph.outputs[0]]))))
        results = compare(qg.cfg, jobs, Path(workdir) / name)
        for r, (same, predicted), i in zip(results, expected, idx):
            rows.append({"executor": name, "image": r["name"], "preset": PRESET_OF[name],
                         "label": int(y[i]), "predicted": predicted,
                         "golden_equals_executor": same,
                         "rtl_equals_golden": r["outputs_match"], "rtl_cycles": r["rtl_cycles"],
                         "sim_cycles": r["sim_cycles"], "cycles_equal": r["cycles_equal"]})
    return rows


def run(out: Path, rtl_images: int = 4, seed: int = 0) -> dict:
    x_train, y_train, x_test, y_test = load_data(seed)
    graph = build_graph(train_mlp(x_train, y_train, seed=seed))
    executors = quantized(graph, x_train)
    acc = {"float": accuracy(lambda img: float_exec.run(graph, img)[graph.outputs[0]],
                             x_test, y_test)}
    for name, qg in executors.items():
        acc[name] = accuracy(lambda img, qg=qg: qg.run_int(img)[graph.outputs[0]],
                             x_test, y_test)
    sd_layers = executors["smartdeal"].layers.values()
    report = {
        "data": {"train": len(x_train), "test": len(x_test), "seed": seed},
        "model": {"widths": list(WIDTHS), "params": graph.params, "macs": graph.macs,
                  "segments": segments(graph, executors["int8-lcp"].lowered)},
        "accuracy": acc,
        "smartdeal_zero_ce": float(np.mean(np.concatenate(
            [(q.sd.ce_codes == 0).ravel() for q in sd_layers if q.sd is not None]))),
        "presets": {"lcp": PRESET_LCP, "smartdeal": PRESET_SD},
    }
    if rtl_images:
        if shutil.which("iverilog") is None:
            raise SystemExit("the RTL check needs Icarus Verilog (iverilog); use --no-rtl")
        rows = rtl_check(executors, x_test, y_test, pick_images(y_test, rtl_images),
                         out / "rtl")
        report["rtl"] = {"images": rtl_images, "runs": rows,
                         "all_agree": all(r["golden_equals_executor"] and r["rtl_equals_golden"]
                                          and r["cycles_equal"] for r in rows)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "report.md").write_text(markdown(report))
    return report


def markdown(report: dict) -> str:
    a = report["accuracy"]
    lines = ["# Digits MLP on Tessera", "",
             f"{report['data']['train']} training and {report['data']['test']} test images; "
             f"MLP {'-'.join(map(str, report['model']['widths']))}, "
             f"{report['model']['params']:,} parameters, {report['model']['macs']:,} MACs.", "",
             "| executor | test accuracy |", "|---|---|"]
    lines += [f"| {k} | {100 * v:.2f}% |" for k, v in a.items()]
    lines += ["", f"SmartDeal: {100 * report['smartdeal_zero_ce']:.1f}% of the Ce codes are zero."]
    if "rtl" in report:
        lines += ["", "| executor | image | label | predicted | RTL == golden | "
                  "cycles (RTL / sim) |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['executor']} ({r['preset']}) | {r['image']} | {r['label']} | "
                  f"{r['predicted']} | "
                  f"{r['rtl_equals_golden'] and r['golden_equals_executor']} | "
                  f"{r['rtl_cycles']} / {r['sim_cycles']} |" for r in report["rtl"]["runs"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="build/examples/digits", help="report directory")
    p.add_argument("--rtl-images", type=int, default=4, choices=range(1, 11), metavar="N",
                   help="test images (digits 0..N-1) to run on each accelerator's RTL (default 4)")
    p.add_argument("--no-rtl", action="store_true", help="skip the RTL check")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the training")
    args = p.parse_args(argv)
    report = run(Path(args.output), 0 if args.no_rtl else args.rtl_images, args.seed)
    print(markdown(report))
    ok = report.get("rtl", {}).get("all_agree", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
