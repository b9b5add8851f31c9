"""SmartDeal back end: mapping, command formats, decoding, and the cycle model's behaviour."""

import numpy as np
import pytest

from tessera.backends import golden_outputs
from tessera.compiler.golden import run_network
from tessera.compiler.layers import LayerShape, parse_spec
from tessera.compiler.sd.compile import (compile_network, decode_network, quantize_layer,
                                         random_layer)
from tessera.compiler.sd.mapping import group_passes, group_size, layer_mode, mode_of
from tessera.config import PRESETS
from tessera.crosscheck import random_program
from tessera.errors import CompileError
from tessera.sim.smartdeal import expected_pass_cycles, simulate_program, simulate_shapes

TINY = PRESETS["smartdeal-tiny"].build()
SMALL = PRESETS["smartdeal-small"].build()

SHAPES = {
    "conv": parse_spec("conv:C=7,K=5,H=6,W=9,pad=1,relu", "conv"),
    "pointwise": parse_spec("conv:C=14,K=6,H=3,W=5,R=1", "pw"),
    "depthwise": LayerShape("dw", "conv", C=8, K=8, H=5, W=6, R=3, S=3, pads=(1,) * 4,
                            groups=8, relu=True),
    "fc": parse_spec("fc:K=25,N=7", "fc"),
    "fc-chunks": parse_spec("fc:K=400,N=6", "fcc"),   # overflows the banks: in chunks
    "stride2": parse_spec("conv:C=5,K=4,H=7,W=7,stride=2,pad=1", "s2"),
}


@pytest.mark.parametrize("cfg", [TINY, SMALL], ids=["tiny", "small"])
@pytest.mark.parametrize("kind", sorted(SHAPES))
@pytest.mark.parametrize("decomposed", [True, False])
def test_program_holds_exactly_the_layer(cfg, kind, decomposed):
    rng = np.random.default_rng(hash((kind, decomposed)) % 2 ** 32)
    shape = SHAPES[kind]
    layer = random_layer(shape, cfg, rng, row_sparsity=0.4, decomposed=decomposed)
    x = rng.integers(-128, 128, shape.input_shape, dtype=np.int8)
    prog = compile_network(cfg, [layer], x)
    (back,), x2 = decode_network(prog)
    assert np.array_equal(x2, x)
    assert np.array_equal(back.weights, layer.weights)
    for f in ("bias", "mult", "shift"):
        assert np.array_equal(getattr(back, f), getattr(layer, f))
    assert np.array_equal(golden_outputs(prog)[0], run_network([layer], x, cfg.acc_width)[0])


@pytest.mark.parametrize("kind", ["conv", "pointwise", "depthwise"])
def test_passes_run_every_kept_row_once_and_skip_zero_rows(kind):
    cfg = SMALL
    rng = np.random.default_rng(4)
    shape = SHAPES[kind]
    layer = random_layer(shape, cfg, rng, row_sparsity=0.5)
    gp = group_passes(layer, cfg, 0)
    assert gp.valid.sum(axis=1).max() <= cfg.dim_c
    # every line's (channel, row) appears once, and only rows with codes are scheduled
    units = {(int(c), int(r)) for p in range(gp.count) for c, r, v in
             zip(gp.channel[p], gp.row[p], gp.valid[p]) if v}
    assert len(units) == int(gp.valid.sum())
    assert np.all(gp.weights[gp.valid[:, None, :].repeat(gp.weights.shape[1], 1)] != 0)
    dense = group_passes(random_layer(shape, cfg, rng, row_sparsity=0.0), cfg, 0)
    if kind != "depthwise":
        assert gp.valid.sum() < dense.valid.sum()


def test_half_of_the_rows_zero_nearly_halves_cycles_and_weight_traffic():
    """50% vector-wise Ce sparsity on a 3x3 conv: the index selector skips the zero rows and
    the activation rows they pair with. Expected ratios (exact mode, same activations): cycles
    and weight-buffer reads about 0.55 (bound 0.65); on-chip activation reads and DRAM bytes
    about 0.7 (bound 0.8), because every input channel still has kept rows, so activations are
    still loaded once and only their re-reads shrink (docs/smartdeal.md)."""
    shape = [parse_spec("conv:C=48,K=16,H=6,W=8,pad=1,relu", "c")]
    dense = simulate_program(random_program(SMALL, shape, 3, row_sparsity=0.0)).total
    sparse = simulate_program(random_program(SMALL, shape, 3, row_sparsity=0.5)).total
    ratio = lambda key: sparse.events[key] / dense.events[key]
    assert 0.45 <= sparse.cycles / dense.cycles <= 0.65
    assert 0.45 <= ratio("sram.wb.read_bytes") <= 0.65
    assert ratio("sram.gb.read_bytes") <= 0.8
    assert ratio("dram.read_bytes") <= 0.85
    assert sparse.energy_pj["total"] / dense.energy_pj["total"] <= 0.85


def test_half_of_the_rows_zero_nearly_halves_a_weight_bound_layer_on_the_paper_preset():
    """Where the pass words dominate DRAM (512x512 3x3 at 7x7 on smartdeal-paper, estimate
    mode), half the Ce rows zero takes cycles and DRAM bytes to about 0.60 (bound 0.65): a basis
    group's kept rows pack into whole passes (72 of 144 units in 16 lines: 5 passes, not 4.5),
    and the input and bases still load once."""
    cfg = PRESETS["smartdeal-paper"].build()
    shape = [parse_spec("conv:C=512,K=512,H=7,W=7,pad=1,relu", "c")]
    dense, sparse = (simulate_shapes(cfg, shape, row_sparsity=r).total for r in (0.0, 0.5))
    assert 0.5 <= sparse.cycles / dense.cycles <= 0.65
    wb = sparse.events["sram.wb.read_bytes"] / dense.events["sram.wb.read_bytes"]
    assert 0.5 <= wb <= 5 / 9 + 0.01
    assert 0.5 <= sparse.events["dram.read_bytes"] / dense.events["dram.read_bytes"] <= 0.65


def test_zero_activations_cut_bit_serial_cycles():
    shape = [parse_spec("conv:C=12,K=8,H=6,W=8,pad=1", "c")]
    busy = simulate_program(random_program(SMALL, shape, 1)).total
    zeros = simulate_program(random_program(SMALL, shape, 1, zero_fraction=1.0)).total
    # every step of a zero activation row costs one cycle instead of up to four
    assert zeros.phases["compute"] < 0.5 * busy.phases["compute"]
    assert zeros.events["op.add32"] < busy.events["op.add32"]


def test_estimate_mode_bounds_and_label():
    assert expected_pass_cycles(SMALL, 3, 4, density=0.0) == pytest.approx(3.0)
    assert expected_pass_cycles(SMALL, 3, 4, density=1.0) == pytest.approx(12.0)
    assert 3 < expected_pass_cycles(SMALL, 3, 4) < 12
    rep = simulate_shapes(SMALL, [SHAPES["conv"], SHAPES["pointwise"]])
    assert all(layer.info["timing"] == "estimate" for layer in rep.layers)
    exact = simulate_program(random_program(SMALL, [SHAPES["conv"]], 0))
    assert exact.layers[0].info["timing"] == "exact"


def test_hardware_quantization_decomposes_into_encodable_codes():
    rng = np.random.default_rng(0)
    for spec in ("conv:C=8,K=8,H=6,W=6,pad=1,relu", "fc:K=30,N=10", "conv:C=12,K=6,H=4,W=4,R=1"):
        s = parse_spec(spec, "l")
        w = rng.normal(0, np.sqrt(2 / (s.C * s.R * s.S)), s.weight_shape)
        q = quantize_layer(s, w, rng.normal(0, .1, s.K), 0.05, 0.05, SMALL)
        assert q.sd is not None
        compile_network(SMALL, [q], rng.integers(-128, 128, s.input_shape, dtype=np.int8))


@pytest.mark.parametrize("shape, phrase", [
    (parse_spec("conv:C=3,K=4,H=9,W=9,R=5", "big"), "5x5 kernel does not fit"),
    (parse_spec("conv:C=3,K=4,H=8,W=8,pool=2", "p"), "no pooling unit"),
    (parse_spec("conv:C=3,K=4,H=9,W=9,stride=3", "s"), "stride 3"),
])
def test_unsupported_layers_are_refused(shape, phrase):
    with pytest.raises(CompileError, match=phrase):
        random_program(SMALL, [shape], 0)


def test_zero_codes_inside_kept_rows_are_refused():
    rng = np.random.default_rng(0)
    shape = SHAPES["conv"]
    layer = random_layer(shape, TINY, rng)
    layer.sd.ce_codes[0, 0, 0, 1] = 0  # one zero coefficient in a kept row
    with pytest.raises(CompileError, match="zero coefficients inside rows"):
        compile_network(TINY, [layer], np.zeros(shape.input_shape, np.int8))


def test_mode_follows_the_kernel():
    assert mode_of(SHAPES["conv"]).name == "CONV"
    assert mode_of(SHAPES["fc"]).name == "POINTWISE"
    assert mode_of(SHAPES["depthwise"]).name == "DEPTHWISE"


def test_fc_like_layers_run_in_two_mac_clusters():
    """smartdeal.md V-B ("Fourth"): a decomposed 1x1 layer whose columns fit half a line and
    whose output channels outnumber the slices splits each line's MACs in two clusters, one per
    rebuild engine, each on its own dim_m output channels."""
    fc = SHAPES["fc"]
    assert layer_mode(fc, SMALL).name == "CLUSTER"
    assert group_size(fc, SMALL) == 2 * SMALL.dim_m
    assert layer_mode(fc, SMALL, decomposed=False).name == "POINTWISE"   # int8: not built
    assert layer_mode(fc, SMALL.replace(fc_clusters=1)).name == "POINTWISE"
    assert layer_mode(parse_spec("fc:K=7,N=4", "f"), SMALL).name == "POINTWISE"   # 4 outputs
    assert layer_mode(SHAPES["pointwise"], SMALL).name == "POINTWISE"   # 5 columns > dim_f/2
    assert layer_mode(parse_spec("conv:C=14,K=6,H=3,W=2,R=1", "p"), SMALL).name == "CLUSTER"
    layer = random_layer(fc, SMALL, np.random.default_rng(0), row_sparsity=0.3)
    gp = group_passes(layer, SMALL, 0)
    assert gp.clustered and gp.weights.shape[1] == 2 * SMALL.dim_m


def test_clusters_halve_the_passes_of_an_fc_layer():
    """Same FC layer, same activations, with and without clusters: half the channel groups run,
    so the bit-serial compute cycles fall to about half (each pass still waits for its slowest
    line); DRAM bytes stay within 15% (two words per pass, each with its header and selections,
    but half as many passes). An FC layer reuses no weight, so the pass words' DRAM stream
    bounds the whole: 0.84x the cycles here."""
    shape = [parse_spec("fc:K=64,N=96,relu", "fc")]
    one, two = (simulate_program(random_program(SMALL.replace(fc_clusters=k), shape, 5)).total
                for k in (1, 2))
    assert 0.45 <= two.phases["compute"] / one.phases["compute"] <= 0.55
    assert two.cycles < 0.9 * one.cycles
    dram = lambda r: r.events["dram.read_bytes"] + r.events["dram.write_bytes"]
    assert abs(dram(two) / dram(one) - 1) <= 0.15


def test_an_fc_layer_larger_than_the_banks_runs_in_chunks():
    """VGG's fc1 (25,088 inputs) on the paper preset: each 128-channel group's passes (1,046
    pass words) are cut at basis groups into chunks that fit a weight-, basis- and input-buffer
    bank; every chunk but the last holds its sums in the MACs. The layer is bound by its pass
    words' DRAM stream: its cycles are within 25% of the bytes over the port width."""
    from tessera.compiler.sd.compile import plan_network
    from tessera.compiler.sd.isa import Flag

    cfg = PRESETS["smartdeal-paper"].build()
    shape = parse_spec("fc:K=25088,N=4096,relu", "fc1")
    layer = random_layer(shape, cfg, np.random.default_rng(0), structure_only=True)
    net = plan_network(cfg, [layer])
    plan = net.plans[0]
    chunks = plan.groups[0]
    assert len(chunks) > 4 and all(2 * gp.count <= cfg.wb_depth for gp in chunks)
    assert sum(gp.count for gp in chunks) == group_passes(layer, cfg, 0).count
    compute = net.steps[net.steps["op"] == 1]
    holds = (compute["flags"] & Flag.HOLD) != 0
    assert holds.sum() == compute.size - plan.NT        # all but each group's last chunk
    total = simulate_shapes(cfg, [shape]).total
    dram = total.events["dram.read_bytes"]
    assert dram > shape.C * shape.K / 2                 # 4-bit codes
    assert 1.0 <= total.cycles / (dram / cfg.dram_width) <= 1.25
