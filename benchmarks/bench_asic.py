"""`tessera asic` on a paper preset (default lcp-asap7-32x64): wall time of the whole command.

The command writes the ORFS design directory and the hierarchical yosys estimate (Verilog
generation, yosys on every block, the switching-activity simulation). The figure is the median of
``--runs`` runs in fresh directories; the budget is 10 minutes on a 2-core machine. The platform
folder is --platform-dir, $TESSERA_ASAP7_DIR, or shared/asap7 next to the repository.

    .venv/bin/python benchmarks/bench_asic.py [--runs 1] [--budget 600] [--preset P]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds allowed (median)")
    parser.add_argument("--preset", default="lcp-asap7-32x64")
    parser.add_argument("--platform-dir", default=os.environ.get("TESSERA_ASAP7_DIR")
                        or str(ROOT.parent / "shared" / "asap7"))
    args = parser.parse_args()

    env = {**os.environ, "AMARANTH_USE_YOSYS": "builtin"}
    times, report = [], None
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "asic"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tessera.cli", "asic", "--preset", args.preset,
                            "--platform-dir", args.platform_dir, "-o", str(out)],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
            report = json.loads((out / "estimate.json").read_text())
    median = statistics.median(times)
    print(f"{args.preset}: {median:.0f} s median of {len(times)} "
          f"({', '.join(f'{t:.0f}' for t in times)}); budget {args.budget:.0f} s")
    print(f"area {report['total_area_mm2']:.4f} mm^2 (cells {report['cell_area_um2']:,.0f} + "
          f"macros {report['macro_area_um2']:,.0f} um^2), critical path "
          f"{report['critical_path_ps']:.0f} / {report['clock_period_ps']:.0f} ps, "
          f"power {report['power_mw']:.1f} mW")
    return 0 if median <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
