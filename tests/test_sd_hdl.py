# amaranth: UnusedElaboratable=no
"""SmartDeal blocks in amaranth.sim: the Booth MAC and the rebuild engines."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from tessera.compiler.sd.isa import encode_code
from tessera.compiler.smartdeal import rebuild_int
from tessera.config import PRESETS
from tessera.hdl.sd.line import RebuildEngines
from tessera.hdl.sd.mac import BoothMac
from tessera.sim.smartdeal import booth_nnz


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_booth_digit_counts_reconstruct_every_int8():
    x = np.arange(-128, 128)
    bits = [np.zeros_like(x)] + [(x & 0xFF) >> i & 1 for i in range(8)]
    digits = [bits[2 * k] + bits[2 * k + 1] - 2 * bits[2 * k + 2] for k in range(4)]
    assert np.array_equal(sum(d * 4 ** k for k, d in enumerate(digits)), x)
    assert np.array_equal(booth_nnz(x.astype(np.int8)), sum((d != 0) for d in digits))
    assert booth_nnz(np.array([0], np.int8))[0] == 0 and booth_nnz(np.array([127], np.int8))[0] == 2


def test_booth_mac_costs_one_cycle_per_nonzero_digit_and_is_exact():
    mac = BoothMac(17, 32)
    rng = np.random.default_rng(1)
    xs = np.concatenate([np.arange(-128, 128), rng.integers(-128, 128, 20)])   # every int8
    ws = np.concatenate([[-2 ** 16, 2 ** 16 - 1, 0, -1], rng.integers(-2 ** 16, 2 ** 16,
                                                                      xs.size - 4)])

    async def bench(ctx):
        ctx.set(mac.clear, 1)
        await ctx.tick()
        ctx.set(mac.clear, 0)
        total = 0
        for x, w in zip(xs, ws):
            ctx.set(mac.x, int(x))
            ctx.set(mac.w, int(w))
            ctx.set(mac.start, 1)
            ctx.set(mac.run, 1)
            cycles = 0
            while True:
                more = ctx.get(mac.more)
                await ctx.tick()
                cycles += 1
                ctx.set(mac.start, 0)
                if not more:
                    break
            assert cycles == max(1, int(booth_nnz(np.array([x], np.int8))[0])), x
            total += int(x) * int(w)
            assert ctx.get(mac.acc) == (total + 2 ** 31) % 2 ** 32 - 2 ** 31

    _run(mac, bench)


@pytest.mark.parametrize("preset", ["smartdeal-tiny", "smartdeal-paper"])
def test_rebuild_engines_compute_the_compiler_integers(preset):
    cfg = PRESETS[preset].build()
    re = RebuildEngines(cfg)
    S = cfg.S
    rng = np.random.default_rng(2)
    bases = rng.integers(-127, 128, (2, S, S))
    mag = rng.integers(1, cfg.n_exp + 1, (6, S))
    codes = np.where(rng.random((6, S)) < .5, -mag, mag)

    async def bench(ctx):
        for which in (0, 1):
            ctx.set(re.b_we, 1)
            ctx.set(re.b_which, which)
            ctx.set(re.b_data, [int(v) for v in bases[which].ravel()])
            await ctx.tick()
        ctx.set(re.b_we, 0)
        for sel in (0, 1):
            ctx.set(re.sel, sel)
            for row in codes:
                ctx.set(re.codes, [int(v) for v in encode_code(row)])
                want = rebuild_int(row[None], bases[sel])[0]
                assert list(ctx.get(re.w)) == want.tolist()
        ctx.set(re.raw_mode, 1)
        ctx.set(re.raw, [-5, 7, 127][:S] + [0] * (S - 3))
        assert list(ctx.get(re.w))[:3] == [-5, 7, 127]

    sim = Simulator(re)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
