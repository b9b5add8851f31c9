"""Ce bit streams: lossless on arbitrary codes, documented bit order, honest bit counts."""

import heapq

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.compiler.ce_codec import (CeStreams, canonical_codes, decode_ce, encode_ce,
                                       huffman_lengths, row_mask)
from tessera.compiler.compression import CompressOptions, compress_layer
from tessera.compiler.smartdeal import SmartDealOptions
from tessera.errors import CompileError, ProgramError


@st.composite
def _codes(draw):
    """Random codes with element zeros, whole zero rows shared by groups, and skewed exponents."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    shape = tuple(draw(st.integers(1, n)) for n in (7, 3, 9, 4))
    n_exp = draw(st.integers(1, 16))
    skew = draw(st.floats(0.0, 3.0))
    weights = np.exp(-skew * np.arange(n_exp))
    codes = rng.choice(np.arange(1, n_exp + 1), size=shape, p=weights / weights.sum())
    codes = codes * rng.choice([-1, 1], size=shape)
    codes[rng.random(shape) < draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))] = 0
    group = draw(st.sampled_from([None, 1, 2, 3]))
    if group is not None:
        drop = rng.random((-(-shape[0] // group), *shape[1:3])) < draw(st.floats(0, 1))
        codes[np.repeat(drop, group, axis=0)[:shape[0]]] = 0
    return codes.astype(np.int8), n_exp, group


@settings(max_examples=1500, deadline=None)
@given(_codes())
def test_encode_decode_is_the_identity(case):
    codes, n_exp, group = case
    for coding in ("fixed", "huffman"):
        streams = encode_ce(codes, n_exp, coding, group)
        decoded = decode_ce(streams)
        assert decoded.dtype == np.int8 and np.array_equal(decoded, codes)
        # the same through the header + byte arrays that a file stores
        again = CeStreams.from_header(streams.header(), streams.row_index, streams.elem_index,
                                      streams.codes)
        assert np.array_equal(decode_ce(again), codes)


def _huffman_cost(counts):
    """Optimal prefix-code length by the merge-cost identity (sum of merged weights)."""
    heap = [int(c) for c in counts if c]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        cost += merged
        heapq.heappush(heap, merged)
    return cost


@settings(max_examples=300, deadline=None)
@given(_codes())
def test_bit_counts_match_an_independent_count(case):
    codes, n_exp, group = case
    nonzero = codes != 0
    if group is None:
        row_bits, candidates = 0, np.ones(codes.shape, bool)
    else:
        kept = np.zeros((-(-codes.shape[0] // group), *codes.shape[1:3]), bool)
        for k in range(codes.shape[0]):
            kept[k // group] |= nonzero[k].any(axis=-1)
        row_bits = kept.size
        candidates = np.repeat(kept, group, axis=0)[:codes.shape[0], ..., None] & np.ones(
            codes.shape, bool)
    elem_bits = 0 if nonzero[candidates].all() else int(candidates.sum())
    exp_field = int(np.ceil(np.log2(n_exp))) if n_exp > 1 else 0
    fixed = encode_ce(codes, n_exp, "fixed", group)
    assert (fixed.n_row_bits, fixed.n_elem_bits) == (row_bits, elem_bits)
    assert fixed.total_bits == row_bits + elem_bits + nonzero.sum() * (1 + exp_field)
    assert fixed.codes.size == -(-fixed.n_code_bits // 8)
    huff = encode_ce(codes, n_exp, "huffman", group)
    symbols = 2 * (np.abs(codes[nonzero]).astype(int) - 1) + (codes[nonzero] < 0)
    table = 2 * n_exp * max(1, (2 * n_exp - 1).bit_length())
    assert huff.n_code_bits == _huffman_cost(np.bincount(symbols, minlength=2 * n_exp))
    assert huff.total_bits == row_bits + elem_bits + huff.n_code_bits + table


def test_fixed_layout_is_msb_first_in_packbits_order():
    codes = np.array([+1, 0, -3, +8], np.int8).reshape(1, 1, 1, 4)
    s = encode_ce(codes, 8, "fixed")
    assert (s.n_elem_bits, s.elem_index.tolist()) == (4, [0b10110000])
    # +1: sign 0, offset 000; -3: sign 1, offset 010; +8: sign 0, offset 111
    assert (s.n_code_bits, s.codes.tolist()) == (12, [0b00001010, 0b01110000])
    assert s.row_index.size == 0


def test_row_index_is_one_bit_per_group_row():
    codes = np.zeros((3, 1, 2, 3), np.int8)
    codes[0, 0, 0] = [1, 2, 3]
    codes[2, 0, 1, 0] = -1
    assert row_mask(codes, 2).tolist() == [[[True, False]], [[False, True]]]
    s = encode_ce(codes, 4, "fixed", group_size=2)
    assert (s.n_row_bits, s.row_index.tolist()) == (4, [0b10010000])
    # kept group rows: (0, row 0) for filters 0 and 1, (1, row 1) for filter 2: 9 elements
    assert (s.n_elem_bits, s.elem_index.tolist()) == (9, [0b11100010, 0b00000000])


def test_huffman_code_is_canonical_and_optimal():
    counts = np.array([40, 0, 30, 20, 5, 5])
    lengths = huffman_lengths(counts)
    assert lengths.tolist() == [1, 0, 2, 3, 4, 4]
    assert canonical_codes(lengths).tolist() == [0b0, 0, 0b10, 0b110, 0b1110, 0b1111]
    assert (counts * lengths).sum() == _huffman_cost(counts)
    assert huffman_lengths(np.array([0, 7, 0])).tolist() == [0, 1, 0]


def test_huffman_beats_fixed_on_skewed_exponents():
    rng = np.random.default_rng(0)
    codes = rng.choice([1, 2, 3, 8], size=(8, 1, 64, 3), p=[0.05, 0.15, 0.7, 0.1])
    codes = (codes * rng.choice([-1, 1], size=codes.shape)).astype(np.int8)
    assert encode_ce(codes, 8, "huffman").total_bits < 0.8 * encode_ce(codes, 8, "fixed").total_bits


def test_all_zero_ce():
    codes = np.zeros((2, 1, 3, 3), np.int8)
    for coding in ("fixed", "huffman"):
        for group in (None, 2):
            s = encode_ce(codes, 8, coding, group)
            assert s.n_code_bits == 0 and np.array_equal(decode_ce(s), codes)


def test_encoder_refuses_bad_input():
    with pytest.raises(CompileError, match="out of range"):
        encode_ce(np.full((1, 1, 1, 3), 9, np.int8), 8)
    with pytest.raises(CompileError, match="coding 'zip'"):
        encode_ce(np.zeros((1, 1, 1, 3), np.int8), 8, "zip")
    with pytest.raises(CompileError, match="4-D integer"):
        encode_ce(np.zeros((3, 3)), 8)


@pytest.mark.parametrize("coding", ["fixed", "huffman"])
def test_corrupt_streams_are_reported(coding):
    rng = np.random.default_rng(1)
    codes = rng.integers(-8, 9, (4, 1, 16, 3)).astype(np.int8)
    s = encode_ce(codes, 8, coding)
    header = s.header()
    truncated = CeStreams.from_header(header, s.row_index, s.elem_index, s.codes[:-1])
    with pytest.raises(ProgramError, match="bytes"):
        decode_ce(truncated)
    wrong = dict(header, n_code_bits=header["n_code_bits"] - 3)
    with pytest.raises(ProgramError):
        decode_ce(CeStreams.from_header(wrong, s.row_index, s.elem_index,
                                        s.codes[:-(-wrong["n_code_bits"] // 8) or None]))
    with pytest.raises(ProgramError, match="malformed"):
        CeStreams.from_header({"shape": [1]}, s.row_index, s.elem_index, s.codes)


def test_layer_bits_are_the_stored_bits():
    """A SmartDeal layer's reported bits = its Ce streams + B (int8) + one b_frac byte per channel,
    and the compression rate is 32 * weights / bits."""
    w = np.random.default_rng(2).normal(0, 0.05, (16, 8, 3, 3))
    for coding in ("fixed", "huffman"):
        layer = compress_layer("c", w, CompressOptions("smartdeal", SmartDealOptions(),
                                                       coding=coding))
        ce = layer.header["ce"]
        table = len(ce["huffman_lengths"]) * 4
        counted = (ce["n_row_bits"] + ce["n_elem_bits"] + ce["n_code_bits"] + table
                   + 8 * layer.arrays["b"].size + 8 * layer.arrays["b_frac"].size)
        assert layer.report.bits == counted
        assert layer.report.compression_rate == 32 * w.size / counted
        for name in ("ce_row_index", "ce_elem_index", "ce_codes"):
            assert layer.arrays[name].dtype == np.uint8
