"""int8 quantization (with calibration and requantization) and magnitude pruning."""

import numpy as np
import pytest

from tessera.compiler.compression import CompressOptions, PruneOptions, compress_layer
from tessera.compiler.prune import filter_rows, prune
from tessera.compiler.quantize import (calibrate_scale, check_weight, quantize_activation,
                                       quantize_weight, requant_params)
from tessera.compiler.requant import requantize
from tessera.compiler.smartdeal import SmartDealOptions
from tessera.errors import CompileError, SpecError


def test_weights_are_symmetric_per_output_channel():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 4, 3, 3)) * np.arange(1, 7)[:, None, None, None]
    q = quantize_weight(w)
    assert q.w_int.dtype == np.int8 and q.scale.dtype == np.float32
    assert np.all(np.abs(q.w_int.reshape(6, -1)).max(axis=1) == 127)
    assert np.all(np.abs(q.dequantize() - w) <= q.scale[:, None, None, None] / 2 * 1.0001)
    zero = quantize_weight(np.zeros((2, 3)))
    assert not zero.w_int.any() and not zero.dequantize().any()


def test_int8_fc_layer_matches_float_within_one_output_step():
    """Calibrated per-tensor activations, per-channel weights, requantized by requant.py."""
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.1, (16, 64))
    bias = rng.normal(0, 0.1, 16)
    x = rng.normal(0, 1, (200, 64))
    y = np.maximum(x @ w.T + bias, 0)
    in_scale = calibrate_scale([x[:100]])                  # calibrate on part of the inputs
    out_scale = calibrate_scale([y[:100]])
    q = quantize_weight(w)
    params = requant_params(q.scale, in_scale, out_scale, bias)
    x_int = quantize_activation(x[100:], in_scale)
    acc = x_int.astype(np.int64) @ q.w_int.T.astype(np.int64)
    y_int = requantize(acc, params.bias, params.mult, params.shift, relu=True)
    error = np.abs(y_int * out_scale - y[100:]) / out_scale
    assert np.percentile(error, 99) <= 1.5 and error.mean() < 0.35     # rare clipping aside
    assert y_int.min() >= 0


def test_calibration_percentile_and_errors():
    samples = [np.concatenate([np.linspace(-1, 1, 999), [50.0]])]
    assert calibrate_scale(samples) == pytest.approx(50 / 127)
    assert calibrate_scale(samples, percentile=99.0) < 1.1 / 127
    with pytest.raises(CompileError, match="percentile"):
        calibrate_scale(samples, percentile=0)
    with pytest.raises(SpecError, match="no calibration samples"):
        calibrate_scale([])
    with pytest.raises(SpecError, match="non-finite"):
        calibrate_scale([np.array([1.0, np.inf])])
    assert quantize_activation([1000.0, -1000.0, 0.4], 1.0).tolist() == [127, -128, 0]


def test_requant_bias_must_fit_int32():
    with pytest.raises(CompileError, match="int32"):
        requant_params(np.array([1e-6]), 1e-6, 1.0, bias=np.array([1e6]))


def test_element_pruning_removes_the_smallest_magnitudes():
    w = np.array([[0.5, -0.1, 0.3], [-0.2, 0.05, 0.4]])
    r = prune(w, 0.5)
    assert r.mask.tolist() == [[True, False, True], [False, False, True]]
    assert np.array_equal(r.weight, np.where(r.mask, w, 0))
    ties = prune(np.ones((2, 2)), 0.5)                     # ties: the lower indexes go first
    assert ties.mask.tolist() == [[False, False], [True, True]]


def test_vector_pruning_drops_rows_of_s_shared_by_groups():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(6, 5, 3, 3))
    r = prune(w, 0.4, structure="vector", S=3, group_size=3)
    rows = filter_rows(r.mask.astype(float), 3).any(axis=2)            # (K, C*R)
    assert np.array_equal(rows[0], rows[1]) and np.array_equal(rows[0], rows[2])
    assert np.array_equal(rows[3], rows[5])
    assert (~rows[::3]).sum() == int(0.4 * 2 * 15)
    # a dropped vector is a whole kernel row (c, r) of every filter of the group
    assert np.all(r.mask.all(axis=3) | ~r.mask.any(axis=3))


def test_vector_pruning_of_fc_rows_with_padding():
    w = np.random.default_rng(3).normal(size=(5, 7))                    # 7 = 2*3 + 1
    r = prune(w, 0.5, structure="vector", S=3, group_size=2)
    assert r.mask.shape == w.shape
    assert np.array_equal(r.mask[0], r.mask[1]) and np.array_equal(r.mask[2], r.mask[3])


@pytest.mark.parametrize("kwargs, phrase", [
    (dict(fraction=1.0), "fraction"), (dict(fraction=-0.1), "fraction"),
    (dict(fraction=0.5, structure="block"), "structure 'block'"),
    (dict(fraction=0.5, group_size=0), "group_size"),
])
def test_bad_prune_options(kwargs, phrase):
    with pytest.raises(CompileError, match=phrase):
        prune(np.ones((2, 3)), **kwargs)


def test_pruning_before_smartdeal_keeps_the_pruned_rows_zero():
    rng = np.random.default_rng(4)
    w = rng.normal(0, 0.05, (8, 16, 3, 3))
    options = CompressOptions(
        "smartdeal", SmartDealOptions(structure="vector", group_size=4, theta=1e-3),
        prune=PruneOptions(0.5, structure="vector", group_size=4))
    layer = compress_layer("conv", w, options)
    pruned = prune(w, 0.5, structure="vector", group_size=4)
    assert np.all(layer.rebuilt[~pruned.mask] == 0)
    assert layer.report.w_sparsity >= 0.5
    assert layer.report.details["ce_sparsity"] >= 0.5
    assert layer.header["ce"]["n_elem_bits"] == 0                       # row index only


def test_pruning_alone_stores_an_index_and_the_kept_values():
    w = np.random.default_rng(5).normal(size=(4, 10))
    layer = compress_layer("fc", w, CompressOptions("prune", prune=PruneOptions(0.3)))
    assert layer.report.bits == 40 + 32 * 28
    assert np.array_equal(layer.rebuilt, np.where(prune(w, 0.3).mask, w.astype(np.float32), 0))


def test_check_weight_rejects_bad_layers():
    with pytest.raises(SpecError, match="non-finite"):
        check_weight("fc", np.array([[1.0, np.nan]]))
    with pytest.raises(SpecError, match=r"shape \(3,\)"):
        check_weight("bias", np.ones(3))
