"""Tiled Bit Networks: the reshape-sum-sign tile, alphas, storage and the repeating rebuild."""

import numpy as np
import pytest

from tessera.compiler.compression import CompressOptions, compress_layer
from tessera.compiler.tbn import TbnOptions, tile_layer
from tessera.errors import CompileError


def test_tile_is_the_sign_of_the_summed_segments():
    w = np.array([[1.0, -2.0, 3.0, -4.0],
                  [-3.0, 1.0, -1.0, 5.0],
                  [0.5, 0.5, -2.5, -0.5]])              # N = 12, p = 3 -> q = 4, segments = rows
    layer = tile_layer(w, TbnOptions(p=3, min_size=0))
    # sums: [-1.5, -0.5, -0.5, 0.5] -> tile [-1, -1, -1, +1]
    assert layer.q == 4 and layer.tile().tolist() == [-1, -1, -1, 1]
    assert layer.alphas.tolist() == [np.float32(np.abs(w).mean())]
    assert np.allclose(layer.rebuilt(), np.float32(np.abs(w).mean()) * np.tile([-1, -1, -1, 1], 3)
                       .reshape(3, 4))


def test_zero_sum_gives_minus_one():
    layer = tile_layer(np.array([[1.0, 0.0], [-1.0, 0.0]]), TbnOptions(p=2, min_size=0))
    assert layer.tile().tolist() == [-1, -1]


def test_per_tile_alphas_and_rebuild_repeats_the_tile():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 8, 3, 3))
    layer = tile_layer(w, TbnOptions(p=8, alpha="tile", min_size=0))
    segments = w.reshape(8, -1)
    assert np.allclose(layer.alphas, np.abs(segments).mean(axis=1))
    flat = layer.rebuilt().ravel()
    tile = layer.tile()
    for i in range(8):
        assert np.array_equal(flat[i * layer.q:(i + 1) * layer.q],
                              np.float64(layer.alphas[i]) * tile)


def test_p_not_dividing_n_pads_the_last_segment():
    w = np.arange(1, 11, dtype=float).reshape(2, 5) * np.array([1, -1] * 5).reshape(2, 5)
    layer = tile_layer(w, TbnOptions(p=4, alpha="tile", min_size=0))   # q = 3, 12 > 10
    assert layer.q == 3 and layer.rebuilt().shape == (2, 5)
    flat = w.ravel()
    assert layer.alphas[3] == pytest.approx(np.abs(flat[9:]).mean())   # 1 real weight
    assert np.array_equal(layer.rebuilt().ravel()[9:], [layer.alphas[3] * layer.tile()[0]])
    # an empty last segment (N = 9, p = 4, q = 3) has alpha 0 and no weights
    empty = tile_layer(np.ones((3, 3)), TbnOptions(p=4, alpha="tile", min_size=0))
    assert empty.alphas[3] == 0 and np.all(empty.rebuilt() == 1)


def test_storage_is_the_tile_and_the_alphas_only():
    w = np.random.default_rng(1).normal(size=(64, 32, 3, 3))          # 18432 weights
    result = compress_layer("conv", w, CompressOptions("tbn", tbn=TbnOptions(p=4, min_size=1000)))
    assert set(result.arrays) == {"tile", "alphas"}
    assert result.arrays["tile"].size == 18432 // 4 // 8
    assert result.report.bits == 18432 // 4 + 32
    assert result.report.compression_rate == pytest.approx(32 * 18432 / (18432 / 4 + 32))


def test_small_layers_are_not_tiled():
    w = np.random.default_rng(2).normal(size=(8, 8))
    assert not TbnOptions().tiles(w.shape)
    with pytest.raises(CompileError, match="at least 64000"):
        tile_layer(w)
    assert compress_layer("fc", w, CompressOptions("tbn")).report.method == "int8"


@pytest.mark.parametrize("options, phrase", [
    (dict(p=0), "p = 0"), (dict(alpha="channel"), "alpha = 'channel'"),
    (dict(min_size=-1), "min_size"),
])
def test_bad_options(options, phrase):
    with pytest.raises(CompileError, match=phrase):
        TbnOptions(**options)
