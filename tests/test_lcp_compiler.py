"""LCP back end: layouts round-trip, tiles fit and cover, the two simulator paths agree."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from tessera.backends import golden_outputs
from tessera.compiler.golden import run_network
from tessera.compiler.layers import LayerShape, parse_spec, random_quant_layer
from tessera.compiler.lcp.compile import compile_network, decode_network
from tessera.compiler.lcp.isa import STEP_BYTES, Flag, Op, decode_steps
from tessera.compiler.lcp.layout import pack_tensor, unpack_tensor, TensorLayout
from tessera.compiler.lcp.tiling import choose_tiling, layer_jobs
from tessera.compiler.program import Program
from tessera.config import LcpConfig, PRESETS
from tessera.crosscheck import random_program
from tessera.errors import CompileError, ProgramError
from tessera.sim.lcp import simulate_program, simulate_shapes

CONFIGS = [PRESETS["lcp-tiny"].build(), PRESETS["lcp-small"].build(),
           LcpConfig(rows=2, cols=8, dram_width=1, abuf_depth=64, acc_depth=8, acc_width=20)]


@st.composite
def conv_shapes(draw):
    R = draw(st.integers(1, 4))
    S = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, min(R, S) - 1))
    pool = draw(st.booleans())
    H = draw(st.integers(max(1, R - 2 * pad) + (stride if pool else 0), 13))
    W = draw(st.integers(max(1, S - 2 * pad) + (stride if pool else 0), 13))
    try:
        return LayerShape("l", "conv", C=draw(st.integers(1, 11)), K=draw(st.integers(1, 19)),
                          H=H, W=W, R=R, S=S, stride=stride, pads=(pad,) * 4,
                          relu=draw(st.booleans()), pool=pool)
    except Exception:
        return LayerShape("l", "conv", C=3, K=5, H=6, W=6, R=3, pads=(1,) * 4)


def _jobs_or_reject(shape, cfg):
    try:
        return layer_jobs(shape, cfg)
    except CompileError:  # too big for this configuration's buffers: a different test
        reject()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_shapes(), st.sampled_from(CONFIGS))
def test_tiles_fit_and_cover_every_output_once(shape, cfg):
    jobs = _jobs_or_reject(shape, cfg)
    t = jobs.tiling
    p = 2 if shape.pool else 1
    assert t.th * t.tw <= cfg.acc_depth and t.th % p == 0 and t.tw % p == 0
    assert np.all(jobs.bh * jobs.bw <= cfg.abuf_depth // 2)
    cover = np.zeros((jobs.NT, shape.out_h * p, shape.out_w * p), int)
    for oy, ox, h, w, n in zip(jobs.oy0, jobs.ox0, jobs.h, jobs.w, jobs.n):
        cover[n, oy:oy + h, ox:ox + w] += 1
    assert np.all(cover == 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_shapes(), st.sampled_from(CONFIGS), st.integers(0, 1000))
def test_program_and_shape_simulations_agree(shape, cfg, seed):
    _jobs_or_reject(shape, cfg)
    prog = random_program(cfg, [shape], seed)
    a = simulate_program(prog).layers[0]
    b = simulate_shapes(cfg, [shape]).layers[0]
    assert (a.cycles, a.phases, a.events) == (b.cycles, b.phases, b.events)
    assert sum(a.phases.values()) == a.cycles


def test_program_and_shape_simulations_agree_on_a_chain():
    cfg = CONFIGS[0]
    specs = ["conv:C=3,K=8,H=10,W=10,pad=1,relu,pool=2", "conv:C=8,K=6,H=5,W=5,pad=1,relu",
             "conv:C=6,K=10,H=5,W=5,R=5", "fc:K=10,N=7"]
    shapes = [parse_spec(s, name=f"l{i}") for i, s in enumerate(specs)]
    shapes[-1] = LayerShape("fc", "conv", C=10, K=7, H=1, W=1)
    prog = random_program(cfg, shapes, 1)
    a, b = simulate_program(prog), simulate_shapes(cfg, shapes)
    assert [l.cycles for l in a.layers] == [l.cycles for l in b.layers]
    assert a.total.events == b.total.events


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.config_hash)
def test_image_round_trips_through_the_manifest(cfg):
    rng = np.random.default_rng(0)
    shapes = [parse_spec("conv:C=5,K=9,H=7,W=6,pad=1,stride=2,relu", "a"),
              parse_spec("conv:C=9,K=3,H=4,W=3,R=1", "b")]
    layers = [random_quant_layer(s, rng) for s in shapes]
    x = rng.integers(-128, 128, shapes[0].input_shape, dtype=np.int8)
    prog = compile_network(cfg, layers, x)
    back, x2 = decode_network(prog)
    assert np.array_equal(x2, x)
    for a, b in zip(layers, back):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
        assert np.array_equal(a.mult, b.mult) and np.array_equal(a.shift, b.shift)
    for g, h in zip(golden_outputs(prog), run_network(layers, x, cfg.acc_width)):
        assert np.array_equal(g, h)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 20), st.integers(1, 6), st.integers(1, 6), st.sampled_from([2, 4, 8]))
def test_tensor_layout_round_trips(C, H, W, rows):
    x = np.random.default_rng(C * H * W).integers(-128, 128, (C, H, W), dtype=np.int8)
    blob = pack_tensor(x, rows)
    t = TensorLayout(0, C, H, W, rows)
    assert len(blob) == t.size
    assert np.array_equal(unpack_tensor(blob, t), x)


def test_command_stream_framing_and_step_placement():
    cfg = CONFIGS[0]
    prog = random_program(cfg, [parse_spec("conv:C=6,K=5,H=7,W=9,stride=2,pad=1,relu,pool=2")], 0)
    steps = decode_steps(prog.region("commands").tobytes())
    assert steps[0]["op"] == Op.HEADER and steps[0]["config_id"] == cfg.config_id
    assert steps[-1]["flags"] & Flag.LAST and steps[-1]["op"] == Op.STORE
    # Each COMPUTE's weight block was loaded by the step before it.
    prev_w = np.roll(steps["flags"] & Flag.LOAD_W, 1) != 0
    assert np.all(prev_w[steps["op"] == Op.COMPUTE])
    # A STORE never shares its step with a parameter load (the PPU is using them).
    assert not np.any((steps["op"] == Op.STORE) & (steps["flags"] & Flag.LOAD_PARAM != 0))


def test_corrupt_programs_are_refused(tmp_path):
    cfg = CONFIGS[0]
    prog = random_program(cfg, [parse_spec("gemm:M=3,K=5,N=4")], 0)
    d = prog.save(tmp_path / "p")
    assert Program.load(d).manifest == prog.manifest
    (d / "image.bin").write_bytes(b"\0" * 10)
    with pytest.raises(ProgramError, match="holds 10 bytes"):
        Program.load(d)
    (d / "manifest.json").write_text("{")
    with pytest.raises(ProgramError, match="corrupt"):
        Program.load(d)
    with pytest.raises(ProgramError, match="does not start with a HEADER"):
        decode_steps(bytes(STEP_BYTES))
    with pytest.raises(ProgramError, match="compiled for"):
        prog.check_config(CONFIGS[1])


def test_layers_that_do_not_fit_are_reported():
    cfg = LcpConfig(abuf_depth=16, acc_depth=4)
    with pytest.raises(CompileError, match="does not fit.*abuf_depth/2"):
        choose_tiling(parse_spec("conv:C=1,K=1,H=9,W=9,R=5"), cfg)
    with pytest.raises(CompileError, match="expects input"):
        compile_network(cfg, [random_quant_layer(parse_spec(s), np.random.default_rng(0))
                              for s in ("gemm:M=2,K=3,N=4", "gemm:M=2,K=5,N=4")],
                        np.zeros((3, 1, 2), np.int8))
