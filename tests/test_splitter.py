"""The LCP splitter: Procedure 1 reproduces the paper's split models, fattening widens them,
communication is counted against model parallelism, and the multi-device latency adds up."""

import json

import pytest

from tessera.cli import main
from tessera.compiler import splitter, zoo
from tessera.compiler.graph import Conv2d, Gemm, GraphBuilder, Relu
from tessera.compiler.runtime import HostModel, simulate_graph
from tessera.config import PRESETS
from tessera.errors import SpecError

PYNQ = PRESETS["lcp-pynq-z1"].build()


@pytest.mark.parametrize("n", [2, 4, 8])
def test_split_lenet_is_the_zoos_split_model(n):
    """LCP Table II: LeNet-split2/4/8 (the zoo reproduces the paper's parameter counts)."""
    split = splitter.split_model(zoo.get("lenet"), n)
    ref = zoo.get(f"lenet-split{n}")
    assert (split.model.params, split.model.macs) == (ref.params, ref.macs)
    assert [x.name for x in split.model.nodes] == [x.name for x in ref.nodes]


@pytest.mark.parametrize("n, params", [(2, 6.11e6), (4, 3.32e6), (8, 1.93e6)])
def test_split_resnet18_matches_lcp_table_ii(n, params):
    """Within 1%: the paper counts batch norm's two parameters per channel, we fold them."""
    assert splitter.split_model(zoo.get("resnet18"), n).model.params == \
        pytest.approx(params, rel=0.01)


def test_procedure_1_divides_until_a_branch_fits():
    split, search = splitter.lcp_split(zoo.get("lenet"), devices=8)
    assert [s["branches"] for s in search["trace"]] == [1, 2, 4]
    assert not (search["trace"][1]["fits_memory"] and search["trace"][1]["fits_macs"])
    assert search["fits"] and split.branches == 4
    whole = splitter.footprint(zoo.get("lenet"))
    assert search["budget"] == {"memory_bytes": -(-whole.memory // 8),
                                "macs": -(-whole.macs // 8)}
    split, search = splitter.lcp_split(zoo.get("lenet"), 2, division_factor=3)
    assert split.branches == 3
    split, _ = splitter.lcp_split(zoo.get("lenet"), 2, device_memory=10 ** 9,
                                  device_macs=10 ** 9)
    assert split.branches == 1
    with pytest.raises(SpecError, match="does not fit the device"):
        splitter.lcp_split(zoo.get("lenet"), 2, device_memory=100)


def test_fattening_widens_every_split_layer_but_the_classifier():
    plain = splitter.split_model(zoo.get("lenet"), 8)
    fat = splitter.split_model(zoo.get("lenet"), 8, fatten=40)
    widths = {n.name: n.op.out_channels for n in fat.branch.nodes if n.kind == "conv2d"}
    assert widths == {"conv1": 1, "conv2": 2, "conv3": 21}  # floor(w * 1.4 / 8), at least 1
    assert fat.head.node("fc2").op.out_features == 10
    assert plain.model.params < fat.model.params < zoo.get("lenet").params
    assert fat.model.name == "lenet-split8-f40"


def test_communication_against_model_parallelism():
    split = splitter.split_model(zoo.get("lenet"), 2)
    comm = splitter.communication(split, 2)
    # LCP: the 28x28 input to device 1, branch 1's 42 pre-final activations back.
    assert comm["lcp"] == {"input_bytes": 784, "intermediate_bytes": 42, "output_bytes": 0,
                           "messages": 2, "bytes": 826}
    # Model parallelism: the input, every dense layer's input (6x14x14, 16x5x5, 120, 84), and
    # half the logits to device 0.
    mp = comm["model_parallel"]
    assert (mp["input_bytes"], mp["intermediate_bytes"], mp["output_bytes"]) == \
        (784, 1176 + 400 + 120 + 84, 5)
    assert mp["exchanges"] == 4 and mp["messages"] == 2 + 2 * 4
    alone = splitter.communication(split, 1)
    assert alone["lcp"]["bytes"] == alone["model_parallel"]["bytes"] == 0


def test_latency_is_the_branches_in_parallel_plus_the_link():
    link = splitter.Link(bandwidth=1e6, latency=1e-3, energy_per_byte=1e-9)
    split = splitter.split_model(zoo.get("lenet"), 4)
    sim = splitter.simulate_split(split, 2, PYNQ, link)

    def us(graph):
        rep, host, _ = simulate_graph(graph, PYNQ, HostModel())
        return rep.latency_us(rep.total.cycles) + host["total"]["time_us"]

    comm = splitter.communication(split, 2)["lcp"]
    want = 2 * us(split.branch) + us(split.head) + (comm["messages"] * 1e-3
                                                    + comm["bytes"] / 1e6) * 1e6
    assert sim["lcp"]["rounds"] == 2 and sim["lcp"]["total_us"] == pytest.approx(want)
    assert sim["lcp"]["link_energy_uj"] == pytest.approx(comm["bytes"] * 1e-3)
    assert sim["single"]["link_us"] == 0 and sim["single"]["total_us"] == \
        pytest.approx(us(split.original))


def test_split_report_and_plot(tmp_path, capsys):
    assert main(["split", "zoo:resnet18", "--devices", "4", "--json", str(tmp_path / "r.json"),
                 "--plot", str(tmp_path / "r.png")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["branches"] == 4 and r["arch"] == "lcp"
    per = r["per_inference"]
    assert per["lcp"]["link_bytes"] < per["model_parallel"]["link_bytes"] / 10
    assert per["lcp"]["macs"] < per["model_parallel"]["macs"] < per["single"]["macs"]
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "model parallelism" in capsys.readouterr().out


def _one_layer():
    b = GraphBuilder("one", {"x": (8,)})
    return b.build(b.add(Gemm(8, 4), "x", name="fc"))


@pytest.mark.parametrize("graph, phrase", [
    (_one_layer(), "splitting needs a classifier"),
])
def test_unsplittable_models_are_refused(graph, phrase):
    with pytest.raises(SpecError, match=phrase):
        splitter.split_model(graph, 2)


def test_grouped_convolutions_cannot_be_split():
    b = GraphBuilder("g", {"x": (4, 6, 6)})
    y = b.add(Relu(), b.add(Conv2d(4, 8, 3, groups=2), "x", name="grouped"), name="r")
    y = b.add(Conv2d(8, 2, 1), y, name="head")
    with pytest.raises(SpecError, match="node 'grouped'.*groups=2"):
        splitter.split_model(b.build(y), 2)


@pytest.mark.parametrize("argv, phrase", [
    (["split", "zoo:lenet", "--devices", "0"], "devices = 0 is invalid"),
    (["split", "zoo:lenet", "--devices", "2", "--division-factor", "1"], "division factor"),
    (["split", "zoo:lenet", "--devices", "2", "--fatten", "-5"], "fatten = -5"),
    (["split", "zoo:lenet", "--devices", "2", "--link-mbps", "0"], "bandwidth"),
    (["split", "zoo:lenet", "--devices", "2", "--device-memory", "64"], "does not fit"),
])
def test_split_mistakes_give_one_line(argv, phrase, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0], err
