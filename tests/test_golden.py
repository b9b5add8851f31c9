"""The golden integer semantics, checked against plain Python loops."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.compiler.golden import conv_accumulate, max_pool2
from tessera.compiler.requant import choose_multiplier, requantize, wrap


def _naive_conv(x, w, stride, pads):
    K, C, R, S = w.shape
    _, H, W = x.shape
    pt, pl, pb, pr = pads
    Ho, Wo = (H + pt + pb - R) // stride + 1, (W + pl + pr - S) // stride + 1
    out = np.zeros((K, Ho, Wo), dtype=object)
    for k in range(K):
        for oy in range(Ho):
            for ox in range(Wo):
                acc = 0
                for c in range(C):
                    for r in range(R):
                        for s in range(S):
                            iy, ix = oy * stride + r - pt, ox * stride + s - pl
                            if 0 <= iy < H and 0 <= ix < W:
                                acc += int(x[c, iy, ix]) * int(w[k, c, r, s])
                out[k, oy, ox] = acc
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(3, 7), st.integers(3, 7),
       st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2),
       st.integers(0, 2**31 - 1))
def test_conv_matches_loops(C, K, H, W, R, S, stride, pad, seed):
    pad = min(pad, R - 1, S - 1)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (C, H, W), dtype=np.int8)
    w = rng.integers(-128, 128, (K, C, R, S), dtype=np.int8)
    if (H + 2 * pad - R) < 0 or (W + 2 * pad - S) < 0:
        return
    ref = _naive_conv(x, w, stride, (pad,) * 4)
    got = conv_accumulate(x, w, stride, (pad,) * 4, 32)
    assert got.shape == ref.shape
    assert all(int(g) == int(r) for g, r in zip(got.ravel(), ref.ravel()))


def test_accumulator_wraps_like_hardware():
    x = np.full((64, 1, 1), -128, np.int8)
    w = np.full((1, 64, 1, 1), -128, np.int8)
    acc = conv_accumulate(x, w, 1, (0,) * 4, 20)  # 64 * 16384 = 2**20 wraps to 0
    assert int(acc[0, 0, 0]) == 0
    assert int(wrap(np.array([2**19]), 20)[0]) == -2**19


@settings(max_examples=200, deadline=None)
@given(st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1),
       st.integers(0, 2**16 - 1), st.integers(0, 47), st.booleans())
def test_requantize_matches_python_integers(acc, bias, mult, shift, relu):
    s = (acc + bias + 2**31) % 2**32 - 2**31
    p = s * mult
    r = (p + (1 << (shift - 1))) >> shift if shift else p
    want = max(0 if relu else -128, min(127, r))
    got = requantize(np.array([acc]), np.array([bias]), np.array([mult]), np.array([shift]),
                     relu)
    assert int(got[0]) == want


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-9, 6e4))
def test_choose_multiplier_is_close(scale):
    m, s = choose_multiplier(np.array([scale]))
    assert 0 < m[0] < 2**16 and 0 <= s[0] <= 47
    assert abs(m[0] / 2.0 ** s[0] - scale) <= scale * 2**-14 + 2.0 ** -s[0]


def test_max_pool_floor_mode():
    y = np.arange(2 * 5 * 5).reshape(2, 5, 5)
    p = max_pool2(y)
    assert p.shape == (2, 2, 2) and p[0, 0, 0] == 6 and p[1, 1, 1] == 25 + 18
