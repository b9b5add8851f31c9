# amaranth: UnusedElaboratable=no
"""LCP blocks in amaranth.sim: adder tree, cell, array, post-processing unit; signatures."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from tessera.compiler.requant import requantize
from tessera.config import LcpConfig
from tessera.hdl.lcp.array import AdderTree, Cell, LcpArray
from tessera.hdl.lcp.ppu import PostProcessor


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_adder_tree_sums_with_log_latency(n):
    tree = AdderTree(n, 16)
    rng = np.random.default_rng(n)
    vectors = rng.integers(-2**15, 2**15, (6, n))
    assert tree.latency == int(np.ceil(np.log2(n)))

    async def bench(ctx):
        seen = []
        for v in [*vectors, *[np.zeros(n, int)] * tree.latency]:
            ctx.set(tree.terms, [int(a) for a in v])
            await ctx.tick()
            seen.append(ctx.get(tree.sum))
        assert seen[tree.latency - 1:tree.latency - 1 + len(vectors)] == \
            [int(v.sum()) for v in vectors]

    _run(tree, bench)


def test_cell_double_buffers_its_weight():
    cell = Cell()

    async def bench(ctx):
        ctx.set(cell.x, 3)
        ctx.set(cell.sel, 0)
        ctx.set(cell.w_in, -7)
        ctx.set(cell.load, 1)           # sel=0: loads the inactive bank 1
        await ctx.tick()
        ctx.set(cell.load, 0)
        assert ctx.get(cell.w_out) == -7
        await ctx.tick()
        assert ctx.get(cell.product) == 0  # active bank 0 is still zero
        ctx.set(cell.sel, 1)
        await ctx.tick()
        assert ctx.get(cell.product) == -21

    _run(cell, bench)


def test_array_loads_through_first_row_and_reduces_columns():
    cfg = LcpConfig(rows=4, cols=4)
    arr = LcpArray(cfg)
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (4, 4))
    xs = rng.integers(-128, 128, (5, 4))

    async def bench(ctx):
        for r in reversed(range(4)):      # the last row's weights go in first
            ctx.set(arr.w_row, [int(v) for v in w[r]])
            ctx.set(arr.w_load, 1)
            await ctx.tick()
        ctx.set(arr.w_load, 0)
        ctx.set(arr.swap, 1)
        await ctx.tick()
        ctx.set(arr.swap, 0)
        out = []
        for x in [*xs, *[np.zeros(4, int)] * arr.latency]:
            ctx.set(arr.x, [int(v) for v in x])
            await ctx.tick()
            out.append(list(ctx.get(arr.sums)))
        assert out[arr.latency - 1:arr.latency - 1 + len(xs)] == (xs @ w).tolist()

    _run(arr, bench)


def test_post_processor_matches_golden_requantization():
    lanes = 4
    ppu = PostProcessor(lanes, 32)
    rng = np.random.default_rng(5)
    n = 12
    acc = rng.integers(-2**31, 2**31, (n, lanes))
    bias = rng.integers(-2**31, 2**31, lanes)
    mult = rng.integers(0, 2**16, lanes)
    shift = rng.integers(0, 48, lanes)
    want_relu = requantize(acc, bias, mult, shift, relu=True)
    want = requantize(acc, bias, mult, shift, relu=False)

    async def bench(ctx):
        ctx.set(ppu.params, [{"bias": int(b), "mult": int(m), "shift": int(s), "pad": 0}
                             for b, m, s in zip(bias, mult, shift)])
        for relu, expect in ((0, want), (1, want_relu)):
            ctx.set(ppu.en, 1)
            ctx.set(ppu.relu, relu)
            got = []
            for i in range(n + PostProcessor.LATENCY):
                ctx.set(ppu.valid, i < n)
                ctx.set(ppu.first, 1)
                ctx.set(ppu.last, 1)
                ctx.set(ppu.acc, [int(v) for v in acc[i]] if i < n else [0] * lanes)
                await ctx.tick()
                if ctx.get(ppu.out_valid):
                    got.append(list(ctx.get(ppu.out)))
            assert got == expect.tolist()

    _run(ppu, bench)


def test_post_processor_pools_over_a_window():
    ppu = PostProcessor(2, 32)
    acc = np.array([[5, -9], [7, -3], [1, -20], [6, -4]])

    async def bench(ctx):
        ctx.set(ppu.params, [{"bias": 0, "mult": 1, "shift": 0, "pad": 0}] * 2)
        ctx.set(ppu.en, 1)
        for i in range(4 + PostProcessor.LATENCY):
            ctx.set(ppu.valid, i < 4)
            ctx.set(ppu.first, i == 0)
            ctx.set(ppu.last, i == 3)
            ctx.set(ppu.acc, [int(v) for v in acc[i]] if i < 4 else [0, 0])
            await ctx.tick()
            if ctx.get(ppu.out_valid):
                assert list(ctx.get(ppu.out)) == [7, -3]
                return
        raise AssertionError("no pooled output")

    _run(ppu, bench)


def test_signatures_are_validated_and_parameter_built():
    with pytest.raises(TypeError, match="positive integer"):
        AdderTree(0, 16)
    with pytest.raises(TypeError, match="lanes"):
        PostProcessor(0, 32)
    arr = LcpArray(LcpConfig(rows=8, cols=16))
    assert arr.latency == 4 and arr.sum_bits == 19
    ports = {p["name"] if isinstance(p, dict) else p for p in arr.signature.members}
    assert {"x", "w_row", "w_load", "swap", "sums"} <= ports
