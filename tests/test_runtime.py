"""Whole graphs on the accelerators: the small CNN a mainstream exporter writes imports, compiles
and simulates, its int8 output classifies like ONNX Runtime, host steps are counted, Programs
compute what the executor computes, and the model commands fail in one line."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from test_onnx_import import _Export, _single_op, small_cnn

from tessera.backends import backend, golden_outputs
from tessera.cli import main
from tessera.compiler import float_exec, onnx_import, runtime
from tessera.compiler.layers import LayerShape
from tessera.compiler.program import Program
from tessera.compiler.sd.compile import (_fill_kept_rows, compile_network, quantize_layer,
                                         random_layer)
from tessera.config import PRESETS
from tessera.errors import SpecError

LCP, SD = PRESETS["lcp-8x16"].build(), PRESETS["smartdeal-small"].build()
CASES = [(LCP, "int8"), (SD, "int8"), (SD, "smartdeal")]


@pytest.fixture(scope="module")
def cnn():
    model = small_cnn()
    xs = np.random.default_rng(11).normal(size=(10, 3, 16, 16)).astype(np.float32)
    return model, onnx_import.from_model(model), xs


@pytest.mark.parametrize("cfg, quant", CASES, ids=["lcp-int8", "sd-int8", "sd-smartdeal"])
def test_small_cnn_compiles_simulates_and_classifies_like_onnxruntime(cnn, cfg, quant):
    ort = pytest.importorskip("onnxruntime")
    model, graph, xs = cnn
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    qg = runtime.quantize_graph(graph, cfg, quant, xs)
    if quant == "int8":
        same = []
        for x in xs:
            ref = sess.run(None, {"input": x[None]})[0][0]
            same.append(np.argmax(qg.run(x)["output"]) == np.argmax(ref))
            # A near-tie may flip (logits are int8 too); a clear winner may not.
            assert same[-1] or np.diff(np.sort(ref)[-2:])[0] < 0.05
        assert sum(same) >= len(xs) - 1
    # The compiled programs' golden model computes exactly the executor's integers.
    vals = qg.run_int(xs[0])
    for names, prog in runtime.compile_graph(qg, xs[0]):
        for name, out in zip(names, golden_outputs(prog)):
            dst = qg.io[name][1]
            assert np.array_equal(out.reshape(vals[dst].shape), vals[dst]), name
    report, host, segs = runtime.simulate_graph(graph, cfg)
    assert [l.name for l in report.layers] == [n for seg in segs for n in seg]
    assert report.total.cycles > 0 and host["total"]["ops"] > 0


#: The same small CNN as PyTorch's exporters write it (tests/data/export_small_cnn.py).
TORCH_EXPORTS = ["small_cnn_torch", "small_cnn_torch_bn", "small_cnn_torchscript"]
DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("cfg", [LCP, SD], ids=["lcp", "smartdeal"])
@pytest.mark.parametrize("export", TORCH_EXPORTS)
def test_torch_export_compiles_simulates_and_classifies_like_onnxruntime(export, cfg):
    """A file from torch.onnx.export (conv, BN, ReLU, max-pool, depthwise conv, residual add,
    global average pool, Linear) imports, runs in float like ONNX Runtime, and its int8 golden
    output picks ONNX Runtime's class; its programs compute the executor's integers."""
    ort = pytest.importorskip("onnxruntime")
    path = DATA / f"{export}.onnx"
    graph = onnx_import.load(path)
    kinds = [n.kind for n in graph.nodes]
    assert kinds.count("conv2d") == 4 and kinds.count("gemm") == 1 and "add" in kinds
    assert "global_avgpool" in kinds and "maxpool" in kinds      # BN is folded into the convs
    assert sum(n.op.depthwise for n in graph.nodes if n.kind == "conv2d") == 1
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs = np.random.default_rng(5).normal(size=(10, 3, 16, 16)).astype(np.float32)
    refs = [sess.run(None, {"input": x[None]})[0][0] for x in xs]
    for x, ref in zip(xs, refs):
        np.testing.assert_allclose(float_exec.run(graph, x)["output"], ref, rtol=1e-4,
                                   atol=1e-5)
    qg = runtime.quantize_graph(graph, cfg, "int8", xs)
    same = [np.argmax(qg.run(x)["output"]) == np.argmax(ref) for x, ref in zip(xs, refs)]
    for agree, ref in zip(same, refs):   # a near-tie may flip (logits are int8 too)
        assert agree or np.diff(np.sort(ref)[-2:])[0] < 0.05
    assert sum(same) >= len(xs) - 1
    vals = qg.run_int(xs[0])
    for names, prog in runtime.compile_graph(qg, xs[0]):
        for name, out in zip(names, golden_outputs(prog)):
            assert np.array_equal(out.reshape(vals[qg.io[name][1]].shape),
                                  vals[qg.io[name][1]]), name
    report, host, segs = runtime.simulate_graph(graph, cfg)
    assert [l.name for l in report.layers] == [n for seg in segs for n in seg]
    assert report.total.cycles > 0 and host["total"]["ops"] > 0


def test_smartdeal_stays_close_to_float(cnn):
    _, graph, xs = cnn
    qg = runtime.quantize_graph(graph, SD, "smartdeal", xs)
    agree = [np.argmax(qg.run(x)["output"]) == np.argmax(float_exec.run(graph, x)["output"])
             for x in xs]
    assert np.mean(agree) >= 0.8


def test_segments_break_at_host_steps_and_pooling_units_differ(cnn):
    _, graph, _ = cnn
    lcp, sd = runtime.lower(graph, "lcp"), runtime.lower(graph, "smartdeal")
    assert runtime.segments(graph, lcp) == [["/conv1/Conv", "/dw/Conv", "/pw/Conv"],
                                            ["/conv3/Conv"], ["/fc/Gemm"]]
    assert runtime.segments(graph, sd) == [["/conv1/Conv"], ["/dw/Conv", "/pw/Conv"],
                                           ["/conv3/Conv"], ["/fc/Gemm"]]
    assert lcp.fused["/pool/MaxPool"] == "/conv1/Conv"  # the LCP unit pools 2x2/2
    assert [h.kind for h in sd.host][:1] == ["maxpool"]   # SmartDeal's fuses ReLU only
    assert {h.kind for h in lcp.host} == {"add", "relu", "clip", "global_avgpool", "flatten"}


def test_pool_on_host_or_in_the_unit_gives_the_same_integers(cnn):
    """Max pooling and ReLU keep their input's scale, so where they run does not matter."""
    _, graph, xs = cnn
    a = runtime.quantize_graph(graph, LCP, "int8", xs)
    b = runtime.quantize_graph(graph, SD, "int8", xs)
    for x in xs[:3]:
        va, vb = a.run_int(x), b.run_int(x)
        for t in ("/pool/MaxPool_output_0", "/relu_2/Relu_output_0", "output"):
            assert np.array_equal(va[t], vb[t]), t


def test_host_step_semantics_are_dequantize_float_requantize(cnn):
    _, graph, xs = cnn
    qg = runtime.quantize_graph(graph, LCP, "int8", xs)
    v = qg.run_int(xs[0])
    s = qg.scales
    a, b, out = (graph.node(n).output for n in ("/pw/Conv", "/pool/MaxPool", "/Add"))
    want = np.clip(np.rint((v[a] * np.float32(s[a]) + v[b] * np.float32(s[b])) / s[out]),
                   -128, 127)
    assert np.array_equal(v[out], want.astype(np.int8))
    assert s["/relu_2/Relu_output_0"] == s[out]  # a host ReLU keeps the scale


def test_depthwise_runs_on_lcp_as_a_block_diagonal_dense_conv(cnn):
    _, graph, xs = cnn
    qg = runtime.quantize_graph(graph, LCP, "int8", xs)
    dw, = [q for q in qg.program_layers(["/dw/Conv"])]
    assert dw.shape.groups == 1 and dw.weights.shape == (8, 8, 3, 3)
    off = ~np.eye(8, dtype=bool)
    assert not dw.weights[off].any()
    assert np.array_equal(dw.weights[np.arange(8), np.arange(8)],
                          qg.layers["/dw/Conv"].weights[:, 0])
    report, _, _ = runtime.simulate_graph(graph, LCP)
    assert next(l for l in report.layers if l.name == "/dw/Conv").macs == 8 * 8 * 9 * 64


def test_host_report_counts_every_step(cnn):
    _, graph, _ = cnn
    rep = runtime.host_report(graph, runtime.lower(graph, "lcp"), runtime.HostModel(1e6, 1e6))
    steps = {s["name"]: s for s in rep["steps"]}
    assert steps["/Add"]["ops"] == 512 and steps["/Add"]["bytes"] == 3 * 512
    assert steps["/Add"]["time_us"] == pytest.approx(512 + 1536)
    assert steps["/Flatten"]["bytes"] == 0  # (16,1,1) -> (16,): nothing moves
    assert rep["total"]["time_us"] == pytest.approx(sum(s["time_us"] for s in rep["steps"]))


def test_lcp_model_simulation_equals_its_programs(cnn):
    _, graph, xs = cnn
    report, _, _ = runtime.simulate_graph(graph, LCP)
    qg = runtime.quantize_graph(graph, LCP, "int8", xs[:1])
    cycles = [l.cycles for _, prog in runtime.compile_graph(qg, xs[0])
              for l in backend(LCP).simulate_program(prog, LCP).layers]
    assert cycles == [l.cycles for l in report.layers]


def test_quantization_refuses_what_the_array_cannot_do(cnn):
    _, graph, xs = cnn
    with pytest.raises(SpecError, match="needs --arch smartdeal"):
        runtime.quantize_graph(graph, LCP, "smartdeal", xs)
    bare = dataclasses.replace(graph, nodes=[dataclasses.replace(n, weight=None, bias=None)
                                             for n in graph.nodes])
    with pytest.raises(SpecError, match="no weights"):
        runtime.quantize_graph(bare, LCP, "int8", xs)


def test_zero_coefficients_in_kept_rows_become_encodable():
    """The 4-bit codes have no zero: quantize_layer fills a kept row's exact zeros."""
    shape = LayerShape("c", "conv", C=8, K=8, H=6, W=6, R=3, S=3, pads=(1, 1, 1, 1))
    layer = random_layer(shape, SD, np.random.default_rng(0))
    layer.sd.ce_codes[0, 0, 0, 1] = 0
    sd = _fill_kept_rows(layer.sd)
    assert sd.ce_codes[0, 0, 0, 1] == 1 and sd.clamped == layer.sd.clamped + 1
    w = sd.layout.from_blocks(sd.w_int()).astype(np.int32)
    fixed = dataclasses.replace(layer, weights=w, sd=sd)
    compile_network(SD, [fixed], np.zeros(shape.input_shape, np.int8))
    fc = LayerShape.gemm("fc", 1, 64, 32, kind="fc")  # a partial last row of S=3 inputs
    q = quantize_layer(fc, np.random.default_rng(1).normal(size=(32, 64)), None, .01, .05, SD)
    compile_network(SD, [q], np.zeros(fc.input_shape, np.int8))


def test_docs_example_runs(capsys):
    """The example in docs/runtime.md stays runnable and prints what it says."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "runtime.md").read_text()
    code = text.split("Example (runs as is):\n\n```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/runtime.md", "exec"), {})
    out = capsys.readouterr().out
    assert "[['conv1', 'dw', 'pw'], ['fc']]" in out and "'steps': 3" in out


# --- command line --------------------------------------------------------------------------------

@pytest.fixture()
def onnx_file(tmp_path):
    path = tmp_path / "cnn.onnx"
    path.write_bytes(small_cnn().SerializeToString())
    return path


def test_run_writes_the_executors_outputs(tmp_path, onnx_file, cnn):
    _, graph, xs = cnn
    np.save(tmp_path / "x.npy", xs[:4])
    np.save(tmp_path / "one.npy", xs[0])
    assert main(["run", str(onnx_file), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--preset", "lcp-8x16"]) == 0
    y = np.load(tmp_path / "y.npy")
    qg = runtime.quantize_graph(graph, LCP, "int8", xs[:4])
    assert y.shape == (4, 10)
    assert np.array_equal(y, np.stack([qg.run(x)["output"] for x in xs[:4]]))
    assert main(["run", str(onnx_file), "--input", str(tmp_path / "one.npy"), "--output",
                 str(tmp_path / "f.npz"), "--quant", "none"]) == 0
    with np.load(tmp_path / "f.npz") as f:
        assert np.array_equal(f["output"], float_exec.run(graph, xs[0])["output"])
    assert main(["run", str(onnx_file), "--input", str(tmp_path / "one.npy"), "--output",
                 str(tmp_path / "s.npy"), "--quant", "smartdeal", "--preset", "smartdeal-small",
                 "--calib", str(tmp_path / "x.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (10,)


def test_simulate_and_compile_take_models(tmp_path, onnx_file, capsys):
    assert main(["simulate", str(onnx_file), "--preset", "lcp-8x16", "--json",
                 str(tmp_path / "s.json")]) == 0
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["host"]["total"]["steps"] == 5 and len(data["segments"]) == 3
    assert data["end_to_end_us"] == pytest.approx(
        data["total"]["latency_us"] + data["host"]["total"]["time_us"])
    assert "host steps" in capsys.readouterr().out
    assert main(["compile", str(onnx_file), "--preset", "smartdeal-small", "--quant",
                 "smartdeal", "-o", str(tmp_path / "p")]) == 0
    summary = json.loads((tmp_path / "p" / "model.json").read_text())
    assert [p["layers"] for p in summary["programs"]][1] == ["/dw/Conv", "/pw/Conv"]
    prog = Program.load(tmp_path / "p" / summary["programs"][1]["dir"])
    assert len(prog.manifest["layers"]) == 2
    assert (tmp_path / "p" / summary["programs"][0]["dir"] / "commands.txt").is_file()
    assert main(["simulate", "zoo:lenet", "--preset", "lcp-8x16"]) == 0
    assert main(["compress", str(onnx_file), "--method", "int8", "-q", "-o",
                 str(tmp_path / "c.npz"), "--json", str(tmp_path / "c.json")]) == 0
    names = [l["name"] for l in json.loads((tmp_path / "c.json").read_text())["layers"]]
    assert names == ["/conv1/Conv", "/dw/Conv", "/pw/Conv", "/conv3/Conv", "/fc/Gemm"]


def _lstm(path):
    e = _Export()
    w = e.init("W", np.zeros((1, 32, 4), np.float32))
    r = e.init("R", np.zeros((1, 32, 8), np.float32))
    e.nodes.append(helper.make_node("LSTM", ["input", w, r], ["y"], name="/rnn/LSTM",
                                    hidden_size=8))
    path.write_bytes(e.model((1, 4), "y", 17, out_shape=[None] * 4).SerializeToString())


@pytest.mark.parametrize("kind", ["lstm", "garbage", "leaky"])
@pytest.mark.parametrize("command", [
    ["run", "{m}", "--input", "{x}", "--output", "{y}"],
    ["simulate", "{m}", "--arch", "lcp"],
    ["compile", "{m}", "--arch", "lcp", "-o", "{y}"],
    ["compress", "{m}", "--method", "int8", "-o", "{y}.npz"],
    ["split", "{m}", "--devices", "2"],
    ["traffic", "{m}"],
], ids=lambda c: c[0] if isinstance(c, list) else c)
def test_bad_models_fail_in_one_line(tmp_path, capsys, kind, command):
    m = tmp_path / f"{kind}.onnx"
    if kind == "lstm":
        _lstm(m)
    elif kind == "garbage":
        m.write_bytes(b"\x00\x01garbage" * 10)
    else:
        m.write_bytes(_single_op("LeakyRelu", (1, 4, 9, 10)).SerializeToString())
    np.save(tmp_path / "x.npy", np.zeros((4,), np.float32))
    argv = [a.format(m=m, x=tmp_path / "x.npy", y=tmp_path / "y.npy") for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    phrase = {"lstm": "operator LSTM is not supported", "garbage": f"{m}: not a readable ONNX",
              "leaky": "operator LeakyRelu is not supported"}[kind]
    assert len(err) == 1 and err[0].startswith("tessera: error:") and phrase in err[0], err


@pytest.mark.parametrize("argv, phrase", [
    (["run", "model.txt", "--input", "x.npy", "--output", "y.npy"], "allowed is FILE.onnx"),
    (["run", "zoo:lenet", "--input", "{bad}", "--output", "{y}"], "has shape (4,)"),
    (["run", "zoo:lenet", "--input", "{x}", "--output", "{y}.csv"], ".npy or .npz"),
    (["run", "zoo:lenet", "--input", "{x}", "--output", "{y}", "--quant", "smartdeal",
      "--arch", "lcp"], "needs --arch smartdeal"),
    (["run", "zoo:lenet", "--input", "{x}", "--output", "{y}", "--quant", "none", "--arch",
      "lcp"], "takes no --arch"),
    (["run", "zoo:lenet", "--input", "/nonexistent.npy", "--output", "{y}"], "No such file"),
    (["simulate", "zoo:resnet18", "--arch", "smartdeal"], "7x7 kernel does not fit"),
    (["compile", "zoo:nope", "--arch", "lcp"], "unknown zoo model 'nope'"),
])
def test_model_mistakes_give_one_line(tmp_path, capsys, argv, phrase):
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), np.float32))
    np.save(tmp_path / "bad.npy", np.zeros((4,), np.float32))
    argv = [a.format(x=tmp_path / "x.npy", bad=tmp_path / "bad.npy", y=tmp_path / "y.npy")
            for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0], err



def test_layers_the_array_cannot_run_fail_or_go_to_the_host():
    from tessera.compiler import zoo
    from tessera.errors import CompileError

    graph = zoo.get("lenet")           # 5x5 kernels: wider than smartdeal-small's S = 3
    with pytest.raises(CompileError, match="--unsupported host"):
        runtime.simulate_graph(graph, SD)
    report, host, _ = runtime.simulate_graph(graph, SD, unsupported_on_host=True)
    lowered = runtime.lower(graph, "smartdeal")
    moved = {st["name"]: st for st in host["steps"] if "reason" in st}
    assert moved and all("5x5 kernel" in st["reason"] for st in moved.values())
    on_array = [l.name for l in report.layers]
    assert sorted(on_array + list(moved)) == sorted(s.name for s in lowered.layers)
    for s in lowered.layers:
        if s.name in moved:
            assert moved[s.name]["ops"] == 2 * s.macs
