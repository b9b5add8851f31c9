# amaranth: UnusedElaboratable=no
"""The ASAP7 flow: buffers on FakeRAM macros, ORFS design directories, the yosys estimate."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tessera.asic_flow.activity import Activity, parse_vcd
from tessera.asic_flow.estimate import _part_cells, _report, buffer_macros, fit_cells
from tessera.asic_flow.fakeram import behavioural_models, macros_in
from tessera.asic_flow.liberty import cell_data, merge, read_library
from tessera.asic_flow.parts import Part, planned_macros, table_for
from tessera.asic_flow.platform import DONT_USE_CELLS, PLATFORM_ENV, find_platform
from tessera.asic_flow.synth import SynthResult, synthesize, yosys_available
from tessera.cli import main
from tessera.config import LcpConfig, PRESETS
from tessera.hdl.memories import FAKERAM7, MACRO_HALO_UM, SimpleDualPortRam, asic_memories, \
    plan_bank
from tessera.hdl.top import verilog_for

# The ASAP7 test fixture ships beside the repository on the project's machines.
FIXTURES = [Path(__file__).resolve().parents[2] / "shared" / "asap7",
            Path("/work/shared/asap7")]
TINY_SETS = ["--set", "rows=2", "--set", "cols=2", "--set", "dram_width=2",
             "--set", "abuf_depth=64", "--set", "acc_depth=16"]
needs_yosys = pytest.mark.skipif(not yosys_available(), reason="needs Debian yosys")


@pytest.fixture
def platform_dir():
    """ASAP7 files: $TESSERA_ASAP7_DIR, else the shared fixture of the project's machines."""
    d = os.environ.get(PLATFORM_ENV) or next((str(f) for f in FIXTURES if f.is_dir()), None)
    if d is None:
        pytest.skip(f"needs the ASAP7 platform files: set {PLATFORM_ENV}")
    return d


def _make_vars(text: str) -> dict[str, str]:
    """`export NAME = value` lines of a config.mk, continuation lines joined."""
    text = text.replace("\\\n", " ")
    return {m.group(1): " ".join(m.group(2).split())
            for m in re.finditer(r"^export\s+(\w+)\s*:?=\s*(.*)$", text, re.M)}


def _check_orfs_dir(out: Path, cfg, platform_root: str | None) -> dict[str, str]:
    """What ORFS needs of a design directory, checked as ORFS would read it."""
    mk = _make_vars((out / "config.mk").read_text())
    for key in ("PLATFORM", "DESIGN_NAME", "VERILOG_FILES", "SDC_FILE", "CORE_UTILIZATION",
                "PLACE_DENSITY"):
        assert key in mk, key
    assert mk["PLATFORM"] == "asap7"
    assert mk["TESSERA_DESIGN_DIR"] == "$(abspath $(dir $(DESIGN_CONFIG)))"

    def resolve(path):
        path = path.replace("$(TESSERA_DESIGN_DIR)", str(out))
        if platform_root:
            path = path.replace("$(PLATFORM_DIR)", platform_root)
        return Path(path)
    verilog = resolve(mk["VERILOG_FILES"])
    assert verilog.is_file() and resolve(mk["SDC_FILE"]).is_file()
    text = verilog.read_text()
    assert re.search(rf"^module {mk['DESIGN_NAME']}\(", text, re.M)
    used = macros_in(text)
    assert used, "the ASIC core has no SRAM macros"
    lefs, libs = mk["ADDITIONAL_LEFS"].split(), mk["ADDITIONAL_LIBS"].split()
    for macro in used:
        assert f"$(PLATFORM_DIR)/lef/{macro}.lef" in lefs
        assert f"$(PLATFORM_DIR)/lib/NLDM/{macro}.lib" in libs
    if platform_root:
        assert all(resolve(p).is_file() for p in lefs + libs)
    assert mk["MACRO_PLACE_HALO"].split() == [f"{MACRO_HALO_UM:g}"] * 2
    sdc = (out / "constraint.sdc").read_text()
    period = float(re.search(r"^set clk_period (\S+)$", sdc, re.M).group(1))
    assert period == pytest.approx(1e6 / cfg.clock_mhz, abs=1e-3)
    assert "create_clock -name $clk_name -period $clk_period $clk_port" in sdc
    assert "set_input_delay" in sdc and "set_output_delay" in sdc
    assert f"DESIGN_CONFIG={out.resolve() / 'config.mk'}" in (out / "README.md").read_text()
    return mk


# -- buffers on macros -------------------------------------------------------------------------

def test_macro_table_matches_the_platform_files(platform_dir):
    platform = find_platform(platform_dir)
    for ram in FAKERAM7:
        lef, lib = platform.macro_files(ram.name)
        size = re.search(r"SIZE\s+([\d.]+)\s+BY\s+([\d.]+)", lef.read_text())
        assert (float(size.group(1)), float(size.group(2))) == (ram.lef_w_um, ram.lef_h_um)
        assert f"address_width : {ram.abits};" in lib.read_text()
        assert f"word_width : {ram.width};" in lib.read_text()
        assert platform.macro_data(ram.name).area_um2 > 0


def test_bank_plan_has_the_smallest_footprint():
    def footprint(p):
        h = 2 * MACRO_HALO_UM
        return p.count * (p.macro.lef_w_um + h) * (p.macro.lef_h_um + h)
    for width, depth in [(256, 512), (2048, 64), (32, 64), (64, 8), (39, 4096), (8, 2)]:
        plan = plan_bank(width, depth)
        assert plan.rows * plan.macro.depth >= depth and plan.cols * plan.macro.width >= width
        for ram in FAKERAM7:
            other = -(-depth // ram.depth) * -(-width // ram.width)
            h = 2 * MACRO_HALO_UM
            assert footprint(plan) <= other * (ram.lef_w_um + h) * (ram.lef_h_um + h) + 1e-6
    big = PRESETS["lcp-asap7-32x64"].build()
    assert plan_bank(8 * big.rows, big.abuf_depth // 2).macro.name == "fakeram7_256x256"


def test_asic_buffers_need_a_banking_style_and_a_power_of_two_depth():
    with pytest.raises(TypeError, match="banking"):
        SimpleDualPortRam(8, 16, "x", asic=True)
    with pytest.raises(TypeError, match="power-of-two"):
        SimpleDualPortRam(8, 24, "x", banking="lsb", asic=True)
    with pytest.raises(TypeError, match="banking must be"):
        SimpleDualPortRam(8, 16, "x", banking="middle")
    assert SimpleDualPortRam(8, 24, "x").plan is None          # simulation builds: lib.memory


def test_asic_core_instantiates_the_planned_macros_and_sim_core_none():
    cfg = PRESETS["lcp-8x16"].build()
    with asic_memories():
        name, text, _ = verilog_for(cfg)
    abuf, acc = plan_bank(8 * cfg.rows, cfg.abuf_depth // 2), \
        plan_bank(cfg.acc_width * cfg.cols, cfg.acc_depth // 2)
    assert abuf.rows == 2                                        # the address splits a bank
    want = {}
    for plan in (abuf, acc):
        want[plan.macro.name] = want.get(plan.macro.name, 0) + 2 * plan.count
    assert macros_in(text) == dict(sorted(want.items()))
    assert buffer_macros(text, name) == {"abuf": (abuf.macro.name, abuf.cols),
                                         "acc": (acc.macro.name, acc.cols)}
    _, sim_text, _ = verilog_for(cfg)
    assert macros_in(sim_text) == {}
    models = behavioural_models(macros_in(text))
    assert all(f"module {m}(" in models for m in macros_in(text))


@pytest.mark.rtl
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
@pytest.mark.parametrize("preset", ["lcp-tiny", "lcp-8x16"])
def test_asic_core_on_single_port_macro_models_matches_golden(preset, tmp_path):
    """Banked single-port macros behind the same ports: outputs and cycles are unchanged."""
    from tessera.backends import backend, golden_outputs
    from tessera.commands._common import layer_shapes
    from tessera.crosscheck import random_program
    from tessera.sim.rtl.runner import run_programs

    cfg = PRESETS[preset].build()
    with asic_memories():
        _, text, _ = verilog_for(cfg)
    models = tmp_path / "fakeram_models.v"
    models.write_text(behavioural_models(macros_in(text)))
    be = backend(cfg)
    jobs, expected = [], []
    for i, spec in enumerate(["conv:C=6,K=7,H=10,W=9,R=3,pad=1,relu,pool=2",
                              "conv:C=5,K=20,H=7,W=6,R=3,stride=2,pad=1",
                              "gemm:M=11,K=9,N=17,relu"]):
        prog = random_program(cfg, layer_shapes([spec]), i)
        report = be.simulate_program(prog, cfg)
        jobs.append((spec, prog, cfg.dram_latency, 2 * report.total.cycles + 1000))
        expected.append((prog, report.total.cycles))
    results = run_programs(cfg, jobs, tmp_path, asic=True, extra_sources=(models,))
    for (prog, cycles), r in zip(expected, results):
        assert not r.error and r.cycles == cycles, r.name
        for gold, out in zip(golden_outputs(prog), be.read_outputs(prog, r.final_image)):
            assert np.array_equal(gold, out), r.name


# -- ORFS design directory ---------------------------------------------------------------------

def test_without_platform_files_only_orfs_inputs_are_written(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(PLATFORM_ENV, raising=False)
    out = tmp_path / "tiny"
    assert main(["asic", "--arch", "lcp", *TINY_SETS, "-o", str(out)]) == 0
    assert "needs the ASAP7 libraries" in capsys.readouterr().err
    assert not (out / "estimate.json").exists()
    cfg = LcpConfig(rows=2, cols=2, dram_width=2, abuf_depth=64, acc_depth=16)
    _check_orfs_dir(out, cfg, None)


@pytest.mark.slow
def test_paper_asic_design_directory_follows_orfs_conventions(tmp_path, platform_dir,
                                                              monkeypatch):
    """lcp-asap7-32x64 (the paper's ASIC): ORFS inputs only, checked against the platform."""
    monkeypatch.delenv(PLATFORM_ENV, raising=False)
    out = tmp_path / "paper"
    assert main(["asic", "--preset", "lcp-asap7-32x64", "-o", str(out)]) == 0
    mk = _check_orfs_dir(out, PRESETS["lcp-asap7-32x64"].build(), str(Path(platform_dir)))
    assert mk["DESIGN_NAME"] == "lcp_core"


@pytest.mark.parametrize("argv, phrase", [
    (["--platform-dir", "/nonexistent/asap7"], "is not a directory"),
    (["--platform-dir", "{empty}"], "has no lib/NLDM/ folder"),
    (["--platform-dir", "{no_seq}"], "no SEQ RVT TT library"),
    (["--platform-dir", "{no_macro}"], "macro file lef/fakeram7_"),
    (["--platform-dir", "{bad_macro}"], "is not a FakeRAM liberty file"),
    (["--arch", "systolic"], "has no ASIC estimate table"),
])
def test_missing_or_wrong_platform_files_fail_with_one_line(argv, phrase, tmp_path,
                                                            platform_dir, capsys):
    root = Path(platform_dir)
    dirs = {}
    for case in ("empty", "no_seq", "no_macro", "bad_macro"):
        d = tmp_path / case
        d.mkdir()
        if case != "empty":
            (d / "lib" / "NLDM").mkdir(parents=True)
            (d / "lef").mkdir()
            for f in (root / "lib" / "NLDM").iterdir():
                if not (case == "no_seq" and "_SEQ_" in f.name):
                    (d / "lib" / "NLDM" / f.name).symlink_to(f)
            for f in (root / "lef").iterdir():
                if not (case == "no_macro" and f.name.startswith("fakeram7_")):
                    (d / "lef" / f.name).symlink_to(f)
        if case == "bad_macro":
            for f in (d / "lib" / "NLDM").glob("fakeram7_*.lib"):
                f.unlink()
                f.write_text("library (broken) {\n  time_unit : \"1ns\";\n}\n")
        dirs[case] = str(d)
    argv = [a.format(**dirs) for a in argv]
    base = [] if "--arch" in argv else ["--arch", "lcp", *TINY_SETS]
    assert main(["asic", *base, *argv, "-o", str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("tessera: error:") and phrase in line, line


# -- liberty, synthesis, activity, roll-up -------------------------------------------------------

def test_merged_library_drops_dont_use_cells_and_power_groups(platform_dir, tmp_path):
    platform = find_platform(platform_dir)
    lib = read_library(platform.std_libs(), DONT_USE_CELLS)
    assert "DFFHQNx1_ASAP7_75t_R" in lib.cells and "INVx1_ASAP7_75t_R" in lib.cells
    assert not [c for c in lib.cells if c.startswith(("SDF", "ICG")) or "xp" in c]
    path = tmp_path / "map.lib"
    merge(lib, path, keep_power=False)
    text = path.read_text()
    assert "internal_power" not in text and text.count("cell (") == len(lib.cells)
    ff = cell_data(lib, "DFFHQNx1_ASAP7_75t_R")
    assert ff.sequential and ff.clk_to_q_ps > 10 and ff.e_clk_fj > 0 and ff.leakage_pw > 0
    inv = cell_data(lib, "INVx1_ASAP7_75t_R")
    assert not inv.sequential and inv.e_out_fj > 0 and inv.c_in_ff > 0 and inv.area > 0


@pytest.mark.synth
@needs_yosys
def test_one_cell_maps_to_asap7_cells(platform_dir, tmp_path):
    platform = find_platform(platform_dir)
    lib = read_library(platform.std_libs(), DONT_USE_CELLS)
    merge(lib, tmp_path / "map.lib", keep_power=False)
    cfg = PRESETS["lcp-tiny"].build()
    name, text, _ = verilog_for(cfg, "cell")
    (tmp_path / "cell.v").write_text(text)
    r = synthesize(tmp_path / "cell.v", name, tmp_path / "cell", tmp_path / "map.lib", 1250.0)
    flops = sum(n for c, n in r.cells.items() if cell_data(lib, c).sequential)
    assert flops == 32                    # two 8-bit weights and the 16-bit product
    assert all(not c.startswith(("SDF", "ICG")) and "xp" not in c for c in r.cells)
    assert 100 < r.delay_ps < 1250        # an 8x8 multiplier fits an 800 MHz cycle


def test_vcd_toggles_and_enable_time(tmp_path):
    vcd = tmp_path / "t.vcd"
    vcd.write_text("$timescale 1 ps $end\n$scope module bench $end\n$scope module top $end\n"
                   "$var wire 1 ! clk $end\n$var wire 4 # q $end\n$scope module buf $end\n"
                   "$var wire 1 $ r_en $end\n$var wire 4 # d $end\n$upscope $end\n$upscope $end\n"
                   "$upscope $end\n$enddefinitions $end\n"
                   "#0\n0!\nb0000 #\n0$\n#500\n1!\n#1000\n0!\nb0101 #\n1$\n#1500\n1!\n"
                   "#2000\n0!\nb0110 #\n0$\n#2500\n1!\n#3000\n0!\n")
    act = parse_vcd(vcd)
    assert act.cycles == 3
    assert act.toggles[()] == 4 and act.bits[()] == 4            # 0000->0101->0110: 2+2
    assert act.toggles[("buf",)] == 6 and act.bits[("buf",)] == 5    # d as above, r_en 2
    assert act.per_cycle(("buf",), "r_en") == pytest.approx(1 / 3)
    assert act.rates([("",), ("buf",)]) == pytest.approx([4 / (4 * 3), 6 / (5 * 3)])


def test_roll_up_multiplies_extrapolates_and_reports_separate_shares(platform_dir):
    """The hierarchical arithmetic and the hook for separately reported groups (SmartDeal's
    rebuild engines), on LCP parts with made-up synthesis results."""
    platform = find_platform(platform_dir)
    lib = read_library(platform.std_libs(), DONT_USE_CELLS)
    cfg = PRESETS["lcp-asap7-32x64"].build()
    table = table_for(cfg)
    inv, ff = "INVx1_ASAP7_75t_R", "DFFHQNx1_ASAP7_75t_R"
    results = {}
    for part in table.parts:
        for lanes, _ in part.samples or ((0, cfg),):
            results[part.name, lanes] = SynthResult({inv: 10.0 + lanes, ff: 2.0 + 2 * lanes},
                                                    100.0 + lanes)
    trees = Part("adder_tree", "adder_tree", cfg.cols, scopes=("array.tree_*",),
                 group="rebuild_engine")
    from dataclasses import replace
    table = replace(table, parts=tuple(trees if p.name == "adder_tree" else p
                                       for p in table.parts),
                    separate=("rebuild_engine", "array"))
    act = Activity(cycles=10, toggles={(): 5, ("array", "tree_0"): 10, ("acc",): 0},
                   bits={(): 10, ("array", "tree_0"): 10, ("acc",): 1},
                   high={(("acc",), "r_en"): 5})
    for p in table.parts:                  # every part needs signals in the activity run
        scope = tuple(p.scopes[0].replace("*", "0").split(".")) if p.scopes[0] else ()
        act.toggles.setdefault(scope, 1)
        act.bits.setdefault(scope, 1)
    macro = platform.macro_data("fakeram7_64x256")
    report = _report(cfg, table, lib, results, act, {}, {macro.name: macro},
                     {macro.name: 16}, {"acc": (macro.name, 8)}, 1250.0)
    a_inv, a_ff = cell_data(lib, inv).area, cell_data(lib, ff).area
    parts = {p["name"]: p for p in report["parts"]}
    assert parts["cell"]["total_area_um2"] == pytest.approx(2048 * (10 * a_inv + 2 * a_ff), 1e-4)
    # the PPU is sampled at 2 and 4 lanes and extrapolated to 32: 10+l inverters, 2+2l flops
    assert parts["ppu"]["area_um2"] == pytest.approx(42 * a_inv + 66 * a_ff, 1e-4)
    assert parts["ppu"]["flops"] == 66 and "extrapolated to 32 lanes" in parts["ppu"]["method"]
    total = report["total_area_um2"]
    assert report["macro_area_um2"] == pytest.approx(16 * macro.area_um2)
    assert report["separate_shares_percent"]["rebuild_engine"] == pytest.approx(
        100 * parts["adder_tree"]["total_area_um2"] / total, abs=1e-3)
    assert report["critical_path_ps"] > 104 and report["critical_part"] == "ppu"
    assert report["buffers"]["acc"]["accesses_per_cycle"] == 0.5
    assert report["power_breakdown_mw"]["macro_leakage"] == pytest.approx(
        16 * macro.leakage_pw * 1e-9, 1e-3)


def test_smartdeal_table_reports_the_rebuild_engines_apart():
    cfg = PRESETS["smartdeal-paper"].build()
    table = table_for(cfg)
    engines = table.part("rebuild_engines")
    assert engines.count == cfg.dim_m * cfg.dim_c and engines.group in table.separate
    assert table.part("mac").count == cfg.dim_m * cfg.dim_c * cfg.dim_f
    assert table.part("index_selector").count == cfg.dim_c
    assert table.reference.shares == {"rebuild_engine": 0.64}
    # the paper core: its glue fitted from small cores, its selectors extrapolated in dim_c,
    # its macros planned from the buffer list (its whole Verilog is impractical here)
    core = table.part("core")
    assert core.fit and set(core.blackbox) == {"line_*", "sel_*"} and not table.whole_core
    for sample in core.fit.samples:          # every sample is a valid, smaller configuration
        assert sample.dim_m <= 4 and sample.dim_c <= 4 and sample.dim_f <= 4
        assert (sample.S, sample.n_exp, sample.acc_width) == (cfg.S, cfg.n_exp, cfg.acc_width)
    sel = table.part("index_selector")
    assert [lanes for lanes, _ in sel.samples] == [2, 4] and sel.lanes == cfg.dim_c
    assert all(c.dim_f == cfg.dim_f and c.dim_m == cfg.dim_m for _, c in sel.samples)
    # a small preset is synthesized as it is, and converted whole
    small = table_for(PRESETS["smartdeal-small"].build())
    assert small.whole_core and not small.part("core").fit
    assert not small.part("index_selector").samples


@pytest.mark.parametrize("preset", ["smartdeal-tiny", "smartdeal-small"])
def test_smartdeal_planned_macros_are_the_generated_cores(preset):
    """The buffer list the paper-size estimate plans its macros from matches what the ASIC
    core really instantiates."""
    cfg = PRESETS[preset].build()
    with asic_memories():
        name, text, _ = verilog_for(cfg)
    assert planned_macros(cfg, table_for(cfg)) == (macros_in(text), buffer_macros(text, name))
    with asic_memories():
        sel_name, sel_text, _ = verilog_for(cfg, "index_selector")
    assert re.search(rf"^module {sel_name}\(", sel_text, re.M) and not macros_in(sel_text)


def test_fit_recovers_a_linear_block():
    """A part whose cells are exactly linear in the features is recovered exactly."""
    cfg = PRESETS["smartdeal-paper"].build()
    part = table_for(cfg).part("core")
    coef = {"INVx1_ASAP7_75t_R": (5, 1, 0.5, 0, 2), "DFFHQNx1_ASAP7_75t_R": (100, 3, 0, 1, 4)}

    def cells(c):
        x = part.fit.features(c)
        return {t: float(sum(a * b for a, b in zip(k, x))) for t, k in coef.items()}
    results = {("core", i): SynthResult(cells(c), 50.0 + i)
               for i, c in enumerate(part.fit.samples, 1)}
    got, record = fit_cells(part, results, cfg, lambda cs: sum(cs.values()))
    assert got == pytest.approx(cells(cfg))
    assert record["max_error_percent"] == pytest.approx(0, abs=1e-6)
    assert record["target_features"]["dim_m*dim_c*dim_f"] == 64 * 16 * 8
    assert record["area_coefficients_um2"]["dim_m"] == pytest.approx(4)
    _, delay, how = _part_cells(part, results, cfg, lambda cs: sum(cs.values()))
    assert delay == 50.0 + len(part.fit.samples) and "fitted over" in how


def test_fit_never_extrapolates_a_negative_count():
    """A cell type that shrinks across the samples (synthesis picked other cells there) is not
    extrapolated below zero: each type is a non-negative combination of the features, so the
    fitted total is the sum of what the parts add (a clipped unconstrained fit inflated it)."""
    cfg = PRESETS["smartdeal-paper"].build()
    part = table_for(cfg).part("core")
    results = {("core", i): SynthResult({"BUFx2_ASAP7_75t_R": 40.0 - 3 * c.dim_m * c.dim_c,
                                         "INVx1_ASAP7_75t_R": 10.0 * c.dim_m}, 1.0)
               for i, c in enumerate(part.fit.samples, 1)}
    got, record = fit_cells(part, results, cfg, lambda cs: sum(cs.values()))
    assert got["BUFx2_ASAP7_75t_R"] >= 0
    assert got["INVx1_ASAP7_75t_R"] == pytest.approx(640)
    linear = sum(record["area_coefficients_um2"][k] * v
                 for k, v in record["target_features"].items())
    assert sum(got.values()) == pytest.approx(linear, rel=1e-3)


def test_paper_smartdeal_orfs_directory_says_how_to_add_the_verilog(tmp_path, monkeypatch,
                                                                    capsys):
    """smartdeal-paper: every ORFS input but the core's Verilog, which is impractical to
    convert here; the README gives the command that adds it."""
    monkeypatch.delenv(PLATFORM_ENV, raising=False)
    out = tmp_path / "paper"
    assert main(["asic", "--preset", "smartdeal-paper", "-o", str(out)]) == 0
    assert "not smartdeal_core.v" in capsys.readouterr().err
    cfg = PRESETS["smartdeal-paper"].build()
    mk = _make_vars((out / "config.mk").read_text())
    assert mk["DESIGN_NAME"] == "smartdeal_core" and not (out / "smartdeal_core.v").exists()
    macros, _ = planned_macros(cfg, table_for(cfg))
    assert mk["ADDITIONAL_LEFS"].split() == [f"$(PLATFORM_DIR)/lef/{m}.lef" for m in macros]
    readme = (out / "README.md").read_text()
    assert (f"tessera asic --platform asap7 --preset smartdeal-paper --core-verilog yes "
            f"-o {out}") in readme
    sdc = (out / "constraint.sdc").read_text()
    assert re.search(r"^set clk_period 1000$", sdc, re.M)
    assert main(["asic", "--arch", "lcp", *TINY_SETS, "--core-verilog", "no",
                 "-o", str(tmp_path / "lcp")]) == 2
    assert "needs the core's Verilog" in capsys.readouterr().err


# -- the whole command ----------------------------------------------------------------------------

@pytest.mark.synth
@needs_yosys
def test_asic_command_writes_orfs_inputs_and_estimate(tmp_path, platform_dir, monkeypatch):
    monkeypatch.setenv(PLATFORM_ENV, platform_dir)
    out = tmp_path / "tiny"
    assert main(["asic", "--arch", "lcp", *TINY_SETS, "-o", str(out)]) == 0
    cfg = LcpConfig(rows=2, cols=2, dram_width=2, abuf_depth=64, acc_depth=16)
    _check_orfs_dir(out, cfg, platform_dir)
    r = json.loads((out / "estimate.json").read_text())
    for key in ("cell_area_um2", "macro_area_um2", "critical_path_ps", "clock_period_ps",
                "power_mw", "method"):
        assert key in r
    assert r["clock_period_ps"] == 10000.0 and r["meets_timing"]
    assert r["cell_area_um2"] == pytest.approx(sum(p["total_area_um2"] for p in r["parts"]),
                                               abs=0.01)
    used = macros_in((out / "lcp_core.v").read_text())
    assert r["macro_area_um2"] == pytest.approx(sum(
        n * find_platform(platform_dir).macro_data(m).area_um2 for m, n in used.items()))
    assert r["activity"]["outputs_match"] and r["activity"]["cycles"] > 0
    assert 0 < r["power_mw"] == pytest.approx(sum(r["power_breakdown_mw"].values()), abs=0.01)
    assert 0 < r["separate_shares_percent"]["array"] < 100
    assert r["reference"]["area_mm2"] == 0.107 and "Hierarchical" in r["method"]
