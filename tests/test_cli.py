"""The command line: help, outputs, and one clear line (exit 2) for every user mistake."""

import json
import subprocess
import sys

import pytest

from tessera.cli import main


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.mark.parametrize("argv, phrase", [
    (["simulate", "--arch", "lcp", "--set", "rows=3", "--layer", "gemm:M=1,K=1,N=1"],
     "config field 'rows' = 3 is invalid"),
    (["simulate", "--arch", "lcp", "--layer", "conv:C=3,K=8"], "missing key 'H'"),
    (["simulate", "--preset", "nope", "--layer", "gemm:M=1,K=1,N=1"], "--preset 'nope'"),
    (["compile", "--arch", "lcp", "--set", "abuf_depth=16", "--layer",
      "conv:C=1,K=1,H=9,W=9,R=5"], "does not fit"),
    (["simulate", "/nonexistent/program"], "is not a program directory"),
    (["crosscheck", "--arch", "lcp", "--layer", "gemm:M=1,K=1,N=1,pool=2"], "pool=2"),
    (["simulate", "--arch", "lcp", "--layer", "gemm:M=1,K=1,N=1", "--compare", "nope"],
     "--compare 'nope' is invalid"),
])
def test_user_mistakes_give_one_line_and_exit_2(argv, phrase, capsys):
    assert main(argv) == 2
    line = _err(capsys)
    assert line.startswith("tessera: error:") and phrase in line, line


def test_no_traceback_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "tessera.cli", "simulate", "--arch", "lcp",
                        "--layer", "conv:C=x"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("tessera: error:")


def test_every_command_has_help():
    from tessera.cli import COMMANDS
    for cmd in COMMANDS:
        r = subprocess.run([sys.executable, "-m", "tessera.cli", cmd, "--help"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "usage: tessera" in r.stdout, cmd


def test_simulate_json_and_program_round_trip(tmp_path, capsys):
    spec = "conv:C=5,K=6,H=9,W=9,pad=1,stride=2,relu"
    assert main(["simulate", "--arch", "lcp", "--layer", spec, "--layer",
                 "conv:C=6,K=4,H=5,W=5,R=1", "--json", str(tmp_path / "a.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    assert [l["name"] for l in a["layers"]] == ["conv0", "conv1"]
    for key in ("name", "cycles", "macs", "energy_pj", "latency_us", "utilization"):
        assert key in a["layers"][0]
    assert a["total"]["cycles"] == sum(l["cycles"] for l in a["layers"])
    assert a["total"]["macs"] == sum(l["macs"] for l in a["layers"])
    assert abs(a["total"]["energy_pj"] - sum(l["energy_pj"] for l in a["layers"])) < 1e-6 * \
        a["total"]["energy_pj"]
    assert main(["compile", "--arch", "lcp", "--layer", spec, "--layer",
                 "conv:C=6,K=4,H=5,W=5,R=1", "-o", str(tmp_path / "prog")]) == 0
    assert (tmp_path / "prog" / "commands.txt").read_text().startswith("     0 HEADER")
    assert main(["simulate", str(tmp_path / "prog"), "--json", str(tmp_path / "b.json")]) == 0
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["total"]["cycles"] == a["total"]["cycles"]
    # Latency and clock may change; the array may not.
    assert main(["simulate", str(tmp_path / "prog"), "--set", "dram_latency=50"]) == 0
    assert main(["simulate", str(tmp_path / "prog"), "--set", "rows=8", "--set", "cols=8"]) == 2
    assert "compiled for" in _err(capsys)


def test_simulate_compares_configurations_on_the_same_layers(tmp_path, capsys):
    """--compare runs the same layers on another configuration; each run equals its own
    simulation and the ratios are to the first."""
    spec = "conv:C=24,K=16,H=12,W=12,R=3,pad=1,relu"
    assert main(["simulate", "--preset", "smartdeal-small", "--layer", spec, "--compare",
                 "lcp-8x16", "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "comparison (x: this / smartdeal-small)" in out
    c = json.loads((tmp_path / "c.json").read_text())
    assert main(["simulate", "--preset", "lcp-8x16", "--layer", spec, "--json",
                 str(tmp_path / "l.json")]) == 0
    alone = json.loads((tmp_path / "l.json").read_text())
    other, = c["compare"]
    assert other["label"] == "lcp-8x16" and other["report"]["total"] == alone["total"]
    assert other["cycles"] == alone["total"]["cycles"] != c["total"]["cycles"]
    assert other["energy_uj"] == pytest.approx(alone["total"]["energy_pj"] / 1e6)
    assert main(["compile", "--arch", "lcp", "--layer", spec, "-o", str(tmp_path / "p")]) == 0
    assert main(["simulate", str(tmp_path / "p"), "--compare", "lcp-8x16"]) == 2
    assert "--compare needs layers" in _err(capsys)


def test_generate_block_alone_and_deterministically(tmp_path):
    for d in ("a", "b"):
        assert main(["generate", "--arch", "lcp", "--block", "array", "-o",
                     str(tmp_path / d)]) == 0
    a = (tmp_path / "a" / "lcp_array.v").read_text()
    assert a == (tmp_path / "b" / "lcp_array.v").read_text()
    assert "module lcp_array" in a
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["arch"] == "lcp"
    ports = json.loads((tmp_path / "a" / "ports.json").read_text())
    assert "sums" in json.dumps(ports)


def test_unknown_block_is_rejected(capsys):
    assert main(["generate", "--arch", "lcp", "--block", "nope", "-o", "/tmp/x"]) == 2
    assert "--block 'nope' is unknown" in _err(capsys)
