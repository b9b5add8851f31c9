"""SCALE-Sim topology CSVs: both forms, SCALE-Sim's quirks, round trips and one-line errors."""

from pathlib import Path

import pytest

from tessera.compiler.topology import TopologyLayer, read_topology, write_topology
from tessera.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "topologies"


def _write(tmp_path, text: str, name: str = "topo.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_resnet18_example_as_scalesim_reads_it():
    layers = read_topology(EXAMPLES / "resnet18.csv")
    assert len(layers) == 21
    conv1 = layers[0]
    assert conv1 == TopologyLayer("Conv1", 224, 224, 7, 7, 3, 64, 2)
    # SCALE-Sim: ceil((224 - 7 + 2) / 2) = 110 output rows; the last row of windows hangs off the
    # 224-row input (a padded convolution would have 109).
    assert (conv1.ofmap_h, conv1.ofmap_w) == (110, 110)
    assert conv1.mnk == (110 * 110, 64, 7 * 7 * 3)
    assert conv1.macs == 110 * 110 * 64 * 147
    assert layers[-1] == TopologyLayer("FC", 1, 1, 1, 1, 512, 1000, 1)
    assert [l.ofmap_h for l in layers[1:3]] == [54, 54]


def test_other_examples_read():
    assert len(read_topology(EXAMPLES / "resnet50.csv")) == 54
    gpt2 = read_topology(EXAMPLES / "gpt2_gemm.csv")
    assert [l.mnk for l in gpt2][:2] == [(1024, 1024, 64), (1024, 64, 1024)]


def test_gemm_form_maps_like_scalesim(tmp_path):
    # SCALE-Sim's load_arrays_gemm: [name, M, K, 1, K, 1, N, 1, 1]
    layers = read_topology(_write(tmp_path, "Layer Name, M, N, K,\nTest 1, 256, 128, 96,\n"))
    assert layers == [TopologyLayer("Test 1", 256, 96, 1, 96, 1, 128, 1)]
    layer = layers[0]
    assert (layer.ofmap_h, layer.ofmap_w, layer.window) == (256, 1, 96)
    assert layer.mnk == (256, 128, 96) and layer.is_gemm


def test_scalesim_file_quirks(tmp_path):
    text = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
            "Num Filter, Strides,, Target\n"
            "\n"
            "Conv1,224,224,7,7,3,64,2, NPU\n"          # annotation columns are ignored
            ",,,,,,,,,,,,\n"                            # all empty (SCALE-Sim's Resnet50.csv)
            "# a comment line\n"
            "\tConv2 ,  56, 56, 3, 3, 64, 64, 1,#dw\n"   # tabs, spaces, trailing annotation
            "Conv3,28,28,3,3,128,128,1\n")              # no trailing comma
    layers = read_topology(_write(tmp_path, text))
    assert [l.name for l in layers] == ["Conv1", "Conv2", "Conv3"]
    assert layers[1] == TopologyLayer("Conv2", 56, 56, 3, 3, 64, 64, 1)


def test_depthwise_layers_expand_per_channel(tmp_path):
    # SCALE-Sim's convention: a layer whose name contains DP runs as one layer per channel
    text = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, " \
           "Num Filter, Strides,\nConv2DP, 9, 9, 3, 3, 3, 1, 1,\n"
    layers = read_topology(_write(tmp_path, text))
    assert [l.name for l in layers] == [f"Conv2DPChannel_{c}" for c in range(3)]
    assert all(l.channels == 1 and l.num_filters == 1 for l in layers)


def test_dense_sparsity_column_is_accepted(tmp_path):
    text = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, " \
           "Num Filter, Strides, Sparsity,\nC, 5, 5, 3, 3, 2, 6, 1, 1:1,\n"
    assert read_topology(_write(tmp_path, text))[0].channels == 2


@pytest.mark.parametrize("form", ["conv", "gemm"])
def test_write_read_round_trip(tmp_path, form):
    layers = [TopologyLayer.gemm("qkv", 197, 288, 96), TopologyLayer.gemm("odd", 37, 53, 211)]
    if form == "conv":
        layers += [TopologyLayer("c", 16, 16, 5, 5, 3, 10, 2),
                   TopologyLayer("w", 6, 30, 3, 5, 6, 20, 1)]
    path = tmp_path / "out.csv"
    write_topology(layers, path, form=form)
    assert path.read_text().splitlines()[1].endswith(",")  # SCALE-Sim drops the last field
    assert read_topology(path) == layers


def test_write_gemm_form_rejects_convolutions(tmp_path):
    with pytest.raises(SpecError, match=r"layer 'c' is not a GEMM .*allowed"):
        write_topology([TopologyLayer("c", 8, 8, 3, 3, 2, 4, 1)], tmp_path / "x.csv", form="gemm")


CONV_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
               "Num Filter, Strides,\n")


@pytest.mark.parametrize("text, expected", [
    ("", r"topo\.csv: the topology file is empty: expected a header line"),
    ("  \n\n", r"topo\.csv: the topology file is empty"),
    (CONV_HEADER, r"topo\.csv: no layers after the header"),
    ("Name, H, W\nx, 1, 2,\n", r"topo\.csv:1: header 'Name, H, W' is not a SCALE-Sim topology "
                               r"header: allowed is 'Layer name, IFMAP Height"),
    (CONV_HEADER + "c1, 8, 8, 3, 3, 4,\n",
     r"topo\.csv:2: layer 'c1' has 6 of the 8 columns: 'Num Filter', 'Strides' missing"),
    (CONV_HEADER + "c1, 8, 8, 3, x3, 4, 4, 1,\n",
     r"topo\.csv:2: column 'Filter Width' = 'x3' is not an integer: allowed is a positive integer"),
    (CONV_HEADER + "c1, 8, 8, 3, 3, 4, 4, 1,\nc2, 8, 8, 3, 3, 0, 4, 1,\n",
     r"topo\.csv:3: column 'Channels' = 0 is invalid: allowed is a positive integer"),
    (CONV_HEADER + "c1, 8, 8, 3, 3, 4, -4, 1,\n",
     r"topo\.csv:2: column 'Num Filter' = -4 is invalid"),
    (CONV_HEADER + "c1, 8, 8, 3, 3.5, 4, 4, 1,\n",
     r"topo\.csv:2: column 'Filter Width' = '3.5' is not an integer"),
    (CONV_HEADER + "c1, 8, 2, 3, 3, 4, 4, 1,\n",
     r"topo\.csv:2: column 'Filter Width' = 3 exceeds 'IFMAP Width' = 2: allowed is at most "
     r"the IFMAP size"),
    (", M, N, K,\nx, 1, 2, 3,\n", r"topo\.csv:1: header"),
    ("Layer, M, N, K,\ng1, 4, 4,\n",
     r"topo\.csv:2: layer 'g1' has 3 of the 4 columns: 'K' missing"),
    ("Layer, M, N, K,\ng1, 4, 0, 3,\n", r"topo\.csv:2: column 'N' = 0 is invalid"),
    ("Layer, M, N, K,\n, 4, 2, 3,\n", r"topo\.csv:2: column 'Layer' is empty"),
    ("Layer, M, N, K, Sparsity,\ng1, 4, 2, 3, 2:4,\n",
     r"topo\.csv:2: column 'Sparsity' = '2:4' is not supported: allowed is 1:1"),
])
def test_malformed_files_fail_with_one_line(tmp_path, text, expected):
    with pytest.raises(SpecError, match=expected) as info:
        read_topology(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(SpecError, match=r"cannot read topology file '.*missing\.csv'"):
        read_topology(tmp_path / "missing.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="not a text file"):
        read_topology(tmp_path / "bin.csv")


@pytest.mark.parametrize("kwargs, expected", [
    (dict(ifmap_h=0), "ifmap_h = 0 is invalid: allowed is a positive integer"),
    (dict(stride=True), "stride = True is invalid"),
    (dict(filter_h=9), "filter_h = 9 exceeds ifmap_h = 8"),
])
def test_layer_validation(kwargs, expected):
    values = dict(name="x", ifmap_h=8, ifmap_w=8, filter_h=3, filter_w=3, channels=2,
                  num_filters=4, stride=1) | kwargs
    with pytest.raises(SpecError, match=expected):
        TopologyLayer(**values)
