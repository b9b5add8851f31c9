"""Bottleneck traffic: which convs a ratio narrows, the bytes each layer moves, the tensors
crossing a chip boundary (skip connections included), the report, its plot and its CLI."""

import json

import pytest

from tessera.cli import main
from tessera.compiler import traffic, zoo
from tessera.config import PRESETS


def test_the_bottleneck_convs_are_inside_residual_branches():
    r18 = traffic.bottleneck_convs(zoo.get("resnet18"))
    assert r18 == [f"layer{s}.{b}.conv1" for s in range(1, 5) for b in range(2)]
    r50 = traffic.bottleneck_convs(zoo.get("resnet50"))
    assert len(r50) == 2 * 16 and "layer1.0.conv2" in r50 and "layer1.0.conv3" not in r50
    mb = traffic.bottleneck_convs(zoo.get("mobilenetv2"))
    assert "features.3.expand" in mb and "features.2.expand" not in mb  # 2 has no residual
    assert traffic.bottleneck_convs(zoo.get("vgg16")) == []


def test_a_ratio_narrows_only_the_bottleneck():
    g = zoo.get("resnet50")
    assert traffic.with_ratio(g, 1).params == g.params
    n = traffic.with_ratio(g, 8)
    assert n.node("layer1.0.conv1").op.out_channels == 64 // 8
    assert n.node("layer1.0.conv2").op.in_channels == 8
    assert n.node("layer1.0.conv3").op.out_channels == 256
    assert n.node("layer4.2.conv2").op.out_channels == 512 // 8
    assert traffic.with_ratio(zoo.get("resnet18"), 1024).node("layer4.1.conv1").op \
        .out_channels == 1


def test_layer_bytes_and_boundary_crossing():
    g = traffic.with_ratio(zoo.get("resnet18"), 4)
    row = next(r for r in traffic.layer_traffic(g) if r["name"] == "layer1.0.conv1")
    assert row == {"name": "layer1.0.conv1", "kind": "conv2d", "input_bytes": 64 * 56 * 56,
                   "weight_bytes": 16 * 64 * 9, "output_bytes": 16 * 56 * 56,
                   "bytes": 64 * 56 * 56 + 16 * 64 * 9 + 16 * 56 * 56}
    # Inside a block, the narrowed activation and the skip both cross.
    cross = traffic.crossing(g, "layer1.0.conv1.relu")
    assert [(c["tensor"], c["bytes"]) for c in cross] == [("maxpool", 64 * 56 * 56),
                                                         ("layer1.0.conv1.relu", 16 * 56 * 56)]
    assert [c["tensor"] for c in traffic.crossing(g, "layer1.0.relu")] == ["layer1.0.relu"]


def test_report_shrinks_with_the_ratio(tmp_path):
    rep = traffic.traffic_report(zoo.get("resnet18"), cfg=PRESETS["lcp-pynq-z1"].build())
    assert [e["ratio"] for e in rep["ratios"]] == list(traffic.RATIOS)
    assert rep["boundary"] in [f"{c}.relu" for c in rep["narrowed"]]
    for a, b in zip(rep["ratios"], rep["ratios"][1:]):
        assert b["bytes"] < a["bytes"] and b["params"] < a["params"]
        assert b["boundary"]["bytes"] < a["boundary"]["bytes"]
        assert sum(r["dram_bytes"] for r in b["layers"]) < sum(r["dram_bytes"]
                                                              for r in a["layers"])
    first, last = rep["ratios"][0], rep["ratios"][-1]
    assert first["layers"][0]["bytes"] == last["layers"][0]["bytes"]  # the stem is untouched
    traffic.plot_traffic(rep, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_traffic_cli(tmp_path, capsys):
    assert main(["traffic", "zoo:resnet18", "--ratios", "1,8", "--boundary", "layer3.1.relu",
                 "--json", str(tmp_path / "t.json"), "--plot", str(tmp_path / "t.png")]) == 0
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["boundary"] == "layer3.1.relu" and len(data["ratios"]) == 2
    assert data["ratios"][1]["boundary"]["bytes"] == 256 * 14 * 14  # a block output: no skip
    assert "layer1.0.conv1 *" in capsys.readouterr().out


@pytest.mark.parametrize("argv, phrase", [
    (["traffic", "zoo:resnet18", "--ratios", "1,x"], "--ratios '1,x' is invalid"),
    (["traffic", "zoo:resnet18", "--ratios", "0"], "--ratios '0' is invalid"),
    (["traffic", "zoo:resnet18", "--boundary", "nope"], "boundary node 'nope'"),
])
def test_traffic_mistakes_give_one_line(argv, phrase, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0], err
