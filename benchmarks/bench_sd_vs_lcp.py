"""SmartDeal against LCP at equal multiplier count (issue 4 item 5), kept as a benchmark.

    .venv/bin/python benchmarks/bench_sd_vs_lcp.py [--networks resnet18,vgg16] [--json FILE]

The smartdeal-paper preset (8K bit-serial Booth MACs, 1 GHz, 16 B/cycle DRAM) against an LCP
array of 32x32 8-bit cells (1K multipliers: the SmartDeal paper's equivalence of Table IX), and
one of 32x64 (2K: the peak of SmartDeal's radix-4 Booth MACs on dense activations), with the
same clock, DRAM port and energy table and 1 MiB of buffers (SmartDeal has 1.22 MiB), on zoo
networks' conv and FC layers (tessera.reproduce.compare_sd_lcp; `tessera reproduce compare`
prints the same). SmartDeal runs twice: Ce rows dense, and half of them zero. Layers one
array cannot run are left out of all and listed. Prints latency, energy and DRAM traffic, and
how long the comparison took (wall and CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tessera.reproduce import compare_sd_lcp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="resnet18,vgg16", help="comma-separated zoo names")
    parser.add_argument("--row-sparsity", type=float, default=0.5)
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = parser.parse_args(argv)
    out = {}
    for net in args.networks.split(","):
        w, c = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            data = compare_sd_lcp(tmp, network=net, row_sparsity=args.row_sparsity)
        w, c = time.perf_counter() - w, time.process_time() - c
        out[net] = data
        res = data["results"]
        print(f"{net}: {data['layers_run']} layers on all arrays ({w:.1f} s wall, {c:.1f} s CPU)")
        print(f"  {'run':18s} {'latency ms':>11s} {'energy uJ':>10s} {'DRAM uJ':>9s} "
              f"{'DRAM MB':>8s} {'MAC/cycle':>10s}")
        for name, r in res.items():
            print(f"  {name:18s} {r['latency_us'] / 1e3:11.3f} {r['energy_pj'] / 1e6:10.1f} "
                  f"{r['energy_breakdown_pj']['dram'] / 1e6:9.1f} {r['dram_bytes'] / 1e6:8.2f} "
                  f"{r['macs'] / r['cycles']:10.1f}")
        lcp = res["lcp-32x32"]
        for name, r in res.items():
            if name != "lcp-32x32":
                print(f"  {name}: {lcp['cycles'] / r['cycles']:.2f}x faster, "
                      f"{lcp['energy_pj'] / r['energy_pj']:.2f}x less energy, "
                      f"{lcp['dram_bytes'] / r['dram_bytes']:.2f}x less DRAM traffic than "
                      "LCP 32x32")
        for e in data["excluded"]:
            print(f"  left out of all: {e['layer']} ({e['shape']}): {e['reason']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
