"""Graph IR: shape inference, work counts, validation; the float executor against naive loops."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.compiler import float_exec
from tessera.compiler.graph import (OPS, Add, AvgPool, Clip, Concat, Conv2d, Flatten, Gemm,
                                    GlobalAvgPool, Graph, GraphBuilder, MaxPool, Mul, Node, Relu,
                                    Reshape, Resize, Sigmoid, Softmax)
from tessera.errors import SpecError


def _tiny(weights=True) -> Graph:
    """conv -> relu -> (conv, identity) add -> gap -> flatten -> gemm."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("tiny", {"x": (2, 6, 6)})
    w = (lambda *s: rng.normal(size=s).astype(np.float32)) if weights else (lambda *s: None)
    y = b.add(Relu(), b.add(Conv2d(2, 4, 3, 1, 1), "x", name="c1", weight=w(4, 2, 3, 3),
                            bias=w(4)))
    z = b.add(Conv2d(4, 4, 3, 1, 1, groups=4, has_bias=False), y, name="dw", weight=w(4, 1, 3, 3))
    s = b.add(Add(), y, z, name="res")
    v = b.add(Flatten(), b.add(GlobalAvgPool(), s))
    return b.build(b.add(Gemm(4, 3), v, name="fc", weight=w(3, 4), bias=w(3)))


def test_counts_and_shapes():
    g = _tiny()
    stats = {s.name: s for s in g.stats()}
    assert stats["c1"].macs == 4 * 2 * 9 * 36 and stats["c1"].params == 4 * 2 * 9 + 4
    assert stats["dw"].macs == 4 * 1 * 9 * 36 and stats["dw"].params == 36
    assert stats["fc"].macs == 12 and stats["fc"].output_shape == (3,)
    assert stats["res"].macs == 0 and stats["res"].ops == 4 * 36
    gap = stats["global_avgpool1"]
    assert gap.ops == 4 * 36 and gap.output_shape == (4, 1, 1)
    assert g.macs == sum(s.macs for s in stats.values())
    assert g.params == 4 * 2 * 9 + 4 + 36 + 15
    assert g.node("dw").op.depthwise and not g.node("c1").op.depthwise
    text = g.summary()
    assert "graph tiny" in text and "dw" in text and len(text.splitlines()) == 2 + len(g.nodes)


def test_producers_and_consumers():
    g = _tiny()
    assert g.producer("x") is None and g.producer("dw") is g.node("dw")
    assert [n.name for n in g.consumers("relu1")] == ["dw", "res"]
    with pytest.raises(SpecError, match="no tensor 'nope'"):
        g.producer("nope")


@pytest.mark.parametrize("op,shape,expected", [
    (Conv2d(3, 8, (3, 5), (2, 1), (1, 2, 0, 2)), (3, 10, 10), (8, 5, 10)),
    (MaxPool(3, 2), (4, 8, 8), (4, 3, 3)),
    (MaxPool(3, 2, ceil_mode=True), (4, 8, 8), (4, 4, 4)),
    (MaxPool(2, 2, 1, ceil_mode=True), (4, 5, 5), (4, 3, 3)),  # no window starting in the padding
    (AvgPool(2, 2, (0, 0, 1, 1)), (4, 5, 5), (4, 3, 3)),
    (Resize((7, 9)), (4, 2, 3), (4, 7, 9)),
    (Reshape((2, 8)), (4, 2, 2), (2, 8)),
    (Softmax(0), (10,), (10,)),
])
def test_shape_inference(op, shape, expected):
    assert op.infer([shape]) == expected


@pytest.mark.parametrize("build,words", [
    (lambda: Conv2d(6, 4, 3, groups=4), "groups=4 must divide"),
    (lambda: Conv2d(4, 4, 0), "kernel must be a positive int"),
    (lambda: MaxPool(2, 2, 2), "smaller than the kernel"),
    (lambda: Clip(1.0, 0.0), "min <= max"),
    (lambda: Resize((4, 4), "cubic"), "'nearest' or 'bilinear'"),
    (lambda: Reshape((2, -1)), "positive dimensions"),
])
def test_invalid_attributes(build, words):
    with pytest.raises(SpecError, match=words):
        build()


def test_builder_errors_name_the_node():
    b = GraphBuilder("g", {"x": (3, 8, 8)})
    with pytest.raises(SpecError, match=r"node 'c' \(conv2d\): input has 3 channels, the layer "
                                        r"expects 4"):
        b.add(Conv2d(4, 4, 3), "x", name="c")
    with pytest.raises(SpecError, match="needs a vector of 192 features"):
        b.add(Gemm(192, 10), "x")
    with pytest.raises(SpecError, match="same rank"):
        b.add(Mul(), "x", b.add(Flatten(), "x"))
    with pytest.raises(SpecError, match="equal other dimensions"):
        b.add(Concat(0), "x", b.add(MaxPool(2, 2), "x"))


def test_validate_catches_broken_graphs():
    g = _tiny()
    g.nodes.reverse()
    with pytest.raises(SpecError, match="topological order"):
        g.validate()
    g = _tiny()
    g.node("c1").weight = g.node("c1").weight.astype(np.float64)
    with pytest.raises(SpecError, match=r"'c1' \(conv2d\): weight must be float32"):
        g.validate()
    g = _tiny()
    g.node("c1").bias = None
    with pytest.raises(SpecError, match="bias array is missing"):
        g.validate()
    g = _tiny()
    g.nodes.append(Node("again", Relu(), ("x",), "res"))
    with pytest.raises(SpecError, match="'res' is already defined"):
        g.validate()
    g = _tiny()
    g.outputs = ["nope"]
    with pytest.raises(SpecError, match="graph output 'nope'"):
        g.validate()
    with pytest.raises(SpecError, match="takes 2 inputs"):
        Graph("g", {"x": (4,)}, [Node("a", Add(), ("x",), "y")], ["y"]).validate()


def test_every_op_has_a_kernel():
    assert set(OPS) == set(float_exec._KERNELS)


def _naive_conv(x, w, b, stride, pads, groups):
    k, cg, r, s = w.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr)))
    ho = (xp.shape[1] - r) // stride[0] + 1
    wo = (xp.shape[2] - s) // stride[1] + 1
    out = np.zeros((k, ho, wo))
    for o in range(k):
        g = o // (k // groups)
        for i in range(ho):
            for j in range(wo):
                patch = xp[g * cg:(g + 1) * cg, i * stride[0]:i * stride[0] + r,
                           j * stride[1]:j * stride[1] + s]
                out[o, i, j] = (patch * w[o]).sum() + b[o]
    return out


@settings(max_examples=25, deadline=None, derandomize=True)
@given(groups=st.sampled_from([1, 2, 4]), k_per_group=st.integers(1, 3),
       r=st.integers(1, 3), s=st.integers(1, 3), stride=st.tuples(st.integers(1, 2),
                                                                   st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 2)] * 4), h=st.integers(3, 7), w=st.integers(3, 7))
def test_conv_matches_naive_loops(groups, k_per_group, r, s, stride, pads, h, w):
    rng = np.random.default_rng(h * 10 + w)
    c, k = 4, groups * k_per_group
    x = rng.normal(size=(c, h, w)).astype(np.float32)
    weight = rng.normal(size=(k, c // groups, r, s)).astype(np.float32)
    bias = rng.normal(size=k).astype(np.float32)
    b = GraphBuilder("conv", {"x": (c, h, w)})
    g = b.build(b.add(Conv2d(c, k, (r, s), stride, pads, groups), "x", weight=weight, bias=bias))
    got = float_exec.run(g, x)[g.outputs[0]]
    np.testing.assert_allclose(got, _naive_conv(x, weight, bias, stride, pads, groups),
                               rtol=1e-4, atol=1e-4)


def _naive_pool(x, op):
    """Window by window; windows are clipped to the input (+ explicit padding for the divisor
    with count_include_pad)."""
    c, ho, wo = op.infer([x.shape])
    (r, s), (sh, sw), (pt, pl, pb, pr) = op.kernel, op.stride, op.pads
    out = np.zeros((c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            h0, w0 = i * sh - pt, j * sw - pl
            h1, w1 = min(h0 + r, x.shape[1]), min(w0 + s, x.shape[2])
            window = x[:, max(h0, 0):h1, max(w0, 0):w1]
            if isinstance(op, MaxPool):
                out[:, i, j] = window.max(axis=(1, 2))
            else:
                if op.count_include_pad:
                    n = ((min(h0 + r, x.shape[1] + pb) - h0) * (min(w0 + s, x.shape[2] + pr) - w0))
                else:
                    n = window.shape[1] * window.shape[2]
                out[:, i, j] = window.sum(axis=(1, 2)) / n
    return out


@pytest.mark.parametrize("op", [
    MaxPool(3, 2, 1), MaxPool(3, 2, ceil_mode=True), MaxPool(2, 2, (0, 0, 1, 1)),
    AvgPool(3, 2, 1), AvgPool(3, 2, 1, count_include_pad=True),
    AvgPool(3, 2, ceil_mode=True), AvgPool(2, 3, 1, ceil_mode=True, count_include_pad=True),
])
def test_pools_match_naive_loops(op):
    x = np.random.default_rng(0).normal(size=(3, 8, 9)).astype(np.float32)
    b = GraphBuilder("pool", {"x": x.shape})
    g = b.build(b.add(op, "x"))
    np.testing.assert_allclose(float_exec.run(g, x)[g.outputs[0]], _naive_pool(x, op), rtol=1e-5)


def test_elementwise_kernels():
    x = np.linspace(-8, 8, 12, dtype=np.float32).reshape(3, 2, 2)
    b = GraphBuilder("ew", {"x": x.shape})
    gate = b.add(Sigmoid(), b.add(GlobalAvgPool(), "x"))
    se = b.add(Mul(), "x", gate)
    six = b.add(Clip(0.0, 6.0), "x")
    soft = b.add(Softmax(0), b.add(Flatten(), "x"))
    up = b.add(Resize((4, 4), "nearest"), "x")
    same = b.add(Resize((2, 2)), "x")
    out = float_exec.run(b.build(se, six, soft, up, same), x)
    mean = x.mean(axis=(1, 2), keepdims=True, dtype=np.float64)
    np.testing.assert_allclose(out[se], x * (1 / (1 + np.exp(-mean))), rtol=1e-6)
    assert out[six].min() == 0 and out[six].max() == 6
    assert out[soft].sum() == pytest.approx(1.0) and out[soft].argmax() == 11
    np.testing.assert_array_equal(out[up], x.repeat(2, axis=1).repeat(2, axis=2))
    np.testing.assert_array_equal(out[same], x)


def test_run_checks_weights_and_inputs():
    with pytest.raises(SpecError, match=r"no weights \(node 'c1'\).*random_weights"):
        float_exec.run(_tiny(weights=False), np.zeros((2, 6, 6)))
    with pytest.raises(SpecError, match=r"shape \(6, 6\), the graph expects \(2, 6, 6\)"):
        float_exec.run(_tiny(), np.zeros((6, 6)))
    everything = float_exec.run(_tiny(), np.ones((2, 6, 6)), keep_all=True)
    assert set(everything) == {"x", *(n.output for n in _tiny().nodes)}


def test_docs_example_runs(capsys):
    """The example in docs/models.md stays runnable."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    code = text.split("Example (runs as is):\n\n```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/models.md", "exec"), {})
    assert capsys.readouterr().out.rstrip().endswith("(10,)")
