"""SmartDeal decomposition speed on every conv/FC weight of ResNet-50 (about 25.5 M parameters).

Weights are random N(0, 2/fan_in) (seeded) in ResNet-50's shapes (torchvision v1.5 layout). The
figure is the median of several runs of the decomposition of every layer with the paper's
settings (theta 4e-3, 30 iterations); the budget is 30 s on a 2-core machine. The 7x7 stem conv
is not reshapeable with S = 3 and goes through the int8 fallback, which is timed with the rest.
A last run of the whole compression driver (decomposition, both Ce encodings, accounting) gives
the model's compression rate and reconstruction error.

    .venv/bin/python benchmarks/bench_smartdeal.py [--runs 3] [--budget 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from tessera.compiler.compression import CompressOptions, compress_model
from tessera.compiler.quantize import quantize_weight
from tessera.compiler.smartdeal import SmartDealOptions, decompose, supports


def resnet50_weights(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """(name, float32 weight) for every conv and the FC layer of ResNet-50."""
    shapes = [("conv1", (64, 3, 7, 7))]
    cin = 64
    for stage, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for block in range(blocks):
            prefix = f"layer{stage}.{block}"
            shapes += [(f"{prefix}.conv1", (planes, cin, 1, 1)),
                       (f"{prefix}.conv2", (planes, planes, 3, 3)),
                       (f"{prefix}.conv3", (planes * 4, planes, 1, 1))]
            if block == 0:
                shapes.append((f"{prefix}.downsample", (planes * 4, cin, 1, 1)))
            cin = planes * 4
    shapes.append(("fc", (1000, 2048)))
    rng = np.random.default_rng(seed)
    return [(name, rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape).astype(np.float32))
            for name, shape in shapes]


def decompose_all(weights, options: SmartDealOptions) -> None:
    for name, w in weights:
        if supports(w.shape, options.S):
            decompose(w, options, name)
        else:
            quantize_weight(w, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds allowed (median)")
    args = parser.parse_args()

    weights = resnet50_weights()
    n = sum(w.size for _, w in weights)
    options = SmartDealOptions(theta=4e-3, max_iter=30)
    print(f"ResNet-50 shapes: {len(weights)} layers, {n / 1e6:.2f} M weights; "
          f"theta={options.theta}, max_iter={options.max_iter}, scale_steps="
          f"{options.scale_steps}")
    times = []
    for run in range(args.runs):
        start = time.perf_counter()
        decompose_all(weights, options)
        times.append(time.perf_counter() - start)
        print(f"  run {run + 1}: {times[-1]:.2f} s")
    median = statistics.median(times)
    print(f"decomposition: median {median:.2f} s of {args.runs} runs "
          f"({median / n * 1e6:.3f} s per M weights, {median / args.budget:.2f} of the "
          f"{args.budget:.0f} s budget)")

    start = time.perf_counter()
    model = compress_model(weights, CompressOptions("smartdeal", options))
    total = model.total()
    print(f"full driver (decompose + encode + account): {time.perf_counter() - start:.2f} s; "
          f"compression {total['compression_rate']:.2f}x vs FP32, "
          f"{total['bits_per_weight']:.3f} bits/weight, rel err {total['rel_err']:.4f}, "
          f"Ce sparsity {total['ce_sparsity']:.3f}, clamped {total['clamped']}")
    if median > args.budget:
        print(f"FAIL: median {median:.2f} s is over the {args.budget:.0f} s budget")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
