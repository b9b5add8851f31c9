"""ONNX import: torch-style exports import and run like ONNX Runtime; bad input fails in one line.

Torch is not installed (PyPI's Linux wheel pulls gigabytes of CUDA libraries), so the models are
written with onnx.helper exactly as torch.onnx.export lays them out: `/module/Op` node names,
`module.weight` initializers, Constant nodes for Clip bounds and shape arithmetic, the
Shape/Gather/Unsqueeze/Concat/Reshape chain of ``x.view(x.size(0), -1)``, Gemm with transB=1 (or
MatMul + Add) for nn.Linear.
"""

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tessera.cli import main
from tessera.compiler import float_exec, onnx_import
from tessera.errors import SpecError


class _Export:
    """Collects nodes and initializers the way torch.onnx.export names them."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def const(self, name, array):
        self.nodes.append(helper.make_node("Constant", [], [name], name=name,
                                           value=numpy_helper.from_array(np.asarray(array))))
        return name

    def node(self, op, inputs, name, **attrs):
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(self, x, module, cin, cout, k, stride=1, pad=1, group=1, bias=True, **attrs):
        w = self.init(f"{module}.weight",
                      self.rng.normal(0, (2 / (cin // group * k * k)) ** 0.5,
                                      (cout, cin // group, k, k)).astype(np.float32))
        ins = [x, w] + ([self.init(f"{module}.bias", self.rng.normal(0, 0.1, cout)
                                   .astype(np.float32))] if bias else [])
        return self.node("Conv", ins, f"/{module}/Conv", kernel_shape=[k, k], strides=[stride] * 2,
                         pads=[pad] * 4, group=group, dilations=[1, 1], **attrs)

    def bn(self, x, module, c):
        params = [self.init(f"{module}.{p}", v.astype(np.float32)) for p, v in (
            ("weight", self.rng.uniform(0.5, 1.5, c)), ("bias", self.rng.normal(0, 0.1, c)),
            ("running_mean", self.rng.normal(0, 0.1, c)), ("running_var",
                                                            self.rng.uniform(0.5, 2, c)))]
        return self.node("BatchNormalization", [x, *params], f"/{module}/BatchNormalization",
                         epsilon=1e-5, momentum=0.9)

    def model(self, x_shape, y, opset, out_shape=(1, 10), input_name="input"):
        x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(x_shape))
        out = helper.make_tensor_value_info(y, TensorProto.FLOAT,
                                            None if out_shape is None else list(out_shape))
        graph = helper.make_graph(self.nodes, "main_graph", [x], [out], self.inits)
        return helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", opset)])


def small_cnn(opset=17, flatten="Flatten", fc="Gemm", batch=1, seed=0):
    """conv-BN-ReLU, max-pool, depthwise conv-BN-ReLU, pointwise conv-BN + residual add, ReLU,
    strided conv + ReLU6 (Clip), global average pool, flatten, linear."""
    e = _Export(seed)
    x = e.node("Relu", [e.bn(e.conv("input", "conv1", 3, 8, 3), "bn1", 8)], "/relu/Relu")
    skip = e.node("MaxPool", [x], "/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2],
                  pads=[0, 0, 0, 0], ceil_mode=0)
    x = e.node("Relu", [e.bn(e.conv(skip, "dw", 8, 8, 3, group=8, bias=False), "bn2", 8)],
               "/relu_1/Relu")
    x = e.bn(e.conv(x, "pw", 8, 8, 1, pad=0, bias=False), "bn3", 8)
    x = e.node("Relu", [e.node("Add", [x, skip], "/Add")], "/relu_2/Relu")
    x = e.conv(x, "conv3", 8, 16, 3, stride=2)
    x = e.node("Clip", [x, e.const("/act/Constant_output_0", np.float32(0)),
                        e.const("/act/Constant_1_output_0", np.float32(6))], "/act/Clip")
    x = e.node("GlobalAveragePool", [x], "/gap/GlobalAveragePool")
    if flatten == "Flatten":
        x = e.node("Flatten", [x], "/Flatten", axis=1)
    else:  # x.view(x.size(0), -1)
        size = e.node("Shape", [x], "/Shape")
        n = e.node("Gather", [size, e.const("/Constant_output_0", np.int64(0))], "/Gather", axis=0)
        if opset >= 13:
            n = e.node("Unsqueeze", [n, e.const("/Constant_1_output_0", np.array([0]))],
                       "/Unsqueeze")
        else:
            n = e.node("Unsqueeze", [n], "/Unsqueeze", axes=[0])
        shape = e.node("Concat", [n, e.const("/Constant_2_output_0", np.array([-1]))], "/Concat",
                       axis=0)
        x = e.node("Reshape", [x, shape], "/Reshape")
    x = e.node("Dropout", [x], "/dropout/Dropout")
    w = e.rng.normal(0, 0.25, (10, 16)).astype(np.float32)
    b = e.rng.normal(0, 0.1, 10).astype(np.float32)
    if fc == "Gemm":
        x = e.node("Gemm", [x, e.init("fc.weight", w), e.init("fc.bias", b)], "/fc/Gemm",
                   alpha=1.0, beta=1.0, transB=1)
    else:
        x = e.node("MatMul", [x, e.init("onnx::MatMul_99", w.T.copy())], "/fc/MatMul")
        x = e.node("Add", [e.init("fc.bias", b), x], "/fc/Add")
    e.nodes[-1].output[0] = "output"
    return e.model((batch, 3, 16, 16), "output", opset)


def _ort(model, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x[None]})[0][0]


@pytest.mark.parametrize("opset,flatten,fc,batch", [
    (17, "Flatten", "Gemm", 1),
    (11, "chain", "MatMul", 1),
    (13, "chain", "Gemm", "batch_size"),
    (21, "Flatten", "MatMul", "N"),
])
def test_small_cnn_matches_onnxruntime(opset, flatten, fc, batch):
    model = small_cnn(opset, flatten, fc, batch)
    g = onnx_import.from_model(model)
    kinds = [n.kind for n in g.nodes]
    assert kinds.count("conv2d") == 4 and kinds.count("gemm") == 1
    assert g.node("/dw/Conv").op.depthwise and g.node("/pw/Conv").op.has_bias  # BN folded
    assert g.inputs == {"input": (3, 16, 16)} and g.outputs == ["output"]
    x = np.random.default_rng(1).normal(size=(3, 16, 16)).astype(np.float32)
    ours = float_exec.run(g, x)["output"]
    ref = _ort(model, x)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
    assert ours.argmax() == ref.argmax()


def test_output_behind_identity_keeps_its_name():
    e = _Export()
    y = e.node("Identity", [e.node("Relu", ["input"], "/relu/Relu")], "/Identity")
    g = onnx_import.from_model(e.model((1, 4, 5, 5), y, 17, out_shape=(1, 4, 5, 5)))
    assert g.outputs == [y] and g.node("/relu/Relu").output == y


def test_bn_folds_into_the_conv_weights():
    g = onnx_import.from_model(small_cnn())
    conv = g.node("/conv1/Conv")
    assert conv.output == "/bn1/BatchNormalization_output_0"
    assert g.consumers(conv.output)[0].name == "/relu/Relu"
    assert g.producer("/relu/Relu_output_0") is g.node("/relu/Relu")
    assert "batchnorm" not in {n.kind for n in g.nodes}


def _single_op(op, x_shape, attrs=None, extra=(), out_shape=None, opset=17, consts=()):
    """A one-operator model: input, optional constant inputs, the operator."""
    e = _Export()
    ins = ["input", *(e.init(f"c{i}", v) for i, v in enumerate(consts)), *extra]
    y = e.node(op, ins, f"/{op}", **(attrs or {}))
    return e.model(x_shape, y, opset, out_shape or [None] * len(x_shape))


@pytest.mark.parametrize("op,attrs,consts", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, ()),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, ()),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                     "count_include_pad": 0, "ceil_mode": 1}, ()),
    ("AveragePool", {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [1, 0, 1, 1],
                     "count_include_pad": 1}, ()),
    ("Conv", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
     (np.random.default_rng(2).normal(size=(5, 4, 3, 3)).astype(np.float32),)),
    ("Conv", {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [0, 1, 2, 0], "group": 2},
     (np.random.default_rng(3).normal(size=(6, 2, 3, 2)).astype(np.float32),
      np.arange(6, dtype=np.float32))),
    ("Conv", {"kernel_shape": [2, 2], "auto_pad": "VALID"},
     (np.random.default_rng(4).normal(size=(3, 4, 2, 2)).astype(np.float32),)),
    ("Resize", {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
     (np.array([], np.float32), np.array([1, 1, 2, 2], np.float32))),
    ("Resize", {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
     (np.array([], np.float32), np.array([], np.float32), np.array([1, 4, 12, 7], np.int64))),
    ("Resize", {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
     (np.array([], np.float32), np.array([], np.float32), np.array([1, 4, 5, 23], np.int64))),
    ("Resize", {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                "nearest_mode": "floor"},
     (np.array([], np.float32), np.array([], np.float32), np.array([1, 4, 17, 9], np.int64))),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, ()),
    ("HardSwish", {}, ()),
    ("Sigmoid", {}, ()),
    ("Softmax", {"axis": 1}, ()),
    ("Clip", {}, (np.float32(-0.5),)),
    ("ReduceMean", {"axes": [2, 3]}, ()),
    ("ReduceMean", {"axes": [-1, -2], "keepdims": 0}, ()),
])
def test_operator_matches_onnxruntime(op, attrs, consts):
    model = _single_op(op, (1, 4, 9, 10), attrs, consts=consts)
    g = onnx_import.from_model(model)
    x = np.random.default_rng(5).normal(size=(4, 9, 10)).astype(np.float32) * 3
    np.testing.assert_allclose(float_exec.run(g, x)[g.outputs[0]], _ort(model, x),
                               rtol=1e-5, atol=1e-5)


def test_reduce_mean_axes_as_an_input_from_opset_18():
    model = _single_op("ReduceMean", (1, 4, 9, 10), {"keepdims": 0}, opset=18,
                       consts=(np.array([2, 3], np.int64),))
    g = onnx_import.from_model(model)
    assert [n.kind for n in g.nodes] == ["global_avgpool", "flatten"]
    x = np.random.default_rng(6).normal(size=(4, 9, 10)).astype(np.float32)
    np.testing.assert_allclose(float_exec.run(g, x)[g.outputs[0]], _ort(model, x), rtol=1e-5,
                               atol=1e-6)


def test_squeeze_excite_and_affine_folds_match_onnxruntime():
    """Channel-wise Mul of a sigmoid gate, Concat, and Mul/Sub/Div by constants after a conv."""
    e = _Export(7)
    x = e.conv("input", "conv", 4, 6, 3)
    x = e.node("Mul", [x, e.init("scale", np.linspace(0.5, 2, 6, dtype=np.float32)
                                 .reshape(1, 6, 1, 1))], "/scale/Mul")
    x = e.node("Sub", [x, e.init("shift", np.float32(0.25))], "/shift/Sub")
    x = e.node("Div", [x, e.init("div", np.full((6, 1, 1), 4, np.float32))], "/div/Div")
    gate = e.node("GlobalAveragePool", [x], "/se/pool")
    gate = e.node("Sigmoid", [e.conv(gate, "se.fc", 6, 6, 1, pad=0)], "/se/Sigmoid")
    y = e.node("Mul", [x, gate], "/se/Mul")
    y = e.node("Concat", [y, x], "/Concat", axis=1)
    y = e.node("Softmax", [y], "/Softmax", axis=1)
    model = e.model((1, 4, 8, 8), y, 17, out_shape=(1, 12, 8, 8))
    g = onnx_import.from_model(model)
    assert [n.kind for n in g.nodes].count("conv2d") == 2 and "add" not in [n.kind for n in g.nodes]
    x = np.random.default_rng(8).normal(size=(4, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(float_exec.run(g, x)[y], _ort(model, x), rtol=1e-4, atol=1e-6)


def _error(model) -> str:
    with pytest.raises(SpecError) as info:
        onnx_import.from_model(model)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unsupported_operator_names_node_and_alternatives():
    e = _Export()
    w = e.init("W", np.zeros((1, 32, 4), np.float32))
    r = e.init("R", np.zeros((1, 32, 8), np.float32))
    e.nodes.append(helper.make_node("LSTM", ["input", w, r], ["y"], name="/rnn/LSTM",
                                    hidden_size=8))
    message = _error(e.model((1, 4), "y", 17, out_shape=[None] * 4))
    assert "'/rnn/LSTM' (LSTM)" in message and "not supported" in message
    assert "Conv" in message and "Gemm" in message  # the supported alternatives


def test_dilated_conv_is_rejected():
    w = np.zeros((2, 4, 3, 3), np.float32)
    message = _error(_single_op("Conv", (1, 4, 9, 10), {"dilations": [2, 2]}, consts=(w,)))
    assert "'/Conv' (Conv)" in message and "dilations=[2, 2]" in message
    assert "supported: dilations=1" in message


@pytest.mark.parametrize("model,words", [
    (_single_op("Relu", (1, 4, 9, 10), {}, out_shape=[1, 4, 9, 10], opset=10),
     "opset 10 is not supported"),
    (_single_op("MaxPool", (1, 4, 9, 10), {"kernel_shape": [2, 2], "storage_order": 1}),
     "storage_order=1"),
    (_single_op("Resize", (1, 4, 9, 10), {"mode": "cubic"},
                consts=(np.array([], np.float32), np.array([1, 1, 2, 2], np.float32))),
     "mode='cubic'"),
    (_single_op("LeakyRelu", (1, 4, 9, 10)), "operator LeakyRelu is not supported"),
    (_single_op("Relu", (2, 4, 9, 10)), "batch size 2"),
    (_single_op("ReduceMean", (1, 4, 9, 10), {"axes": [1]}),
     "axes=[1] of a rank-4 tensor is not supported"),
    (_single_op("Sub", (1, 4, 9, 10), consts=(np.float32(1),)), "only right after a Conv"),
])
def test_unsupported_constructs_fail_in_one_line(model, words):
    assert words in _error(model)


def test_unfoldable_batch_norm_names_the_node():
    e = _Export()
    x = e.node("Relu", ["input"], "/relu/Relu")
    e.bn(x, "bn", 4)
    message = _error(e.model((1, 4, 5, 5), e.nodes[-1].output[0], 17, out_shape=(1, 4, 5, 5)))
    assert "'/bn/BatchNormalization' (BatchNormalization): cannot fold" in message
    assert "relu node '/relu/Relu'" in message


def test_bn_after_conv_with_a_second_reader_is_not_folded():
    e = _Export()
    c = e.conv("input", "conv", 4, 4, 3)
    y = e.node("Add", [e.bn(c, "bn", 4), c], "/Add")
    assert "cannot fold" in _error(e.model((1, 4, 5, 5), y, 17, out_shape=(1, 4, 5, 5)))


@pytest.mark.parametrize("content,words", [
    (b"this is not a protobuf file\n" * 4, "not a readable ONNX model"),
    (b"", "invalid ONNX model"),
    (None, "not a readable ONNX model"),  # truncated
])
def test_malformed_files_fail_cleanly(tmp_path, content, words):
    path = tmp_path / "bad.onnx"
    path.write_bytes(small_cnn().SerializeToString()[:700] if content is None else content)
    with pytest.raises(SpecError, match=words) as info:
        onnx_import.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        onnx_import.load(tmp_path / "nope.onnx")


def test_cli_summarizes_onnx(tmp_path, capsys):
    path = tmp_path / "cnn.onnx"
    path.write_bytes(small_cnn().SerializeToString())
    out_json = tmp_path / "cnn.json"
    assert main(["zoo", "--onnx", str(path), "--json", str(out_json)]) == 0
    assert "/dw/Conv" in capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert data["name"] == "cnn" and data["macs"] == onnx_import.load(path).macs
    dw = next(n for n in data["nodes"] if n["name"] == "/dw/Conv")
    assert dw["attrs"]["groups"] == 8 and dw["macs"] == 8 * 9 * 8 * 8


@pytest.mark.parametrize("kind", ["lstm", "dilated", "garbage"])
def test_cli_fails_with_one_line_and_exit_2(tmp_path, capsys, kind):
    path = tmp_path / f"{kind}.onnx"
    if kind == "garbage":
        path.write_bytes(b"\x00\x01garbage" * 10)
    elif kind == "dilated":
        w = np.zeros((2, 4, 3, 3), np.float32)
        path.write_bytes(_single_op("Conv", (1, 4, 9, 10), {"dilations": [2, 2]},
                                    consts=(w,)).SerializeToString())
    else:
        e = _Export()
        w, r = e.init("W", np.zeros((1, 32, 4), np.float32)), e.init("R", np.zeros((1, 32, 8),
                                                                                   np.float32))
        e.nodes.append(helper.make_node("LSTM", ["input", w, r], ["y"], name="lstm", hidden_size=8))
        path.write_bytes(e.model((1, 4), "y", 17, out_shape=[None] * 4).SerializeToString())
    assert main(["zoo", "--onnx", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("tessera: error: ") and captured.err.count("\n") == 1
