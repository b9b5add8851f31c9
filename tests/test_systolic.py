"""The systolic baseline: exact SCALE-Sim v3 parity, its internals, and the corrected model."""

import csv
import io
import json
import math
import os
import random
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tessera.compiler.topology import TopologyLayer, read_topology
from tessera.config import PRESETS, SystolicConfig, resolve_config
from tessera.errors import ConfigError
from tessera.sim.systolic import (_event_fetch, _ifmap_fetch, _Im2col, _ofmap_drain, _OfmapStream,
                                  _Plan, _window, simulate_layer, simulate_topology)

DATA = Path(__file__).resolve().parent / "data" / "scalesim"
RUNS = list(csv.DictReader((DATA / "runs.csv").read_text().splitlines()))
REFERENCE = defaultdict(list)
for _row in csv.DictReader((DATA / "reference.csv").read_text().splitlines()):
    REFERENCE[_row["run"]].append(_row)
FLOATS = ("overall_util_pct", "mapping_efficiency_pct", "compute_util_pct")


def _config(run: dict) -> SystolicConfig:
    return SystolicConfig(rows=int(run["rows"]), cols=int(run["cols"]), dataflow=run["dataflow"],
                          ifmap_sram_kb=int(run["ifmap_kb"]), filter_sram_kb=int(run["filter_kb"]),
                          ofmap_sram_kb=int(run["ofmap_kb"]))


def _mismatches(report, rows: list[dict]) -> list:
    """Every SCALE-Sim counter that differs: compute report, access counts, start/stop cycles."""
    assert [layer.name for layer in report.layers] == [row["layer"] for row in rows]
    bad = []
    for layer, row in zip(report.layers, rows):
        mine = {**layer.info, **layer.info["detail"]}
        for key, value in row.items():
            if key in ("run", "layer"):
                continue
            same = (math.isclose(float(value), mine[key], rel_tol=1e-12) if key in FLOATS
                    else int(value) == mine[key])
            if not same:
                bad.append((layer.name, key, value, mine[key]))
    return bad


@pytest.mark.parametrize("run", RUNS, ids=[run["run"] for run in RUNS])
def test_matches_recorded_scalesim(run):
    """Per layer, every number of SCALE-Sim's COMPUTE and DETAILED_ACCESS reports, exactly."""
    report = simulate_topology(_config(run), read_topology(DATA / run["topology"]))
    assert not _mismatches(report, REFERENCE[run["run"]])


@pytest.mark.skipif(not os.environ.get("SCALESIM_PYTHON"),
                    reason="set SCALESIM_PYTHON to a python with scalesim to compare live")
@pytest.mark.parametrize("topology, form, rows, cols, dataflow, kb", [
    ("stress.csv", "conv", 5, 7, "os", (1, 2, 1)),
    ("stress.csv", "conv", 6, 3, "ws", (2, 1, 1)),
    ("stress.csv", "conv", 9, 4, "is", (1, 1, 2)),
    ("gemm.csv", "gemm", 12, 20, "ws", (3, 2, 1)),
])
def test_matches_live_scalesim(topology, form, rows, cols, dataflow, kb):
    out = subprocess.run([os.environ["SCALESIM_PYTHON"], str(DATA / "record.py"), "--one", "live",
                          str(DATA / topology), form, str(rows), str(cols), dataflow,
                          *map(str, kb)], capture_output=True, text=True, check=True).stdout
    cfg = SystolicConfig(rows=rows, cols=cols, dataflow=dataflow, ifmap_sram_kb=kb[0],
                         filter_sram_kb=kb[1], ofmap_sram_kb=kb[2])
    report = simulate_topology(cfg, read_topology(DATA / topology))
    assert not _mismatches(report, list(csv.DictReader(io.StringIO(out))))


def test_recorded_runs_cover_the_acceptance_matrix():
    runs = {(r["topology"], r["rows"], r["cols"], r["dataflow"]) for r in RUNS}
    for topology in ("resnet18.csv", "gemm.csv"):
        for array in (("32", "32"), ("16", "64")):
            for df in ("os", "ws", "is"):
                assert (topology, *array, df) in runs
    assert sum(len(rows) for rows in REFERENCE.values()) > 150


# -- internals against literal copies of SCALE-Sim's loops ---------------------------------------

def _ofmap_demand_rows(plan: _Plan) -> np.ndarray:
    """Writes per demand row, building SCALE-Sim's OFMAP demand matrix fold by fold."""
    R, C, T = plan.R, plan.C, plan.T
    counts = []
    for g in range(plan.folds):
        fc, fr = plan.fold(g)
        ru, cu = int(plan.ru[fr]), int(plan.cu[fc])
        if plan.df == "os":
            block = np.zeros((R, C))
            block[:ru, :cu] = 1
            mat = np.vstack([np.zeros((T - 1, C)), np.flip(block, 0)])
        else:
            block = np.zeros((T, C))
            block[:, :cu] = 1
            mat = np.vstack([np.zeros((2 * R - 1, C)), block])
        skewed = np.zeros((len(mat) + C - 1, C))
        for c in range(C):
            skewed[c:c + len(mat), c] = mat[:, c]
        counts.append(skewed.sum(axis=1))
    return np.concatenate(counts).astype(int)


def _scalesim_write_buffer(counts: np.ndarray, words: int, bw: int) -> tuple[int, int, int, int]:
    """SCALE-Sim's write_buffer.service_writes / empty_drain_buf / empty_all_buffers, element by
    element: (DRAM writes, stall cycles, first and last drain cycle)."""
    active = math.ceil(words * 0.5)
    drain_lines = math.ceil((words - active) / bw)
    free, line_idx, lines, start, drain_end, writes, stall = words, 0, [], 0, 0, 0, 0
    cycles = []

    def drain(cycle):
        nonlocal start, free, writes
        end = min(start + drain_lines, len(lines))
        data = (end - start) * bw - (bw - lines[end - 1])
        writes += data
        free += data
        cycles.extend(range(cycle, cycle + end - start))
        start = end
        return cycles[-1]

    for i, w in enumerate(counts):
        cur = i + stall
        offset = 0
        for _ in range(w):
            line_idx += 1
            free -= 1
            if line_idx == bw:
                lines.append(bw)
                line_idx = 0
            if cur < drain_end:
                if not free > 0:
                    offset += drain_end - cur
                    cur = drain_end
            elif free < active:
                if line_idx:
                    lines.append(line_idx)
                    line_idx = 0
                drain_end = drain(cur)
        stall += offset
    if line_idx:
        lines.append(line_idx)
    cycle = len(counts) - 1 + stall
    while start < len(lines):
        cycle = drain(cycle) + 1
    return writes, stall, min(cycles), max(cycles)


def test_drain_replay_matches_scalesim_write_buffer():
    rng = random.Random(7)
    for _ in range(60):
        layer = TopologyLayer("x", rng.randint(3, 24), rng.randint(3, 24), rng.choice([1, 2, 3]),
                              rng.choice([1, 3]), rng.randint(1, 8), rng.randint(1, 70),
                              rng.choice([1, 2]))
        plan = _Plan(rng.choice(["os", "ws", "is"]), rng.choice([1, 2, 4, 8]),
                     rng.choice([1, 3, 8, 32, 64]), _Im2col.of(layer, True))
        words = rng.choice([64, 100, 256, 1024])
        counts = _ofmap_demand_rows(plan)
        writes, stall, first, last = _scalesim_write_buffer(counts, words, plan.C)
        drain = _ofmap_drain(_OfmapStream(plan), words, plan.C, len(counts))
        assert stall == 0
        assert (drain.dram_writes, drain.first_cycle, drain.last_cycle) == (writes, first, last)


def test_all_new_shortcut_agrees_with_the_event_replay():
    """WS with channel groups far apart skips the replay; both give the same reads and resets."""
    plan = _Plan("ws", 16, 8, _Im2col.of(TopologyLayer("x", 20, 20, 3, 3, 64, 12, 1), True))
    W = _window(1, 1)[0]
    assert (3 * plan.op.M * 16 >= W) and plan.op.used_words >= W
    assert _ifmap_fetch(plan, W) == _event_fetch(plan, W)


def test_large_sram_fetches_each_word_once():
    layer = TopologyLayer("x", 30, 30, 3, 3, 16, 40, 1)
    for df in ("os", "ws", "is"):
        info = simulate_layer(SystolicConfig(rows=8, cols=8, dataflow=df, ifmap_sram_kb=1024,
                                             filter_sram_kb=1024), layer).info
        assert info["dram_ifmap_reads"] == 30 * 30 * 16
        assert info["dram_filter_reads"] == 3 * 3 * 16 * 40


# -- the report ------------------------------------------------------------------------------------

def test_report_for_resnet18():
    layers = read_topology(DATA / "resnet18.csv")
    cfg = resolve_config("systolic", "systolic-32x32-ws")
    report = simulate_topology(cfg, layers)
    assert report.arch == "systolic" and report.peak_macs_per_cycle == 1024
    assert report.banks == {"ifmap": 32768, "filter": 32768, "ofmap": 32768}
    for layer, topo in zip(report.layers, layers):
        assert sum(layer.phases.values()) == layer.cycles == layer.info["compute_cycles"]
        assert layer.macs == topo.macs
        assert layer.events["op.mac8"] == topo.macs
        assert layer.events["dram.read_bytes"] == (layer.info["dram_ifmap_reads"]
                                                   + layer.info["dram_filter_reads"])
        assert layer.events["sram.ifmap.read_bytes"] == layer.info["sram_ifmap_reads"]
        assert layer.energy_pj["total"] > layer.energy_pj["dram"] > 0
    total = report.total
    assert total.cycles == sum(layer.cycles for layer in report.layers)
    json.dumps(report.to_json())


def test_word_size_scales_bytes_not_words():
    layer = TopologyLayer("x", 18, 18, 3, 3, 8, 24, 1)
    one = simulate_layer(SystolicConfig(rows=8, cols=8, ifmap_sram_kb=2, filter_sram_kb=2,
                                        ofmap_sram_kb=2), layer)
    two = simulate_layer(SystolicConfig(rows=8, cols=8, ifmap_sram_kb=4, filter_sram_kb=4,
                                        ofmap_sram_kb=4, word_size=2), layer)
    assert one.info == two.info and one.cycles == two.cycles
    assert {k: 2 * v for k, v in one.events.items() if not k.startswith("op.")} == \
        {k: v for k, v in two.events.items() if not k.startswith("op.")}
    assert two.events["op.mac8"] == 4 * one.events["op.mac8"]


# -- the corrected model ---------------------------------------------------------------------------

def test_corrected_mode_fixes_scalesim_errors():
    conv1 = TopologyLayer("Conv1", 224, 224, 7, 7, 3, 64, 2)
    for df in ("os", "ws", "is"):
        cfg = SystolicConfig(dataflow=df, dram_width=32)
        compat = simulate_layer(cfg, conv1)
        fixed = simulate_layer(cfg.replace(scalesim_compat=False), conv1)
        assert compat.macs == 110 * 110 * 64 * 147   # SCALE-Sim's ceil: windows off the input
        assert fixed.macs == 109 * 109 * 64 * 147    # a 224-row input has 109 valid rows
        assert fixed.info["mode"] == "corrected" and "detail" not in fixed.info
        assert sum(fixed.phases.values()) == fixed.cycles
    layer = TopologyLayer("c", 28, 28, 3, 3, 128, 128, 1)  # (H - R) % S == 0: same geometry
    cfg = SystolicConfig(dataflow="os", dram_width=32)
    compat, fixed = (simulate_layer(cfg.replace(scalesim_compat=c), layer) for c in (True, False))
    plan = _Plan("os", 32, 32, _Im2col.of(layer, True))
    assert fixed.phases["compute"] == compat.cycles + 1           # issue #125: off by one
    assert compat.info["sram_ofmap_writes"] - fixed.info["sram_ofmap_writes"] \
        == plan.folds * (32 + 32)                                   # issue #166
    assert fixed.info["dram_ofmap_writes"] == 26 * 26 * 128 < compat.info["dram_ofmap_writes"]


def test_corrected_mode_counts_partial_sums_and_bandwidth():
    layer = TopologyLayer("c", 14, 14, 3, 3, 256, 256, 1)
    M, N, row_folds = 12 * 12, 256, 2304 // 32
    cfg = SystolicConfig(dataflow="ws", scalesim_compat=False, dram_width=32)
    info = simulate_layer(cfg, layer).info
    assert info["sram_ofmap_writes"] == row_folds * M * N
    assert info["sram_ofmap_psum_reads"] == (row_folds - 1) * M * N
    assert info["dram_psum_spill_words"] == 0 and info["dram_ofmap_writes"] == M * N
    spilled = simulate_layer(cfg.replace(ofmap_sram_kb=1), layer).info
    assert spilled["dram_psum_spill_words"] == (row_folds - 1) * M * N
    slow = simulate_layer(cfg.replace(dram_width=1), layer)
    dram_words = (slow.info["dram_ifmap_reads"] + slow.info["dram_filter_reads"]
                  + slow.info["dram_ofmap_writes"])
    assert slow.phases["dram_stall"] == dram_words - slow.phases["compute"] > 0


# -- configuration ---------------------------------------------------------------------------------

def test_presets_and_validation():
    assert resolve_config("systolic").to_dict()["dataflow"] == "os"
    for df in ("os", "ws", "is"):
        cfg = PRESETS[f"systolic-32x32-{df}"].build()
        assert (cfg.rows, cfg.cols, cfg.ifmap_sram_kb, cfg.dataflow) == (32, 32, 64, df)
    cfg = SystolicConfig()
    assert cfg.replace(scalesim_compat=False).config_hash == cfg.config_hash
    assert cfg.replace(dataflow="ws").config_hash != cfg.config_hash
    with pytest.raises(ConfigError, match="'dataflow' = 'rs' is invalid: allowed is one of os"):
        cfg.with_overrides(["dataflow=rs"])
    with pytest.raises(ConfigError, match="'word_size' = 3 is invalid"):
        cfg.replace(word_size=3)
