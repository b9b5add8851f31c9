"""The central promise on the SmartDeal accelerator: RTL == golden model bit for bit and RTL
cycles == simulator cycles exactly, with random SmartDeal weights (with and without vector
sparsity), int8 layers, zero activations and random DRAM latencies."""

import shutil

import numpy as np
import pytest

from tessera.commands._common import layer_shapes
from tessera.config import PRESETS
from tessera.crosscheck import compare, random_program

pytestmark = [pytest.mark.rtl,
              pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")]

SUITE = [  # (name, layers, Ce row sparsity, zero activations)
    ("conv3x3", ["conv:C=7,K=5,H=6,W=9,pad=1,relu"], 0.0, 0.0),
    ("conv3x3-sparse", ["conv:C=7,K=5,H=6,W=9,pad=1,relu"], 0.5, 0.0),
    ("conv1x1", ["conv:C=14,K=6,H=3,W=5,R=1"], 0.3, 0.0),
    ("fc", ["fc:K=25,N=7,relu"], 0.3, 0.0),
    # two MAC clusters: an FC chain (the second reads what the clusters wrote, across planes)
    # and a 1x1 layer on two columns (tiles of several rows)
    ("fc-chain", ["fc:K=25,N=14,relu", "fc:K=14,N=9"], 0.2, 0.1),
    ("pointwise-narrow", ["conv:C=14,K=10,H=3,W=2,R=1,relu"], 0.3, 0.0),
    # an FC layer whose group overflows the buffer banks: chunks, the MACs holding their sums
    ("fc-chunks", ["fc:K=400,N=6,relu", "fc:K=6,N=5"], 0.3, 0.1),
    # a conv whose input rows overflow an input-buffer bank: chunks of planes, tile by tile
    ("conv-chunks", ["conv:C=96,K=6,H=3,W=6,pad=1,relu"], 0.2, 0.0),
    ("depthwise", ["conv:C=8,K=8,H=6,W=7,pad=1,groups=8,relu"], 0.0, 0.3),
    ("stride2", ["conv:C=5,K=4,H=7,W=7,stride=2,pad=1"], 0.0, 0.0),
    # decomposed and int8 layers mixed (the 2x2 kernel cannot be decomposed with S=3)
    ("mixed", ["conv:C=3,K=6,H=7,W=8,pad=1,relu", "conv:C=6,K=6,H=7,W=8,R=2,S=2,relu",
               "conv:C=6,K=5,H=6,W=7,R=1"], 0.3, 0.2),
]


@pytest.mark.parametrize("preset", ["smartdeal-tiny", "smartdeal-small"])
def test_suite_agrees_with_random_latencies(preset, tmp_path):
    cfg = PRESETS[preset].build()
    rng = np.random.default_rng(len(preset))
    programs = []
    for i, (name, items, sparsity, zeros) in enumerate(SUITE):
        prog = random_program(cfg, layer_shapes(items), i, row_sparsity=sparsity,
                              zero_fraction=zeros)
        programs.append((name, prog, int(rng.integers(1, 40))))
    results = compare(cfg, programs, tmp_path)
    bad = [r for r in results if not (r["cycles_equal"] and r["outputs_match"]
                                      and r["dram_traffic_equal"])]
    assert not bad, bad


def test_crosscheck_command_on_conv_fc_and_depthwise(tmp_path, capsys):
    """`tessera crosscheck --arch smartdeal`: random SmartDeal conv, FC and depthwise layers
    (each its own program) agree in values and cycles on the board preset (dim_f = 2)."""
    import json

    from tessera.cli import main

    for i, spec in enumerate(["conv:C=12,K=8,H=5,W=6,pad=1,relu", "fc:K=30,N=8",
                              "conv:C=12,K=12,H=5,W=6,pad=1,groups=12,relu"]):
        assert main(["crosscheck", "--arch", "smartdeal", "--preset", "smartdeal-pynq-z1",
                     "--layer", spec, "--ce-row-sparsity", "0.5", "--seed", str(i),
                     "--workdir", str(tmp_path)]) == 0, spec
        r = json.loads(capsys.readouterr().out)
        assert r["outputs_match"] and r["cycles_equal"] and r["dram_traffic_equal"], (spec, r)
        assert r["rtl_cycles"] == r["sim_cycles"] > 0


def test_int8_fc_and_single_cluster_hardware(tmp_path):
    """An int8 FC layer runs unclustered (one MAC per line) next to a clustered one; a
    configuration built without clusters (fc_clusters=1: one shift-and-add per line) runs
    FC and 1x1 layers the same way."""
    from tessera.compiler.sd.compile import compile_network, random_layer

    cfg = PRESETS["smartdeal-tiny"].build()
    rng = np.random.default_rng(9)
    shapes = layer_shapes(["fc:K=20,N=10,relu", "fc:K=10,N=6"])
    layers = [random_layer(shapes[0], cfg, rng, decomposed=False),
              random_layer(shapes[1], cfg, rng, row_sparsity=0.3)]
    x = rng.integers(-128, 128, shapes[0].input_shape, dtype=np.int8)
    prog = compile_network(cfg, layers, x)
    assert [L["mode"] for L in prog.manifest["layers"]] == ["pointwise", "cluster"]
    one = cfg.replace(fc_clusters=1)
    prog1 = random_program(one, layer_shapes(["fc:K=25,N=7,relu", "fc:K=7,N=6"]),
                           3, row_sparsity=0.3)
    assert [L["mode"] for L in prog1.manifest["layers"]] == ["pointwise", "pointwise"]
    for c, p in ((cfg, prog), (one, prog1)):
        (r,) = compare(c, [("fc", p, 7)], tmp_path / str(c.fc_clusters))
        assert r["cycles_equal"] and r["outputs_match"] and r["dram_traffic_equal"], r


def test_chunks_tile_by_tile_with_the_band_resident(tmp_path):
    """A conv whose group's passes overflow a weight-buffer bank while its band fits the input
    buffer: the band loads once and every tile runs its chunks from it, the MACs holding their
    sums between chunks (stride 1 and stride 2)."""
    cfg = PRESETS["smartdeal-tiny"].build().replace(gb_depth=256)
    programs = []
    for i, spec in enumerate(["conv:C=24,K=4,H=3,W=6,pad=1,relu",
                              "conv:C=24,K=5,H=4,W=9,stride=2,pad=1"]):
        prog = random_program(cfg, layer_shapes([spec]), i, row_sparsity=0.1)
        chunks = prog.manifest["layers"][0]["chunks"]
        assert max(map(len, chunks)) > 1 and all(c["plane0"] == 0 for g in chunks for c in g)
        programs.append((spec, prog, 3 + 11 * i))
    results = compare(cfg, programs, tmp_path)
    assert all(r["cycles_equal"] and r["outputs_match"] and r["dram_traffic_equal"]
               for r in results), results
