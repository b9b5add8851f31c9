"""Simulator speed against the targets of issue 6 (medians of several runs, a printed table).

    .venv/bin/python benchmarks/bench_sim.py [--runs 5] [--scalesim PYTHON] [--json FILE]

1. ResNet-18 (examples/topologies/resnet18.csv, SCALE-Sim's) on the systolic-32x32-{os,ws,is}
   presets: all three dataflows in < 0.25 s, peak memory < 300 MB (tracemalloc's peak over one
   pass, measured apart from the timed runs, and the process's max RSS).
2. ResNet-50 (zoo; the 52 convolutions every accelerator runs: the 7x7 stem does not fit
   SmartDeal and FC layers are left out as in the paper) on every accelerator: LCP
   (lcp-asap7-32x64), SmartDeal (smartdeal-paper, estimate mode), the systolic arrays, DianNao,
   Cambricon-X, SCNN and Bit-pragmatic: < 2 s each.
3. `tessera simulate --preset lcp-asap7-32x64 --topology examples/topologies/resnet18.csv`,
   run in process (argument parsing, simulation, table): < 1 s.
4. SCALE-Sim itself on (1), one run per dataflow, when a Python with SCALE-Sim exists
   (--scalesim, $SCALESIM_PYTHON, or /tmp/scalesim-venv/bin/python); it takes minutes.

Wall times on a machine shared with other jobs include their interference; CPU times do not.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from tessera.cli import main as cli_main
from tessera.compiler import zoo
from tessera.compiler.layers import topology_shapes
from tessera.compiler.lower import lower_shapes
from tessera.compiler.sd.mapping import check_supported
from tessera.compiler.topology import read_topology
from tessera.config import PRESETS, resolve_config
from tessera.errors import CompileError
from tessera.reproduce import as_topology
from tessera.sim import baselines, lcp, smartdeal, systolic
from tessera.sim.baselines import BASELINES

ROOT = Path(__file__).resolve().parents[1]
RESNET18 = ROOT / "examples" / "topologies" / "resnet18.csv"
RECORD = ROOT / "tests" / "data" / "scalesim" / "record.py"
DATAFLOWS = ("os", "ws", "is")
TARGETS = {"systolic_resnet18_s": 0.25, "peak_mb": 300.0, "resnet50_s": 2.0,
           "lcp_topology_s": 1.0}


def timed(fn, runs: int, setup=None) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``runs`` calls, each after ``setup``."""
    walls, cpus = [], []
    for _ in range(runs):
        if setup is not None:
            setup()
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def resnet50_shapes(sd_cfg):
    """ResNet-50's convolutions that every accelerator runs."""
    shapes = []
    for s in lower_shapes(zoo.get("resnet50")).layers:
        if s.kind == "fc":
            continue
        try:
            check_supported(s, sd_cfg)
        except CompileError:
            continue
        shapes.append(s)
    return shapes


def bench_systolic_resnet18(runs: int) -> dict:
    layers = read_topology(RESNET18)
    cfgs = {df: resolve_config("systolic", f"systolic-32x32-{df}") for df in DATAFLOWS}
    out = {df: timed(lambda c=c: systolic.simulate_topology(c, layers), runs)
           for df, c in cfgs.items()}
    tracemalloc.start()
    for c in cfgs.values():
        systolic.simulate_topology(c, layers)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"per_dataflow": out, "wall_s": sum(w for w, _ in out.values()),
            "cpu_s": sum(c for _, c in out.values()), "peak_traced_mb": peak,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_resnet50(runs: int) -> dict:
    sd_cfg = PRESETS["smartdeal-paper"].build()
    shapes = resnet50_shapes(sd_cfg)
    topo = [as_topology(s) for s in shapes]
    lcp_cfg = PRESETS["lcp-asap7-32x64"].build()
    jobs = {"lcp-asap7-32x64": lambda: lcp.simulate_shapes(lcp_cfg, shapes),
            "smartdeal-paper (estimate)": lambda: smartdeal.simulate_shapes(sd_cfg, shapes)}
    for df in DATAFLOWS:
        cfg = resolve_config("systolic", f"systolic-32x32-{df}")
        jobs[f"systolic-32x32-{df}"] = lambda c=cfg: systolic.simulate_topology(c, topo)
    for name, simulate in BASELINES.items():
        jobs[name] = lambda f=simulate: f(sd_cfg, shapes)
    # the baselines cache binomial distributions: every run starts cold
    return {"layers": len(shapes),
            "accelerators": {k: timed(f, runs, setup=baselines.binom_cdf.cache_clear)
                             for k, f in jobs.items()}}


def bench_lcp_topology(runs: int) -> tuple[float, float]:
    argv = ["simulate", "--preset", "lcp-asap7-32x64", "--topology", str(RESNET18)]

    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli_main(argv) == 0

    lcp.simulate_shapes(PRESETS["lcp-asap7-32x64"].build(),
                        topology_shapes(read_topology(RESNET18))[:1])   # imports warmed up
    return timed(run, runs)


def bench_scalesim(python: str) -> dict:
    out = {}
    for df in DATAFLOWS:
        start = time.perf_counter()
        subprocess.run([python, str(RECORD), "--one", f"resnet18-{df}", str(RESNET18), "conv",
                        "32", "32", df, "64", "64", "64"], check=True, capture_output=True)
        out[df] = time.perf_counter() - start
        print(f"  SCALE-Sim {df}: {out[df]:.1f} s", flush=True)
    return out


def _verdict(value: float, target: float) -> str:
    return "ok" if value < target else "MISSES"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs (median reported)")
    default_scalesim = os.environ.get("SCALESIM_PYTHON") or (
        "/tmp/scalesim-venv/bin/python" if Path("/tmp/scalesim-venv/bin/python").exists()
        else None)
    parser.add_argument("--scalesim", metavar="PYTHON", default=default_scalesim,
                        help="a python with SCALE-Sim installed (default: %(default)s)")
    parser.add_argument("--no-scalesim", action="store_true", help="skip SCALE-Sim")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args(argv)

    result = {"runs": args.runs, "targets": TARGETS}
    print(f"median of {args.runs} runs (wall / CPU seconds); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    s18 = result["systolic_resnet18"] = bench_systolic_resnet18(args.runs)
    print("1. ResNet-18 on 32x32 systolic arrays (SCALE-Sim parity mode):")
    for df, (w, c) in s18["per_dataflow"].items():
        print(f"   {df}: {w * 1e3:7.1f} ms / {c * 1e3:7.1f} ms")
    print(f"   all three: {s18['wall_s'] * 1e3:.1f} ms / {s18['cpu_s'] * 1e3:.1f} ms "
          f"[{_verdict(s18['cpu_s'], TARGETS['systolic_resnet18_s'])}, target "
          f"{TARGETS['systolic_resnet18_s'] * 1e3:.0f} ms]; peak traced "
          f"{s18['peak_traced_mb']:.1f} MB, max RSS {s18['max_rss_mb']:.0f} MB "
          f"[{_verdict(max(s18['peak_traced_mb'], s18['max_rss_mb']), TARGETS['peak_mb'])}, "
          f"target {TARGETS['peak_mb']:.0f} MB]")

    r50 = result["resnet50"] = bench_resnet50(args.runs)
    print(f"2. ResNet-50 ({r50['layers']} convolutions) on every accelerator "
          f"(target {TARGETS['resnet50_s']:.0f} s each):")
    for name, (w, c) in r50["accelerators"].items():
        print(f"   {name:28s} {w:7.3f} s / {c:7.3f} s  [{_verdict(c, TARGETS['resnet50_s'])}]")

    w, c = result["lcp_topology"] = bench_lcp_topology(args.runs)
    print(f"3. tessera simulate --preset lcp-asap7-32x64 --topology resnet18.csv: {w:.3f} s / "
          f"{c:.3f} s [{_verdict(c, TARGETS['lcp_topology_s'])}, target "
          f"{TARGETS['lcp_topology_s']:.0f} s]")

    if args.scalesim and not args.no_scalesim:
        print(f"4. SCALE-Sim ({args.scalesim}) on (1), one run each:")
        sc = result["scalesim_wall_s"] = bench_scalesim(args.scalesim)
        total = sum(sc.values())
        print(f"   all three: {total:.1f} s, {total / s18['wall_s']:.0f}x Tessera's wall time")
    else:
        print("4. SCALE-Sim not timed: pass --scalesim PYTHON (or set SCALESIM_PYTHON)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
