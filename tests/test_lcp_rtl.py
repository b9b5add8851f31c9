"""The central promise on the LCP array: RTL == golden (bit for bit) and RTL cycles == simulator
cycles (exactly), with random weights, inputs, shapes and DRAM latencies, on several arrays."""

import shutil

import numpy as np
import pytest

from tessera.commands._common import layer_shapes
from tessera.config import LcpConfig, PRESETS
from tessera.crosscheck import compare, random_program

pytestmark = [pytest.mark.rtl,
              pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")]

SUITE = [
    "gemm:M=4,K=4,N=4",
    "gemm:M=11,K=9,N=17,relu",                       # GEMM, sizes not multiples of the array
    "fc:K=37,N=10,relu",                              # FC with ReLU
    "conv:C=3,K=9,H=9,W=10,R=3,pad=1",               # 3x3 stride 1, padding
    "conv:C=6,K=5,H=11,W=13,R=3,stride=2,pad=1,relu",  # 3x3 stride 2, padding
    "conv:C=6,K=7,H=10,W=9,R=3,pad=1,relu,pool=2",   # pooling
    "conv:C=9,K=20,H=6,W=7,R=1,relu,pool=2",         # 1x1, odd sizes, pooling
    "conv:C=5,K=3,H=9,W=7,R=3,S=2,stride=3,pad=1",   # non-square kernel, stride 3
]
CHAIN = ["conv:C=3,K=8,H=10,W=10,pad=1,relu,pool=2", "conv:C=8,K=6,H=5,W=5,pad=1,relu",
         "conv:C=6,K=10,H=5,W=5,R=5"]

CONFIGS = {
    "tiny-4x4-B4": PRESETS["lcp-tiny"].build(),
    "small-4x8-B2": PRESETS["lcp-small"].build(),
    "8x16-B8": PRESETS["lcp-8x16"].build(),
    "2x8-B1-acc20": LcpConfig(rows=2, cols=8, dram_width=1, abuf_depth=64, acc_depth=8,
                              acc_width=20),
    "4x4-B2-acc4": LcpConfig(rows=4, cols=4, dram_width=2, abuf_depth=64, acc_depth=4),
}


def _check(results):
    bad = [r for r in results if not (r["cycles_equal"] and r["outputs_match"]
                                      and r["dram_traffic_equal"])]
    assert not bad, bad


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_suite_agrees_with_random_latencies(name, tmp_path):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    programs = []
    for i, spec in enumerate(SUITE):
        latency = int(rng.integers(1, 40))
        programs.append((f"{spec}@L{latency}", random_program(cfg, layer_shapes([spec]), i),
                         latency))
    programs.append(("chain", random_program(cfg, layer_shapes(CHAIN), 99),
                     int(rng.integers(1, 40))))
    _check(compare(cfg, programs, tmp_path))


def test_random_layers_agree(tmp_path):
    """Shapes drawn at random (seeded) on the tiny array."""
    cfg = CONFIGS["tiny-4x4-B4"]
    rng = np.random.default_rng(2026)
    programs = []
    for i in range(10):
        R = int(rng.integers(1, 4))
        stride = int(rng.integers(1, 3))
        pad = int(rng.integers(0, R))
        H, W = (int(v) for v in rng.integers(R + stride, 12, 2))
        spec = (f"conv:C={rng.integers(1, 10)},K={rng.integers(1, 12)},H={H},W={W},R={R},"
                f"stride={stride},pad={pad}" + (",relu" if rng.random() < .5 else "")
                + (",pool=2" if rng.random() < .3 else ""))
        try:
            prog = random_program(cfg, layer_shapes([spec]), i)
        except Exception as exc:  # pooling on a 1-pixel output: not a valid layer
            assert "pool=2" in spec, exc
            continue
        programs.append((spec, prog, int(rng.integers(1, 30))))
    assert len(programs) >= 6
    _check(compare(cfg, programs, tmp_path))


def test_wrong_configuration_is_refused_by_the_hardware(tmp_path):
    """A HEADER naming another configuration stops the core with error set, before any work."""
    from tessera.compiler.lcp.isa import STEP_DTYPE
    from tessera.sim.rtl.runner import run_programs

    cfg = CONFIGS["tiny-4x4-B4"]
    prog = random_program(cfg, layer_shapes(["gemm:M=2,K=4,N=4"]), 0)
    header = prog.image[:64].view(STEP_DTYPE)
    header["config_id"] ^= 1
    result, = run_programs(cfg, [("bad-id", prog, 5, 1000)], tmp_path)
    assert result.error and result.cycles < 100
