"""Record SCALE-Sim v3 reference numbers for tests/test_systolic.py.

Runs SCALE-Sim itself, so it needs a Python with SCALE-Sim installed, never the project's venv
(see README.md in this folder for the exact commands). It imports nothing from Tessera.

    python record.py            rewrite runs.csv and reference.csv for every run in RUNS
    python record.py --one ...  run one configuration and print its rows (used by the live test)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (run, topology file in this folder, form, rows, cols, dataflow, ifmap KB, filter KB, ofmap KB)
RUNS = [
    *[(f"resnet18-{r}x{c}-{df}", "resnet18.csv", "conv", r, c, df, 64, 64, 64)
      for r, c in ((32, 32), (16, 64)) for df in ("os", "ws", "is")],
    *[(f"gemm-{r}x{c}-{df}", "gemm.csv", "gemm", r, c, df, 64, 64, 64)
      for r, c in ((32, 32), (16, 64)) for df in ("os", "ws", "is")],
    *[(f"stress-{r}x{c}-{df}", "stress.csv", "conv", r, c, df, 2, 1, 1)
      for r, c in ((8, 8), (4, 12)) for df in ("os", "ws", "is")],
]

RUN_FIELDS = ["run", "topology", "form", "rows", "cols", "dataflow", "ifmap_kb", "filter_kb",
              "ofmap_kb"]
FIELDS = ["run", "layer", "compute_cycles", "stall_cycles", "total_cycles_incl_prefetch",
          "overall_util_pct", "mapping_efficiency_pct", "compute_util_pct",
          "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes",
          "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes",
          "sram_ifmap_start", "sram_ifmap_stop", "sram_filter_start", "sram_filter_stop",
          "sram_ofmap_start", "sram_ofmap_stop", "dram_ifmap_start", "dram_ifmap_stop",
          "dram_filter_start", "dram_filter_stop", "dram_ofmap_start", "dram_ofmap_stop"]

#: SCALE-Sim's configs/scale.cfg with the array, dataflow and SRAM sizes filled in.
CONFIG = """[general]
run_name = {run}

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {ifmap_kb}
FilterSramSzkB: {filter_kb}
OfmapSramSzkB: {ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth : 10
Dataflow : {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 100
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 100
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def run_scalesim(run: str, topology: Path, form: str, rows: int, cols: int, dataflow: str,
                 ifmap_kb: int, filter_kb: int, ofmap_kb: int) -> list[dict]:
    """One SCALE-Sim run (estimate-bandwidth mode, no traces); its per-layer report rows."""
    from scalesim.layout_utils import layouts
    from scalesim.scale_config import scale_config
    from scalesim.simulator import simulator
    from scalesim.topology_utils import topologies

    with tempfile.TemporaryDirectory() as tmp:
        cfg_file = Path(tmp) / "scale.cfg"
        cfg_file.write_text(CONFIG.format(run=run, rows=rows, cols=cols, dataflow=dataflow,
                                          ifmap_kb=ifmap_kb, filter_kb=filter_kb,
                                          ofmap_kb=ofmap_kb))
        config = scale_config()
        config.read_conf_file(str(cfg_file))
        topo = topologies()
        topo.load_arrays(topofile=str(topology), mnk_inputs=form == "gemm")
        sim = simulator()
        sim.set_params(config_obj=config, topo_obj=topo, layout_obj=layouts(), top_path=tmp,
                       verbosity=False, save_trace=False)
        with contextlib.redirect_stdout(io.StringIO()):
            sim.run()
        report = Path(tmp) / run
        compute = list(csv.reader((report / "COMPUTE_REPORT.csv").read_text().splitlines()))[1:]
        detail = list(csv.reader((report / "DETAILED_ACCESS_REPORT.csv").read_text()
                                 .splitlines()))[1:]
    rows_out = []
    for lid, (c, d) in enumerate(zip(compute, detail)):
        c = [x.strip() for x in c]
        d = [float(x) for x in d[1:19]]
        rows_out.append({
            "run": run, "layer": topo.get_layer_name(lid),
            "compute_cycles": int(c[2]), "stall_cycles": int(c[3]),
            "total_cycles_incl_prefetch": int(c[1]), "overall_util_pct": c[4],
            "mapping_efficiency_pct": c[5], "compute_util_pct": c[6],
            "sram_ifmap_reads": int(d[2]), "sram_filter_reads": int(d[5]),
            "sram_ofmap_writes": int(d[8]), "dram_ifmap_reads": int(d[11]),
            "dram_filter_reads": int(d[14]), "dram_ofmap_writes": int(d[17]),
            "sram_ifmap_start": int(d[0]), "sram_ifmap_stop": int(d[1]),
            "sram_filter_start": int(d[3]), "sram_filter_stop": int(d[4]),
            "sram_ofmap_start": int(d[6]), "sram_ofmap_stop": int(d[7]),
            "dram_ifmap_start": int(d[9]), "dram_ifmap_stop": int(d[10]),
            "dram_filter_start": int(d[12]), "dram_filter_stop": int(d[13]),
            "dram_ofmap_start": int(d[15]), "dram_ofmap_stop": int(d[16]),
        })
    return rows_out


def _record(spec) -> list[dict]:
    run, topo, *rest = spec
    return run_scalesim(run, HERE / topo, *rest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=9, metavar=("RUN", "TOPOLOGY", "FORM", "ROWS", "COLS",
                                                   "DATAFLOW", "IFMAP_KB", "FILTER_KB",
                                                   "OFMAP_KB"),
                        help="simulate one configuration and print its rows as CSV")
    parser.add_argument("--jobs", type=int, default=2, help="parallel SCALE-Sim runs")
    args = parser.parse_args(argv)
    if args.one:
        run, topo, form, *ints = args.one
        rows_, cols, df, *kbs = ints
        out = run_scalesim(run, Path(topo), form, int(rows_), int(cols), df, *map(int, kbs))
        writer = csv.DictWriter(sys.stdout, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(out)
        return 0
    with (HERE / "runs.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RUN_FIELDS)
        writer.writerows(RUNS)
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_record, RUNS))
    with (HERE / "reference.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS, lineterminator="\n")
        writer.writeheader()
        for rows_out in results:
            writer.writerows(rows_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
