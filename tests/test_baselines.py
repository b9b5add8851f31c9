"""The SmartDeal paper's baseline models (sim/baselines.py) on hand-checkable layers."""

import math

import pytest

from tessera.compiler.layers import LayerShape, parse_spec
from tessera.config import PRESETS
from tessera.errors import SpecError
from tessera.sim.baselines import (BASELINES, LayerStats, Resources, cx_index_bits,
                                   diannao_geometry, e_ceil, e_max_ceil, pragmatic_brick_cycles,
                                   pragmatic_windows, scnn_grid, simulate_cambricon_x,
                                   simulate_diannao, simulate_pragmatic, simulate_scnn)

CFG = PRESETS["smartdeal-paper"].build()
#: 64 -> 128 channels, 3x3, 8x8 'same': every dimension a multiple of every array's tile.
ALIGNED = parse_spec("conv:C=64,K=128,H=8,W=8,pad=1", name="aligned")
DENSE = LayerStats(bit_density=1.0)


def compute(report):
    return report.layers[0].phases["compute"]


def test_resources_follow_the_smartdeal_preset():
    from tessera.sim.smartdeal import simulate_shapes

    res = Resources.of(CFG)
    assert (res.multipliers, res.serial) == (1024, 8192)   # Table IX: 1K 8-bit, 8K bit-serial
    assert (res.dram_width, res.dram_latency, res.clock_mhz) == (16, 100, 1000.0)
    small = PRESETS["smartdeal-small"].build()
    banks = simulate_shapes(small, [parse_spec("conv:C=4,K=4,H=4,W=4,pad=1")]).banks
    assert Resources.of(small).sram_bytes == 2 * sum(banks.values())   # every buffer 2 banks
    assert diannao_geometry(res) == (32, 32)
    assert scnn_grid(res) == (8, 8)
    assert pragmatic_windows(res) == 32


def test_expectations_by_hand():
    assert e_ceil(5, 1.0, 4) == 2                       # ceil(5/4), no randomness
    assert e_ceil(1, 0.5, 4) == 0.5
    assert e_max_ceil(1, 0.5, 1, 2) == 0.75             # max of two fair coins
    assert e_max_ceil(1, 0.0, 1, 2, floor=1) == 1.0     # at least a cycle
    assert e_max_ceil(100, 1.0, 16, 64, floor=1) == 7   # ceil(100/16)
    assert pragmatic_brick_cycles(1.0) == 8.0           # every bit set: 8 cycles
    assert 1.0 < pragmatic_brick_cycles(0.2) < pragmatic_brick_cycles(0.5) < 8.0
    assert pragmatic_brick_cycles(1e-9) == pytest.approx(1.0)


def test_diannao_dense_cycles_are_macs_over_multipliers():
    r = simulate_diannao(CFG, [ALIGNED])
    assert compute(r) == ALIGNED.macs // 1024 == 64 * 4 * 9 * 2
    layer = r.layers[0]
    assert sum(layer.phases.values()) == layer.cycles
    assert layer.phases["load"] >= CFG.dram_latency
    assert layer.events["op.mac8"] == ALIGNED.macs
    assert layer.events["sram.weight.read_bytes"] == ALIGNED.macs   # no reuse in the NFU


def test_diannao_rounds_up_per_tile():
    s = parse_spec("conv:C=3,K=40,H=8,W=8,pad=1")   # 3 of 32 input lanes, 40 = 32 + 8 neurons
    assert compute(simulate_diannao(CFG, [s])) == 64 * 2 * 9 * 1
    dw = LayerShape("dw", "conv", C=64, K=64, H=8, W=8, R=3, S=3, pads=(1,) * 4, groups=64)
    assert compute(simulate_diannao(CFG, [dw])) == 64 * 2 * 9     # diagonal: 32 channels a cycle


def test_dram_is_read_once_when_an_operand_fits_and_tiled_otherwise():
    r = simulate_diannao(CFG, [ALIGNED]).layers[0]
    w = 128 * 64 * 9
    assert r.events["dram.read_bytes"] == 64 * 64 + w
    assert r.events["dram.write_bytes"] == 128 * 64
    assert r.energy_pj["dram"] == pytest.approx(100.0 * (64 * 64 + w + 128 * 64))
    big = parse_spec("conv:C=512,K=512,H=56,W=56,pad=1")
    res = Resources.of(CFG)
    in_b, w_b = 512 * 56 * 56, 512 * 512 * 9
    banks = res.dense_banks()
    n_in, n_w = math.ceil(in_b / banks["input"]), math.ceil(w_b / banks["weight"])
    got = simulate_diannao(CFG, [big]).layers[0].events["dram.read_bytes"]
    assert got == min(in_b + n_in * w_b, n_w * in_b + w_b) > in_b + w_b


def test_cambricon_x_without_zeros_equals_diannao():
    dn, cx = simulate_diannao(CFG, [ALIGNED]), simulate_cambricon_x(CFG, [ALIGNED])
    assert compute(cx) == compute(dn)
    assert cx.layers[0].events["dram.read_bytes"] == dn.layers[0].events["dram.read_bytes"]
    assert cx_index_bits(0.0) == 0.0


def test_cambricon_x_skips_zero_weights_and_pays_an_index():
    st = LayerStats(weight_sparsity=0.5)
    r = simulate_cambricon_x(CFG, [ALIGNED], st).layers[0]
    assert r.events["op.mac8"] == ALIGNED.macs / 2
    assert cx_index_bits(0.5) == 2.0          # direct (2 bits per non-zero) beats step (4)
    assert cx_index_bits(0.9) == 4.0
    assert r.info["dram_weight_bytes"] == pytest.approx(128 * 64 * 9 * 0.5 * (1 + 2 / 8))
    dense = compute(simulate_diannao(CFG, [ALIGNED]))
    # half the work, plus the wait for the PE with the most non-zero weights
    assert dense / 2 < r.phases["compute"] < dense


def test_scnn_dense_cartesian_product_by_hand():
    s = parse_spec("conv:C=16,K=8,H=16,W=16,pad=1")
    r = simulate_scnn(CFG, [s]).layers[0]
    # 2x2 input tiles: one vector of 4 activations; 8 filters x 9 taps = 18 vectors of 4 weights
    assert r.info["tile"] == [2, 2] and r.info["kc"] == 8 and r.info["active_pes"] == 64
    assert r.phases["compute"] == 16 * 1 * 18
    assert r.info["products"] == s.macs             # stride 1, 'same': every product lands
    strided = parse_spec("conv:C=16,K=8,H=16,W=16,pad=1,stride=2")
    assert simulate_scnn(CFG, [strided]).layers[0].info["products"] == 4 * strided.macs


def test_scnn_skips_zero_activations_and_weights():
    s = parse_spec("conv:C=64,K=64,H=56,W=56,pad=1")
    dense = simulate_scnn(CFG, [s]).layers[0]
    sparse = simulate_scnn(CFG, [s], LayerStats(0.5, 0.5, 0.5)).layers[0]
    assert sparse.info["products"] == pytest.approx(dense.info["products"] / 4)
    assert sparse.phases["compute"] < dense.phases["compute"] / 2
    assert sparse.events["dram.read_bytes"] < dense.events["dram.read_bytes"]


def test_pragmatic_at_full_bit_density_takes_diannao_time():
    pra = simulate_pragmatic(CFG, [ALIGNED], DENSE)
    assert compute(pra) == compute(simulate_diannao(CFG, [ALIGNED]))
    fast = simulate_pragmatic(CFG, [ALIGNED], LayerStats(bit_density=0.2))
    assert compute(fast) == math.ceil(compute(pra) / 8 * pragmatic_brick_cycles(0.2))


def test_reports_name_the_model_and_price_every_event():
    shapes = [ALIGNED, parse_spec("fc:K=256,N=10", name="fc")]
    for name, simulate in BASELINES.items():
        r = simulate(CFG, shapes, [LayerStats(0.3, 0.5, 0.5), LayerStats()])
        assert r.arch == name and r.config["model"] == name
        assert r.config["derived_from"]["arch"] == "smartdeal"
        assert r.peak_macs_per_cycle == 1024
        for layer in r.layers:
            assert sum(layer.phases.values()) == layer.cycles
            assert layer.energy_pj["total"] > 0
        assert r.to_json()["total"]["cycles"] == sum(l.cycles for l in r.layers)


@pytest.mark.parametrize("kwargs, phrase", [
    ({"weight_sparsity": 1.0}, "weight_sparsity = 1.0 is invalid"),
    ({"act_sparsity": -0.1}, "act_sparsity = -0.1 is invalid"),
    ({"bit_density": 0.0}, "bit_density = 0.0 is invalid"),
])
def test_bad_statistics_are_one_line_errors(kwargs, phrase):
    with pytest.raises(SpecError, match=phrase):
        LayerStats(**kwargs)


def test_statistics_count_must_match_layers():
    with pytest.raises(SpecError, match="2 layer statistics for 1 layers"):
        simulate_diannao(CFG, [ALIGNED], [LayerStats(), LayerStats()])
