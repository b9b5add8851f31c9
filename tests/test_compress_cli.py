"""`tessera compress`: outputs that can be checked with NumPy alone, honest accounting, and one
clear line (exit 2) for every bad input."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from tessera.cli import main
from tessera.compiler.compression import (CompressOptions, PruneOptions, compress_model,
                                          load_compressed, load_weights)
from tessera.compiler.smartdeal import SmartDealOptions
from tessera.compiler.tbn import TbnOptions


@pytest.fixture()
def model(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "model.npz"
    np.savez(path, conv1=rng.normal(0, 0.1, (8, 3, 7, 7)).astype(np.float32),
             conv2=rng.normal(0, 0.06, (16, 32, 3, 3)).astype(np.float32),
             proj=rng.normal(0, 0.1, (32, 16, 1, 1)).astype(np.float32),
             fc=rng.normal(0, 0.05, (10, 100)).astype(np.float32))
    return path


def _run(tmp_path, model, *args, tag="out"):
    out, report, dump = tmp_path / f"{tag}.npz", tmp_path / f"{tag}.json", tmp_path / tag
    assert main(["compress", str(model), *args, "-o", str(out), "--json", str(report),
                 "--dump", str(dump), "--quiet"]) == 0
    return out, json.loads(report.read_text()), dump


def test_smartdeal_outputs(tmp_path, model):
    out, report, dump = _run(tmp_path, model, "--method", "smartdeal", "--theta", "4e-3",
                             "--max-iter", "20", "--group-size", "4", "--structure", "vector")
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert list(layers) == ["conv1", "conv2", "proj", "fc"]
    assert layers["conv1"]["method"] == "int8"                  # 7x7: S = 3 does not divide it
    for name in ("conv2", "proj", "fc"):
        layer = layers[name]
        assert layer["method"] == "smartdeal" and 0 < layer["rel_err"] < 0.3
        assert layer["compression_rate"] == pytest.approx(32 * layer["n_weights"] / layer["bits"])
        assert 0 <= layer["ce_sparsity"] < 1
    assert {"compression_rate", "rel_err", "bits", "n_weights", "ce_sparsity"} <= set(
        report["total"])

    # the dump, checked with NumPy only: conv2 is one 96-row block per filter (C*R = 32*3)
    with np.load(next(dump.glob("001_conv2.npz"))) as d:
        blocks = d["ce"] @ (d["b"] * d["b_scale"][:, None, None, None])
        assert np.array_equal(blocks.reshape(16, 32, 3, 3), d["w_rebuilt"])
        assert np.all(np.isin(np.abs(d["ce"]), [0] + [2.0 ** p for p in range(-7, 1)]))
        assert np.array_equal(d["w_int"] * d["w_scale"][:, None, None, None], blocks)
        conv2 = d["w_rebuilt"]
    # the file alone rebuilds the same weights, bit for bit
    rebuilt = dict(load_compressed(out))
    assert np.array_equal(rebuilt["conv2"], conv2)
    for path in sorted(dump.glob("*.npz")):
        with np.load(path) as d:
            assert np.array_equal(rebuilt[path.stem.split("_", 1)[1]], d["w_rebuilt"])


def test_reported_bits_are_the_stored_streams(tmp_path, model):
    out, report, _ = _run(tmp_path, model, "--method", "smartdeal", "--coding", "huffman")
    bits = {layer["name"]: layer["bits"] for layer in report["layers"]}
    with np.load(out) as data:
        header = json.loads(str(data["__header__"]))
        for entry in header["layers"]:
            arrays = {k.split(".", 1)[1]: data[k] for k in data.files
                      if k.startswith(entry["key"] + ".")}
            if entry["method"] == "int8":
                counted = 8 * arrays["w"].size + 32 * arrays["scale"].size
            else:
                ce = entry["ce"]
                for stream, n in (("ce_row_index", "n_row_bits"), ("ce_elem_index", "n_elem_bits"),
                                  ("ce_codes", "n_code_bits")):
                    assert arrays[stream].size == math.ceil(ce[n] / 8)
                counted = (ce["n_row_bits"] + ce["n_elem_bits"] + ce["n_code_bits"]
                           + 4 * len(ce["huffman_lengths"])
                           + 8 * arrays["b"].size + 8 * arrays["b_frac"].size)
            assert bits[entry["name"]] == counted
    assert report["total"]["bits"] == sum(bits.values())


@pytest.mark.parametrize("args", [
    ["--method", "tbn", "--min-size", "1000", "--alpha", "tile"],
    ["--method", "int8"],
    ["--method", "prune", "--prune", "0.5", "--structure", "vector", "--group-size", "2"],
    ["--method", "smartdeal", "--prune", "0.3", "--coding", "fixed"],
])
def test_every_method_round_trips_through_its_file(tmp_path, model, args):
    out, report, dump = _run(tmp_path, model, *args)
    rebuilt = dict(load_compressed(out))
    for i, layer in enumerate(report["layers"]):
        with np.load(dump / f"{i:03d}_{layer['name']}.npz") as d:
            assert np.array_equal(rebuilt[layer["name"]], d["w_rebuilt"])


@pytest.mark.parametrize("options", [
    CompressOptions("smartdeal", SmartDealOptions(structure="vector", group_size=4),
                    coding="huffman"),
    CompressOptions("smartdeal", SmartDealOptions(exp_min=-12, exp_max=3), coding="fixed"),
    CompressOptions("tbn", tbn=TbnOptions(min_size=100, alpha="tile", p=7)),
    CompressOptions("int8"),
    CompressOptions("prune", prune=PruneOptions(0.4, structure="vector", group_size=3)),
])
def test_the_stored_form_rebuilds_what_the_pass_computed(tmp_path, model, options):
    compressed = compress_model(load_weights(model), options)
    compressed.save(tmp_path / "m.npz")
    loaded = load_compressed(tmp_path / "m.npz")
    assert [name for name, _ in loaded] == [layer.report.name for layer in compressed.layers]
    for layer, (_, weight) in zip(compressed.layers, loaded):
        assert np.array_equal(weight, layer.rebuilt)


def test_pruned_model_feeds_another_method_and_json_is_deterministic(tmp_path, model):
    pruned, _, _ = _run(tmp_path, model, "--method", "prune", "--prune", "0.5", "--structure",
                        "vector", tag="pruned")
    _, first, _ = _run(tmp_path, pruned, "--method", "smartdeal", tag="a")
    _, second, _ = _run(tmp_path, pruned, "--method", "smartdeal", tag="b")
    assert first == second
    # the pruned rows are Ce rows of zeros: SmartDeal keeps them
    assert all(layer["w_sparsity"] >= 0.4 for layer in first["layers"]
               if layer["method"] == "smartdeal")


def test_calibration_records_activation_scales(tmp_path, model):
    rng = np.random.default_rng(1)
    calib = tmp_path / "calib.npz"
    np.savez(calib, conv1=rng.normal(size=(3, 8, 8)), conv2=4 * rng.normal(size=(32, 8, 8)),
             proj=rng.normal(size=(16, 8, 8)), fc=rng.normal(size=100))
    _, report, _ = _run(tmp_path, model, "--method", "int8", "--calib", str(calib))
    scales = {layer["name"]: layer["act_scale"] for layer in report["layers"]}
    assert scales["conv2"] > 2 * scales["conv1"] > 0


def test_default_output_goes_under_build(tmp_path, model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compress", str(model), "--method", "int8", "--quiet"]) == 0
    assert (tmp_path / "build" / "compress" / "model-int8.npz").is_file()


def _bad_models(tmp_path):
    np.savez(tmp_path / "3d.npz", w=np.ones((4, 3, 3)))
    np.savez(tmp_path / "nan.npz", w=np.full((4, 4, 3, 3), np.nan))
    np.savez(tmp_path / "k7.npz", w=np.ones((4, 3, 7, 7)))
    np.save(tmp_path / "single.npy", np.ones((4, 4)))
    (tmp_path / "junk.npz").write_text("not a zip")


@pytest.mark.parametrize("model_name, args, phrase", [
    ("3d.npz", ["--method", "smartdeal"], "shape (4, 3, 3) is not supported"),
    ("nan.npz", ["--method", "smartdeal"], "non-finite"),
    ("nan.npz", ["--method", "tbn"], "non-finite"),
    ("model.npz", ["--method", "smartdeal", "--theta", "0"], "theta = 0.0 is invalid"),
    ("model.npz", ["--method", "smartdeal", "--theta=-1e-3"], "theta = -0.001 is invalid"),
    ("k7.npz", ["--method", "smartdeal", "--fallback", "error"], "kernel 7x7 with S = 3"),
    ("model.npz", ["--method", "smartdeal", "--basis-size", "5", "--fallback", "error"],
     "kernel 7x7 with S = 5"),
    ("model.npz", ["--method", "svd"], "--method 'svd' is unknown"),
    ("model.npz", ["--method", "tbn", "--theta", "1e-3"], "--theta applies to --method smartdeal"),
    ("model.npz", ["--method", "int8", "--structure", "vector"], "--structure applies"),
    ("model.npz", ["--method", "prune"], "needs prune options"),
    ("model.npz", ["--method", "smartdeal", "--group-size", "4"], "give --structure vector"),
    ("model.npz", ["--method", "smartdeal", "--coding", "zip"], "coding 'zip' is unknown"),
    ("model.npz", ["--method", "smartdeal", "--exp-min", "3", "--exp-max", "1"], "exp_max"),
    ("missing.npz", ["--method", "int8"], "cannot read model"),
    ("single.npy", ["--method", "int8"], "is a single array"),
    ("junk.npz", ["--method", "int8"], "cannot read model"),
])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, model, model_name, args, phrase, capsys):
    _bad_models(tmp_path)
    assert main(["compress", str(tmp_path / model_name), *args, "-o",
                 str(tmp_path / "x.npz")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tessera: error:"), captured.err
    assert phrase in lines[0], lines[0]


def test_calibration_must_match_the_layers(tmp_path, model, capsys):
    np.savez(tmp_path / "calib.npz", conv1=np.ones(3))
    assert main(["compress", str(model), "--method", "int8", "--calib",
                 str(tmp_path / "calib.npz")]) == 2
    assert "no samples for layer 'conv2'" in capsys.readouterr().err


def test_no_traceback_in_a_real_process(tmp_path):
    _bad_models(tmp_path)
    r = subprocess.run([sys.executable, "-m", "tessera.cli", "compress",
                        str(tmp_path / "nan.npz"), "--method", "smartdeal", "-o",
                        str(tmp_path / "x.npz")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
