"""`tessera reproduce` on reduced sets: the outputs' structure, the paper's exclusions, errors."""

import json

import pytest

from tessera.cli import main
from tessera.compiler import zoo
from tessera.compiler.lower import lower_shapes
from tessera.reproduce import ACCELERATORS, LCP_LAYERS, layer_stats


def _err(capsys):
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_smartdeal_on_a_reduced_set(tmp_path, capsys):
    out = tmp_path / "sd"
    assert main(["reproduce", "smartdeal", "--networks", "resnet18,efficientnet-b0", "--fast",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Fig. 8" in printed and "RANDOM" in printed and "8.8-19.2x" in printed
    data = json.loads((out / "results.json").read_text())
    assert [n["name"] for n in data["networks"]] == ["resnet18", "efficientnet-b0"]
    r18, eff = data["networks"]
    assert set(r18["accelerators"]) == set(ACCELERATORS)
    dn, sd = r18["accelerators"]["diannao"], r18["accelerators"]["smartdeal"]
    assert dn["energy_efficiency"] == dn["speedup"] == 1.0 and sd["dram_accesses"] == 1.0
    assert sd["speedup"] == dn["cycles"] / sd["cycles"]
    reasons = {e["layer"]: e["reason"] for e in r18["excluded"]}
    assert "FC layers" in reasons["fc"] and "7x7 kernel" in reasons["conv1"]
    assert r18["layers_run"] == len(lower_shapes(zoo.get("resnet18")).layers) - 2
    assert r18["sparsity_source"] == "none" and r18["sparsity"] == 0.0
    assert len(r18["compression"]["sampled_layers"]) == 2
    # the paper leaves EfficientNet-B0 out on SCNN, and its 5x5 depthwise layers everywhere
    assert eff["accelerators"]["scnn"] is None and "squeeze-and-excite" in eff["skipped"]["scnn"]
    assert any("5x5 kernel" in e["reason"] for e in eff["excluded"])
    assert data["summary"]["energy_efficiency"][0] <= data["summary"]["energy_efficiency"][1]
    layers = json.loads((out / "layers" / "resnet18.json").read_text())
    assert set(layers) == set(ACCELERATORS)
    assert all(len(r["layers"]) == r18["layers_run"] for r in layers.values())
    assert "Fig. 9" in (out / "tables.txt").read_text()
    for png in ("energy.png", "speedup.png", "dram.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_layer_stats_follow_the_relus():
    g = zoo.get("mobilenetv2")
    shapes = lower_shapes(g).layers
    stats = {s.name: st for s, st in zip(shapes, layer_stats(g, shapes, 0.2, 0.5, 0.3))}
    assert stats["features.0"].act_sparsity == 0.0           # the image
    assert stats["features.1.dw"].act_sparsity == 0.5        # after ReLU6
    assert stats["features.1.project"].out_sparsity == 0.0   # linear bottleneck
    assert stats["features.2.expand"].act_sparsity == 0.0    # reads the linear bottleneck
    assert all(st.weight_sparsity == 0.2 and st.bit_density == 0.3 for st in stats.values())


def test_lcp_against_systolic(tmp_path, capsys):
    out = tmp_path / "lcp"
    assert main(["reproduce", "lcp", "-o", str(out)]) == 0
    assert "systolic WS" in capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    assert set(data["memories"]) == {"preset", "wide"}
    for mem in data["memories"].values():
        assert [r["layer"] for r in mem["layers"]] == [label for label, _ in LCP_LAYERS]
        for r in mem["layers"]:
            best = min(r[df]["cycles"] for df in ("os", "ws", "is"))
            assert r["lcp_speedup"] == best / r["lcp"]["cycles"]
            assert 0 < r["lcp"]["utilization"] <= 1
    assert data["pipeline_overhead_cycles"]["lcp"] < data["pipeline_overhead_cycles"]["os"]
    assert (out / "latency.png").read_bytes()[:4] == b"\x89PNG"
    assert "LCP trees" in (out / "tables.txt").read_text()


def test_compare_at_equal_multipliers(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["reproduce", "compare", "--network", "vgg11-cifar", "--row-sparsity", "0.25",
                 "-o", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    res = data["results"]
    assert set(res) == {"lcp-32x32", "lcp-32x64", "smartdeal", "smartdeal-rows25"}
    assert res["lcp-32x32"]["multipliers_8bit_equivalent"] == 1024
    assert res["smartdeal"]["multipliers_8bit_equivalent"] == 1024
    assert res["lcp-32x64"]["multipliers_8bit_equivalent"] == 2048
    for k in ("lcp-32x32", "lcp-32x64"):
        assert res[k]["sram_bytes"] <= res["smartdeal"]["sram_bytes"]
        assert res[k]["macs"] == res["smartdeal"]["macs"]      # the same layers on all
        assert data["lcp_configs"][k]["dram_width"] == data["smartdeal_config"]["dram_width"]
    for name in ("compare.png", "layers.json", "tables.txt"):
        assert (out / name).exists()


@pytest.mark.parametrize("argv, phrase", [
    (["smartdeal", "--networks", "nope"], "network 'nope' is not in the zoo"),
    (["smartdeal", "--networks", "resnet18", "--sparsity", "1.5"], "--sparsity = 1.5"),
    (["smartdeal", "--networks", "resnet18", "--bit-density", "0"], "--bit-density = 0.0"),
    (["compare", "--network", "resnet18", "--row-sparsity", "-1"], "--row-sparsity = -1.0"),
])
def test_user_mistakes(argv, phrase, tmp_path, capsys):
    assert main(["reproduce", *argv, "-o", str(tmp_path)]) == 2
    line = _err(capsys)
    assert line.startswith("tessera: error:") and phrase in line, line
