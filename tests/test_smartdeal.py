"""SmartDeal decomposition: the feasible set, the reshaping rules, the exact integer rebuild and
the paper-level quality target."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.compiler.compression import CompressOptions, compress_layer
from tessera.compiler.smartdeal import (SmartDealOptions, block_layout, decompose, rebuild_int,
                                        rebuilt_bits, supports)
from tessera.errors import CompileError, SpecError


def _conv(seed, K, C, R=3, S=3):
    rng = np.random.default_rng(seed)
    return rng.normal(0, np.sqrt(2 / (C * R * S)), (K, C, R, S))


def test_acceptance_64x64x3x3_error_and_compression():
    """smartdeal.md III-C setting (theta 4e-3, 30 iterations) on N(0, 2/fan_in) weights."""
    w = _conv(0, 64, 64)
    opts = SmartDealOptions(theta=4e-3, max_iter=30)
    layer = decompose(w, opts)
    rel_err = np.linalg.norm(w - layer.rebuilt()) / np.linalg.norm(w)
    assert rel_err <= 0.19
    for coding in ("fixed", "huffman"):
        report = compress_layer("conv", w, CompressOptions("smartdeal", opts, coding=coding)).report
        assert report.rel_err == pytest.approx(rel_err)
        assert report.compression_rate >= 6.0, (coding, report.compression_rate)


@st.composite
def _weights(draw):
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["conv3", "conv1", "fc", "conv6"]))
    K = draw(st.integers(1, 9))
    C = draw(st.integers(1, 12))
    shape = {"conv3": (K, C, 3, 3), "conv1": (K, C, 1, 1), "fc": (K, C * 5 + 1),
             "conv6": (K, C, 2, 6)}[kind]
    w = rng.normal(0, draw(st.sampled_from([1e-3, 0.05, 3.0])), shape)
    if draw(st.booleans()):
        w[rng.random(shape) < 0.3] = 0
    exp_min = draw(st.integers(-12, 2))
    opts = SmartDealOptions(theta=draw(st.sampled_from([1e-3, 4e-3, 0.05, 0.3])),
                            max_iter=draw(st.integers(0, 6)),
                            structure=draw(st.sampled_from(["element", "vector"])),
                            group_size=draw(st.integers(1, 4)), exp_min=exp_min,
                            exp_max=exp_min + draw(st.integers(0, 9)),
                            slice_rows=draw(st.sampled_from([4, 10, 192])),
                            scale_steps=draw(st.integers(1, 4)))
    return w, opts


@settings(max_examples=150, deadline=None)
@given(_weights())
def test_ce_is_powers_of_two_in_range_and_vector_rows_are_shared(case):
    w, opts = case
    layer = decompose(w, opts)
    ce = layer.ce()
    nonzero = np.abs(ce[ce != 0])
    mantissa, exponent = np.frexp(nonzero)
    assert np.all(mantissa == 0.5)                                   # exact powers of two
    assert np.all((exponent - 1 >= opts.exp_min) & (exponent - 1 <= opts.exp_max))
    assert np.abs(layer.ce_codes).max(initial=0) <= opts.n_exp
    assert np.all(np.abs(layer.b_int) <= 127)
    if opts.structure == "vector" and np.all(w != 0):
        # Rows are zeroed for a whole group at once. The only other zero rows belong to blocks
        # whose B rounded to zero at their output channel's int8 scale (the block is then zero).
        # (Exact zeros in W can zero more rows, as Ce = W B^-1 row by row: not drawn here.)
        zero_rows = ~layer.ce_codes.any(axis=-1)                     # (K, n_slices, m)
        dead_blocks = ~layer.ce_codes.any(axis=(-1, -2))[..., None]
        for start in range(0, w.shape[0], opts.group_size):
            g = slice(start, start + opts.group_size)
            assert np.all(~zero_rows[g] | zero_rows[g].all(axis=0) | dead_blocks[g])


def test_vector_mode_keeps_whole_rows():
    """Kept rows are dense (so vector Ce needs only the row index); dropped rows are shared by
    each group of output channels; padding rows (130 = 3 x 44 - 2 channels) are dropped."""
    w = _conv(7, 8, 130)
    layer = decompose(w, SmartDealOptions(structure="vector", group_size=4, theta=0.06))
    rows = layer.ce_codes.any(axis=-1)
    assert 0.2 < 1 - rows.mean() < 0.9
    assert np.all(layer.ce_codes[rows] != 0)
    assert np.array_equal(rows[:4], np.broadcast_to(rows[0], rows[:4].shape))
    assert np.array_equal(rows[4:], np.broadcast_to(rows[4], rows[4:].shape))
    assert not rows[:, -1, -6:].any()


def test_rebuild_int_is_the_shift_and_add_of_the_hardware():
    """An independent scalar implementation of sum_j sign * (B << (|code| - 1))."""
    rng = np.random.default_rng(3)
    codes = rng.integers(-8, 9, (2, 1, 5, 3)).astype(np.int8)
    b = rng.integers(-127, 128, (2, 1, 3, 3)).astype(np.int8)
    got = rebuild_int(codes, b)
    for k, r, s in itertools.product(range(2), range(5), range(3)):
        want = 0
        for j in range(3):
            c = int(codes[k, 0, r, j])
            if c:
                shifted = int(b[k, 0, j, s]) << (abs(c) - 1)
                want += shifted if c > 0 else -shifted
        assert got[k, 0, r, s] == want


def test_rebuilt_weight_width_bound_is_tight():
    for S, n_exp in [(3, 8), (3, 1), (5, 16)]:
        codes = np.full((1, 1, 1, S), n_exp, np.int8)
        b = np.full((1, 1, S, S), 127, np.int8)
        extreme = int(rebuild_int(codes, b).max())
        bits = rebuilt_bits(S, n_exp)
        assert extreme == S * 127 << (n_exp - 1)
        assert -2 ** (bits - 1) <= -extreme and extreme < 2 ** (bits - 1) <= 2 * extreme
    assert rebuilt_bits(3, 8) == 17


def test_rebuilt_equals_ce_times_scaled_b_exactly():
    w = _conv(1, 6, 20)
    layer = decompose(w)
    blocks = np.einsum("knmj,knjs->knms", layer.ce(),
                       layer.b_int * layer.b_scale()[:, None, None, None])
    assert np.array_equal(layer.layout.from_blocks(blocks), layer.rebuilt())
    # the integer form: W = W_int * 2**(exp_min - b_frac) per output channel
    assert np.array_equal(layer.layout.from_blocks(
        layer.w_int() * layer.w_scale()[:, None, None, None]), layer.rebuilt())


def test_b_uses_the_int8_range_per_output_channel():
    layer = decompose(_conv(2, 8, 16) * np.arange(1, 9)[:, None, None, None] ** 3)
    per_channel = np.abs(layer.b_int.reshape(8, -1)).max(axis=1)
    assert np.all((per_channel >= 64) & (per_channel <= 127))
    assert len(set(layer.b_frac.tolist())) > 1                       # scales follow the channels


@pytest.mark.parametrize("shape, S, slice_rows, want", [
    ((4, 64, 3, 3), 3, 192, (1, 64, 3)),      # one 192-row block per filter (reference code)
    ((4, 512, 3, 3), 3, 192, (8, 64, 3)),     # sliced at channel boundaries
    ((4, 130, 3, 3), 3, 192, (3, 44, 3)),     # even slices, the last one padded
    ((2, 2048), 3, 192, (4, 171, 1)),         # FC: 683 rows -> 4 x 171 (reference VEC_2_SHAPE)
    ((2, 512, 1, 1), 3, 192, (1, 171, 1)),    # 1x1 like FC, padded to 513 inputs
    ((2, 5, 2, 6), 3, 192, (1, 5, 4)),        # kernel width 2*S: 4 rows per channel
])
def test_reshaping_rules(shape, S, slice_rows, want):
    layout = block_layout(shape, S, slice_rows)
    assert (layout.n_slices, layout.units_per_slice, layout.unit) == want
    w = np.random.default_rng(0).normal(size=shape)
    blocks = layout.to_blocks(w)
    assert blocks.shape == layout.block_shape
    assert np.array_equal(layout.from_blocks(blocks), w)


def test_conv_filter_rows_are_kernel_rows():
    w = np.arange(2 * 4 * 3 * 3, dtype=float).reshape(2, 4, 3, 3)
    blocks = block_layout(w.shape, 3, 192).to_blocks(w)
    assert np.array_equal(blocks[1, 0, 3 * 2 + 1], w[1, 2, 1])        # row (c=2, r=1) of filter 1


def test_other_kernel_sizes_are_refused_with_one_line():
    assert not supports((8, 3, 7, 7), 3) and supports((8, 3, 7, 7), 7)
    with pytest.raises(CompileError, match=r"kernel 7x7 with S = 3"):
        decompose(np.ones((8, 3, 7, 7)))
    assert decompose(np.ones((8, 3, 7, 7)) * 0.1, SmartDealOptions(S=7)).layout.unit == 7


@pytest.mark.parametrize("w, error, phrase", [
    (np.full((4, 4, 3, 3), np.nan), SpecError, "non-finite"),
    (np.ones((4, 3, 3)), SpecError, "shape (4, 3, 3) is not supported"),
    (np.ones((0, 3)), SpecError, "is not supported"),
    (np.array([["a", "b"]]), SpecError, "dtype"),
])
def test_bad_weights(w, error, phrase):
    with pytest.raises(error, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        decompose(w)


@pytest.mark.parametrize("options, phrase", [
    (dict(theta=0.0), "theta = 0.0"), (dict(theta=-1e-3), "theta"),
    (dict(theta=float("inf")), "theta"), (dict(max_iter=-1), "max_iter"),
    (dict(exp_min=0, exp_max=-1), "exp_max"), (dict(exp_min=-20, exp_max=0), "exp_max"),
    (dict(S=1), "option S"), (dict(structure="rows"), "structure 'rows'"),
    (dict(group_size=0), "group_size"), (dict(tol=-1.0), "tol"),
])
def test_bad_options(options, phrase):
    with pytest.raises(CompileError, match=phrase):
        SmartDealOptions(**options)


def test_exponents_outside_the_range_are_clamped_and_counted():
    w = _conv(4, 8, 16)
    narrow = decompose(w, SmartDealOptions(exp_min=-1, exp_max=0, theta=1e-3))
    assert narrow.clamped > 0
    assert set(np.unique(np.abs(narrow.ce_codes))) <= {0, 1, 2}
    assert decompose(w).clamped == 0


def test_weight_scale_only_moves_b_frac():
    w = _conv(8, 4, 8)
    base = decompose(w)
    for power in (-90, 40):
        scaled = decompose(np.ldexp(w, power))
        assert np.array_equal(scaled.ce_codes, base.ce_codes)
        assert np.array_equal(scaled.b_int, base.b_int)
        assert np.array_equal(scaled.b_frac.astype(int), base.b_frac.astype(int) - power)
    with pytest.raises(CompileError, match="b_frac in -128..127"):
        decompose(w * 1e300)


def test_deterministic_and_zero_layers():
    w = _conv(5, 4, 8)
    a, b = decompose(w), decompose(w)
    assert np.array_equal(a.ce_codes, b.ce_codes) and np.array_equal(a.b_int, b.b_int)
    zero = decompose(np.zeros((3, 4, 3, 3)))
    assert not zero.ce_codes.any() and not zero.b_int.any() and not zero.rebuilt().any()


def test_iterations_stop_at_tol_or_max_iter():
    w = _conv(6, 16, 16)
    assert decompose(w, SmartDealOptions(max_iter=3)).iterations == 3
    assert decompose(w, SmartDealOptions(max_iter=0)).iterations == 0
    converged = decompose(w, SmartDealOptions(max_iter=200, scale_steps=1))
    assert converged.iterations < 200                   # the projection stopped changing
