"""How fast the systolic simulator replays SCALE-Sim on ResNet-18, and how fast SCALE-Sim itself is.

    .venv/bin/python benchmarks/bench_systolic.py [--repeat 7] [--scalesim PYTHON] [--json FILE]

Simulates the 21 layers of examples/topologies/resnet18.csv on the systolic-32x32-{os,ws,is}
presets (SCALE-Sim's default scale.cfg: 32x32 array, 64 KB per SRAM, estimate-bandwidth mode) and
reports the median over ``--repeat`` runs of the wall and CPU time for all three dataflows, and the
peak memory traced while simulating them once. With a Python that has SCALE-Sim installed
(``--scalesim`` or $SCALESIM_PYTHON; never the project's venv), SCALE-Sim runs the same three
configurations once, through tests/data/scalesim/record.py, and its wall time is reported beside
ours (it takes minutes per dataflow). On a machine shared with other jobs the wall times include
their interference; the CPU times do not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from tessera.compiler.topology import read_topology
from tessera.config import resolve_config
from tessera.sim.systolic import simulate_topology

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "examples" / "topologies" / "resnet18.csv"
RECORD = ROOT / "tests" / "data" / "scalesim" / "record.py"
DATAFLOWS = ("os", "ws", "is")
TARGET_S = 0.25


def time_ours(layers, repeat: int) -> dict:
    configs = {df: resolve_config("systolic", f"systolic-32x32-{df}") for df in DATAFLOWS}
    walls, cpus = {df: [] for df in DATAFLOWS}, {df: [] for df in DATAFLOWS}
    for _ in range(repeat):
        for df, cfg in configs.items():
            w, c = time.perf_counter(), time.process_time()
            simulate_topology(cfg, layers)
            walls[df].append(time.perf_counter() - w)
            cpus[df].append(time.process_time() - c)
    tracemalloc.start()
    for cfg in configs.values():
        simulate_topology(cfg, layers)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "wall_s": {df: statistics.median(v) for df, v in walls.items()},
        "cpu_s": {df: statistics.median(v) for df, v in cpus.items()},
        "wall_total_s": statistics.median(map(sum, zip(*walls.values()))),
        "cpu_total_s": statistics.median(map(sum, zip(*cpus.values()))),
        "peak_traced_mb": peak / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def time_scalesim(python: str) -> dict:
    out = {}
    for df in DATAFLOWS:
        start = time.perf_counter()
        subprocess.run([python, str(RECORD), "--one", f"resnet18-{df}", str(TOPOLOGY), "conv",
                        "32", "32", df, "64", "64", "64"], check=True, capture_output=True)
        out[df] = time.perf_counter() - start
        print(f"  SCALE-Sim {df}: {out[df]:.1f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs (median reported)")
    parser.add_argument("--scalesim", metavar="PYTHON", default=os.environ.get("SCALESIM_PYTHON"),
                        help="a python with SCALE-Sim installed, to time SCALE-Sim beside us")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args(argv)
    layers = read_topology(TOPOLOGY)
    simulate_topology(resolve_config("systolic"), layers[:2])  # imports and caches warmed up
    ours = time_ours(layers, args.repeat)
    print(f"ResNet-18 ({len(layers)} layers), 32x32 array, 64 KB SRAMs, median of {args.repeat}:")
    for df in DATAFLOWS:
        print(f"  {df}: wall {ours['wall_s'][df] * 1e3:7.1f} ms   "
              f"cpu {ours['cpu_s'][df] * 1e3:7.1f} ms")
    verdict = "meets" if ours["wall_total_s"] < TARGET_S else "misses"
    print(f"  all three: wall {ours['wall_total_s'] * 1e3:.1f} ms, cpu "
          f"{ours['cpu_total_s'] * 1e3:.1f} ms ({verdict} the {TARGET_S * 1e3:.0f} ms target); "
          f"peak traced memory {ours['peak_traced_mb']:.1f} MB, "
          f"max RSS {ours['max_rss_mb']:.0f} MB")
    result = {"ours": ours, "load_average": os.getloadavg()}
    if args.scalesim:
        print("SCALE-Sim on the same configurations (one run each):")
        result["scalesim_wall_s"] = time_scalesim(args.scalesim)
        total = sum(result["scalesim_wall_s"].values())
        print(f"  all three: {total:.1f} s, {total / ours['wall_total_s']:.0f}x our wall time")
    else:
        print("SCALE-Sim not timed: pass --scalesim PYTHON or set SCALESIM_PYTHON")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
