"""examples/digits: a real network trained here keeps its accuracy in int8, its Programs compute
what the golden executor computes, and (rtl) the RTL of both accelerators agrees bit for bit."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

_spec = importlib.util.spec_from_file_location(
    "digits_example", Path(__file__).parent.parent / "examples" / "digits" / "run.py")
digits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(digits)


@pytest.fixture(scope="module")
def trained():
    x_train, y_train, x_test, y_test = digits.load_data(0)
    graph = digits.build_graph(digits.train_mlp(x_train, y_train, seed=0))
    return graph, digits.quantized(graph, x_train), x_test, y_test


def test_report_accuracies(tmp_path):
    report = digits.run(tmp_path, rtl_images=0)
    acc = report["accuracy"]
    assert report["data"] == {"train": 1438, "test": 359, "seed": 0}
    assert acc["float"] > 0.95
    assert abs(acc["int8-lcp"] - acc["float"]) <= 0.02
    assert acc["int8-lcp"] == acc["int8-smartdeal"]  # the same integers on both arrays
    assert acc["smartdeal"] > 0.9
    assert json.loads((tmp_path / "report.json").read_text())["accuracy"] == acc
    assert "| float |" in (tmp_path / "report.md").read_text()


def test_programs_carry_the_image_and_compute_the_executors_integers(trained):
    from tessera.backends import golden_outputs
    from tessera.compiler.runtime import compile_graph

    graph, executors, x_test, _ = trained
    for name in ("int8-lcp", "smartdeal"):
        qg = executors[name]
        for img in x_test[:3]:
            (layers, prog), = compile_graph(qg, img)  # one chain: fc1-fc2-fc3
            vals = qg.run_int(img)
            assert layers == ["fc1", "fc2", "fc3"]
            for layer, out in zip(layers, golden_outputs(prog)):
                assert np.array_equal(out.reshape(-1), vals[qg.io[layer][1]])


@pytest.mark.rtl
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
def test_rtl_agrees_with_the_golden_executor(trained, tmp_path):
    _, executors, x_test, y_test = trained
    rows = digits.rtl_check(executors, x_test, y_test, digits.pick_images(y_test, 2), tmp_path)
    assert len(rows) == 4
    for r in rows:
        assert r["golden_equals_executor"] and r["rtl_equals_golden"], r
        assert r["cycles_equal"] and r["rtl_cycles"] == r["sim_cycles"], r
