"""A compiled program through the AXI shell (tessera_top) under cocotb, driven by the board
driver's register protocol, with random backpressure on every AXI channel: outputs bit-exact
against the golden model, the cycle counter equal to the simulator's prediction."""

import json
import shutil

import pytest

from tessera.cli import main
from tessera.commands._common import layer_shapes
from tessera.config import PRESETS
from tessera.crosscheck import random_program

pytestmark = [pytest.mark.rtl,
              pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")]

#: Two layers, the second reading the first's output right after it is written.
LAYERS = ["conv:C=8,K=16,H=6,W=6,R=3,pad=1,relu", "conv:C=16,K=8,H=6,W=6,R=3,pad=1,pool=2"]
#: Pauses on every channel of the shell's AXI master and register slave.
PAUSES = {c: 0.3 for c in ("m_aw", "m_w", "m_b", "m_ar", "s_aw", "s_w", "s_b", "s_ar", "s_r")}
BASE = 0x1F40          # not 4 KB aligned: bursts must split at the page boundaries


def test_program_through_the_axi_shell(tmp_path):
    from tessera.boards.check import check_run
    from tessera.boards.shell_sim import ShellJob, run_on_shell

    cfg = PRESETS["lcp-pynq-z1"].build()
    prog = random_program(cfg, layer_shapes(LAYERS), 7)
    jobs = [
        # The slave always answers within L (which covers the write drain between layers).
        ShellJob("within-contract", prog, BASE, latency=128, pauses={**PAUSES, "m_r": 0.1},
                 seed=1),
        # R is throttled far below one beat per cycle: beats come late, the core waits.
        ShellJob("late-reads", prog, BASE, latency=cfg.dram_latency,
                 pauses={**PAUSES, "m_r": 0.7}, seed=2),
    ]
    exact, late = run_on_shell(cfg, jobs, tmp_path)

    ok = check_run(prog, exact.record, exact.final_image)
    assert ok["outputs_match"] and not ok["axi_error"] and not ok["error"]
    assert exact.record.latency == 128 and exact.record.violations == 0
    assert ok["rtl_cycles"] == ok["sim_cycles"]
    assert exact.record.config_id == cfg.config_id

    slow = check_run(prog, late.record, late.final_image)
    assert slow["outputs_match"] and late.record.latency == cfg.dram_latency
    assert late.record.read_late > 0 and late.record.violations >= late.record.read_late
    assert slow["rtl_cycles"] > slow["sim_cycles"] and slow["ok"]

    # The same run directory the board driver writes, judged by `tessera fpga --check`.
    run_dir = prog.save(tmp_path / "run")
    exact.final_image.tofile(run_dir / "final.bin")
    (run_dir / "run.json").write_text(json.dumps({"record": exact.record._asdict()}))
    assert main(["fpga", "--check", str(run_dir), "--json", str(tmp_path / "check.json")]) == 0
    assert json.loads((tmp_path / "check.json").read_text())["cycles_equal"]


#: SmartDeal: a 3x3 conv with half its Ce rows zero (skipped by the index selector) and some
#: zero activations, then a 1x1 layer that reads the first one's output. smartdeal-small (4x4x4,
#: 32-bit port) keeps it under a minute in Icarus; the AXI shell is the same for every preset.
SD_PRESET = "smartdeal-small"
SD_LAYERS = ["conv:C=12,K=8,H=5,W=8,R=3,pad=1,relu", "conv:C=8,K=12,H=5,W=8,R=1,relu"]


def test_smartdeal_program_through_the_axi_shell(tmp_path):
    from tessera.backends import backend
    from tessera.boards.check import check_run
    from tessera.boards.shell_sim import ShellJob, run_on_shell

    cfg = PRESETS[SD_PRESET].build()
    prog = random_program(cfg, layer_shapes(SD_LAYERS), 11, row_sparsity=0.5,
                          zero_fraction=0.2)
    exact, late = run_on_shell(cfg, [
        ShellJob("within-contract", prog, BASE, latency=128, pauses={**PAUSES, "m_r": 0.1},
                 seed=3),
        ShellJob("late-reads", prog, BASE, latency=cfg.dram_latency,
                 pauses={**PAUSES, "m_r": 0.7}, seed=4),
    ], tmp_path)

    ok = check_run(prog, exact.record, exact.final_image)
    assert ok["outputs_match"] and not ok["axi_error"] and not ok["error"]
    assert exact.record.config_id == cfg.config_id and exact.record.violations == 0
    predicted = backend(cfg).simulate_program(prog, cfg.replace(dram_latency=128))
    assert exact.record.cycles == predicted.total.cycles == ok["sim_cycles"]

    slow = check_run(prog, late.record, late.final_image)
    assert slow["outputs_match"] and late.record.read_late > 0
    assert slow["rtl_cycles"] > slow["sim_cycles"] and slow["ok"]
