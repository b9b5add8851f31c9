"""Run a compiled program on the board: ``python3 -m tessera_pynq PROGRAM_DIR``.

Writes a run directory (the program, its final memory and the run record) that
``tessera fpga --check RUN_DIR`` judges on any machine with Tessera: outputs against the golden
model, the cycle counter against the simulator.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from .board import Accelerator
from .protocol import DriverError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m tessera_pynq", description=__doc__.split("\n")[0])
    p.add_argument("program", help="compiled program directory (manifest.json, image.bin)")
    p.add_argument("--bitfile", default=str(Path(__file__).resolve().parent.parent.parent
                                             / "tessera.bit"),
                   help="the overlay's bitstream, with its .hwh beside it (default: "
                        "tessera.bit of this flow directory)")
    p.add_argument("--latency", type=int, help="DRAM contract latency in cycles to program "
                                               "into LATENCY (default: keep the hardware's)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (default 10)")
    p.add_argument("-o", "--output", help="run directory to write (default: PROGRAM-run)")
    args = p.parse_args(argv)
    src = Path(args.program)
    try:
        manifest = json.loads((src / "manifest.json").read_text())
        image = np.fromfile(src / "image.bin", dtype=np.uint8)
        record, final = Accelerator(args.bitfile).run(
            image, int(manifest["config_hash"], 16), manifest["config"]["dram_width"],
            args.latency, args.timeout)
    except (OSError, KeyError, ValueError, DriverError) as exc:
        print(f"tessera_pynq: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output or f"{src.resolve()}-run")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.json", "image.bin"):
        shutil.copyfile(src / name, out / name)
    final.tofile(out / "final.bin")
    (out / "run.json").write_text(json.dumps({"record": record._asdict()}, indent=2,
                                             sort_keys=True) + "\n")
    print(f"cycles {record.cycles} at latency {record.latency}; contract violations "
          f"{record.violations}; error {record.error}; AXI error {record.axi_error}")
    print(f"wrote {out}: check it with `tessera fpga --check {out}`")
    return 0 if not (record.error or record.axi_error) else 1


if __name__ == "__main__":
    sys.exit(main())
