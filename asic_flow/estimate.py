"""Area, timing and power of a configuration on ASAP7, estimated block by block.

Area: every part of the architecture's table (asic_flow/parts.py) is synthesized alone onto the
ASAP7 RVT TT cells (asic_flow/synth.py) and multiplied by its count; buffers add the FakeRAM
macros the ASIC build instantiates, with the area their liberty states. Timing: the longest
register-to-register path ABC reports in any part, plus the flip-flop's clock-to-Q and setup.
Power: switching activity per part from an RTL simulation (asic_flow/activity.py) applied to the
part's mapped cells with the liberty's internal energy, pin capacitance and leakage, plus clock
pins every cycle, plus the macros' leakage and access energy (docs/asic.md has the formulas and
what they leave out).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tessera.config import ArchConfig
from tessera.hdl.memories import asic_memories

from .activity import run_activity
from .fakeram import macros_in
from .liberty import TYPICAL_LOAD_FF, TYPICAL_SLEW_PS, cell_data, merge, read_library
from .parts import ArchTable, Part, planned_macros, table_for
from .platform import DONT_USE_CELLS, Asap7Platform
from .synth import ABC_DRIVER_CELL, ABC_LOAD_FF, SynthResult, synthesize

__all__ = ["estimate", "buffer_macros"]


@dataclass(frozen=True)
class _Job:
    part: Part
    lanes: int              # key of the synthesis: 0 target, lanes of a sample, fit sample index
    cfg: ArchConfig


def buffer_macros(verilog: str, top: str) -> dict[str, tuple[str, int]]:
    """Buffer instance -> (macro, macros one access touches), from the ASIC core's netlist."""
    out = {}
    for m in re.finditer(r"^module \\" + re.escape(top) + r"\.(\w+)\s*\(.*?^endmodule",
                         verilog, re.M | re.S):
        insts = re.findall(r"^\s*(fakeram7_\d+x\d+)\s+b0_r0_c(\d+)\s*\(", m.group(0), re.M)
        if insts:
            out[m.group(1)] = (insts[0][0], len(insts))
    return dict(sorted(out.items()))


def estimate(cfg: ArchConfig, platform: Asap7Platform, core: tuple[str, str] | None,
             workdir: Path, progress=None, activity_layer: str | None = None) -> dict:
    """The estimate of ``cfg``'s core, whose ASIC netlist ``core`` = (module name, Verilog) is
    what ORFS gets; ``core`` may be None when the architecture's table lists its buffers (the
    whole core is then never converted). Intermediate files go to ``workdir``; ``progress`` is
    a rich Progress."""
    table = table_for(cfg)
    workdir.mkdir(parents=True, exist_ok=True)
    period = 1e6 / cfg.clock_mhz

    def task(description, total=None):
        return progress.add_task(description, total=total) if progress else None

    def advance(t, **kw):
        if progress is not None and t is not None:
            progress.update(t, **kw)

    t_lib = task("merging the ASAP7 libraries", total=1)
    lib = read_library(platform.std_libs(), DONT_USE_CELLS)
    map_lib = workdir / "asap7_rvt_tt_merged.lib"
    merge(lib, map_lib, keep_power=False)
    if core is not None:
        macro_counts, buffers = macros_in(core[1]), buffer_macros(core[1], core[0])
    else:
        macro_counts, buffers = planned_macros(cfg, table)
    macros = {name: platform.macro_data(name) for name in macro_counts}
    advance(t_lib, completed=1)

    jobs = [_Job(p, lanes, c) for p in table.parts for lanes, c in p.configs(cfg)]
    t_syn = task(f"synthesizing {len(jobs)} blocks with yosys", total=len(jobs))
    results: dict[tuple[str, int], SynthResult] = {}
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        futures = []
        for job in jobs:
            suffix = (f"_sample{job.lanes}" if job.part.fit else
                      f"_lanes{job.lanes}" if job.lanes else "")
            path = workdir / (job.part.name + suffix)
            path.mkdir(parents=True, exist_ok=True)
            name, verilog = _verilog(job, cfg, core)
            (path / f"{name}.v").write_text(verilog)
            macro_libs = tuple(platform.macro_files(m)[1] for m in macros_in(verilog))
            futures.append((job, pool.submit(
                synthesize, path / f"{name}.v", name, path, map_lib, period, job.part.blackbox,
                macro_libs)))
        t_act = task(f"simulating {activity_layer or table.activity_layer} for switching "
                     f"activity", total=1)
        activity, act_info = run_activity(table.activity_config,
                                          activity_layer or table.activity_layer,
                                          workdir / "activity")
        advance(t_act, completed=1)
        for job, future in futures:
            results[job.part.name, job.lanes] = future.result()
            advance(t_syn, advance=1)
    return _report(cfg, table, lib, results, activity, act_info, macros, macro_counts,
                   buffers, period)


def _verilog(job: _Job, cfg: ArchConfig, core: tuple[str, str] | None) -> tuple[str, str]:
    from tessera.hdl.top import verilog_for

    if job.part.block == "core" and job.cfg is cfg and core is not None:
        return core
    with asic_memories():
        name, text, _ = verilog_for(job.cfg, job.part.block)
    return name, text


def fit_cells(part: Part, results, cfg: ArchConfig, area) -> tuple[dict[str, float], dict]:
    """A fitted part's cells at ``cfg``: every cell type's count fitted by non-negative least
    squares over the part's features (a structure adds cells, never removes them, and an
    unconstrained fit extrapolates some types to negative counts); and the fit's record
    (features, coefficients and, per sample, the synthesized and the fitted area; ``area(cells)``
    gives um^2)."""
    from scipy.optimize import nnls

    fit = part.fit
    keys = range(1, len(fit.samples) + 1)
    types = sorted(set().union(*(results[part.name, k].cells for k in keys)))
    X = np.array([fit.features(c) for c in fit.samples], dtype=float)
    Y = np.array([[results[part.name, k].cells.get(t, 0.0) for t in types] for k in keys])
    coef = np.array([nnls(X, Y[:, j])[0] for j in range(len(types))]).T
    target = np.array(fit.features(cfg), dtype=float)
    cells = {t: float(n) for t, n in zip(types, target @ coef)}
    unit = np.array([area({t: 1.0}) for t in types])
    fitted = X @ coef @ unit
    samples = []
    for c, k, a in zip(fit.samples, keys, fitted):
        actual = area(results[part.name, k].cells)
        samples.append({"features": dict(zip(fit.names, fit.features(c))),
                        "area_um2": _r(actual), "fitted_um2": _r(a),
                        "error_percent": _r(100 * (a - actual) / actual, 2)})
    record = {
        "features": list(fit.names),
        "target_features": dict(zip(fit.names, fit.features(cfg))),
        "area_coefficients_um2": dict(zip(fit.names, (_r(v) for v in coef @ unit))),
        "samples": samples,
        "max_error_percent": max(abs(s["error_percent"]) for s in samples),
    }
    return cells, record


def _part_cells(part: Part, results, cfg: ArchConfig | None = None, area=None,
                fits: dict | None = None) -> tuple[dict[str, float], float, str]:
    """Cells of one instance (extrapolated if sampled), its delay, and how it was obtained; a
    fitted part's record goes to ``fits``."""
    if part.fit:
        cells, record = fit_cells(part, results, cfg, area)
        if fits is not None:
            fits[part.name] = record
        delay = max(results[part.name, k].delay_ps for k in range(1, len(part.fit.samples) + 1))
        return cells, delay, (f"fitted over {', '.join(part.fit.names)} from "
                              f"{len(part.fit.samples)} smaller configurations (sample error "
                              f"up to {record['max_error_percent']:.1f}%)")
    if not part.samples:
        r = results[part.name, 0]
        return r.cells, r.delay_ps, "synthesized"
    if len(part.samples) == 1:
        lanes = part.samples[0][0]
        r = results[part.name, lanes]
        return r.cells, r.delay_ps, "synthesized at a smaller size (size-independent logic)"
    (l1, _), (l2, _) = part.samples
    r1, r2 = results[part.name, l1], results[part.name, l2]
    k = (part.lanes - l1) / (l2 - l1)
    cells = {c: r1.cells.get(c, 0.0) + (r2.cells.get(c, 0.0) - r1.cells.get(c, 0.0)) * k
             for c in sorted(set(r1.cells) | set(r2.cells))}
    return ({c: max(n, 0.0) for c, n in cells.items()}, max(r1.delay_ps, r2.delay_ps),
            f"extrapolated to {part.lanes} lanes from {l1} and {l2}")


def _r(x: float, n: int = 3) -> float:
    return round(float(x), n)


def _report(cfg, table: ArchTable, lib, results, activity, act_info, macros, macro_counts,
            buffers, period) -> dict:
    data = {}
    f_hz = cfg.clock_mhz * 1e6
    volt = lib.voltage
    alphas = activity.rates([p.scopes for p in table.parts])
    parts, totals, groups = [], {}, {}
    cell_area = flops = leak_w = logic_w = clock_w = 0.0
    worst = (0.0, "")
    fits = {}

    def area_of(cells):
        for c in cells:
            if c not in data:
                data[c] = cell_data(lib, c)
        return sum(n * data[c].area for c, n in cells.items())

    for part, alpha in zip(table.parts, alphas):
        cells, delay, how = _part_cells(part, results, cfg, area_of, fits)
        for c in cells:
            if c not in data:
                data[c] = cell_data(lib, c)
        area = sum(n * data[c].area for c, n in cells.items())
        ff = sum(n for c, n in cells.items() if data[c].sequential)
        logic_fj = alpha * sum(n * (data[c].e_out_fj + 0.5 * data[c].c_in_ff * volt ** 2)
                               for c, n in cells.items())
        clock_fj = sum(n * (data[c].e_clk_fj + data[c].c_clk_ff * volt ** 2)
                       for c, n in cells.items() if data[c].sequential)
        leak_pw = sum(n * data[c].leakage_pw for c, n in cells.items())
        p_logic = part.count * logic_fj * 1e-15 * f_hz
        p_clock = part.count * clock_fj * 1e-15 * f_hz
        p_leak = part.count * leak_pw * 1e-12
        cell_area += part.count * area
        flops += part.count * ff
        logic_w, clock_w, leak_w = logic_w + p_logic, clock_w + p_clock, leak_w + p_leak
        for c, n in cells.items():
            totals[c] = totals.get(c, 0.0) + part.count * n
        groups[part.group or part.name] = groups.get(part.group or part.name, 0.0) + \
            part.count * area
        if delay > worst[0]:
            worst = (delay, part.name)
        parts.append({
            "name": part.name, "block": part.block, "count": part.count, "group": part.group,
            "method": how, "area_um2": _r(area), "total_area_um2": _r(part.count * area),
            "cells": _r(sum(cells.values()), 1), "flops": _r(ff, 1), "delay_ps": _r(delay, 2),
            "toggle_rate": _r(alpha, 4),
            "power_mw": _r((p_logic + p_clock + p_leak) * 1e3, 4),
        })

    # Macros: leakage always, access energy per read or write of a bank.
    macro_area = sum(n * macros[m].area_um2 for m, n in macro_counts.items())
    macro_leak_w = sum(n * macros[m].leakage_pw * 1e-12 for m, n in macro_counts.items())
    macro_access_w = 0.0
    buffer_rows = {}
    for buf, (macro, per_access) in buffers.items():
        rate = activity.per_cycle((buf,), "r_en") + activity.per_cycle((buf,), "w_en")
        w = rate * per_access * macros[macro].access_fj * 1e-15 * f_hz
        macro_access_w += w
        buffer_rows[buf] = {"macro": macro, "macros_per_access": per_access,
                            "accesses_per_cycle": _r(rate, 4), "access_power_mw": _r(w * 1e3, 3)}
    groups["buffers (macros)"] = groups.get("buffers (macros)", 0.0) + macro_area
    total_area = cell_area + macro_area

    seq = max((c for c in totals if data[c].sequential), key=lambda c: totals[c], default=None)
    overhead = (data[seq].clk_to_q_ps + data[seq].setup_ps) if seq else 0.0
    critical = worst[0] + overhead
    power_w = logic_w + clock_w + leak_w + macro_leak_w + macro_access_w
    ref = table.reference
    shares = {g: _r(100 * groups.get(g, 0.0) / total_area, 3) for g in table.separate}
    report = {
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash,
        "cell_area_um2": _r(cell_area),
        "macro_area_um2": _r(macro_area),
        "total_area_um2": _r(total_area),
        "cell_area_mm2": _r(cell_area / 1e6, 6),
        "macro_area_mm2": _r(macro_area / 1e6, 6),
        "total_area_mm2": _r(total_area / 1e6, 6),
        "std_cells": _r(sum(totals.values()), 0),
        "flops": _r(flops, 0),
        "cells_by_type": {c: _r(n, 1) for c, n in sorted(totals.items())},
        "macros": {m: {"count": n, "area_um2_each": macros[m].area_um2}
                   for m, n in macro_counts.items()},
        "buffers": buffer_rows,
        "clock_period_ps": _r(period, 3),
        "critical_path_ps": _r(critical, 2),
        "critical_part": worst[1],
        "slack_ps": _r(period - critical, 2),
        "meets_timing": critical <= period,
        "fmax_mhz": _r(1e6 / critical, 1) if critical else None,
        "flop_overhead_ps": {"cell": seq, "clk_to_q_plus_setup": _r(overhead, 2)},
        "macro_clk_to_q_ps": _r(max((macros[m].clk_to_q_ps for m in macros), default=0.0), 1),
        "power_mw": _r(power_w * 1e3, 3),
        "power_breakdown_mw": {
            "logic_switching": _r(logic_w * 1e3, 3), "clock_pins": _r(clock_w * 1e3, 3),
            "cell_leakage": _r(leak_w * 1e3, 3), "macro_leakage": _r(macro_leak_w * 1e3, 3),
            "macro_access": _r(macro_access_w * 1e3, 3)},
        "area_by_group_um2": {g: _r(a) for g, a in sorted(groups.items())},
        "separate_shares_percent": shares,
        "parts": parts,
        "fits": fits,
        "activity": {**act_info, "toggle_rate_by_part": {p["name"]: p["toggle_rate"]
                                                         for p in parts}},
        "method": _method(table),
        "assumptions": {"slew_ps": TYPICAL_SLEW_PS, "load_ff": TYPICAL_LOAD_FF,
                        "abc_driver": ABC_DRIVER_CELL, "abc_load_ff": ABC_LOAD_FF,
                        "voltage_v": volt, "corner": "ASAP7 RVT TT",
                        "dont_use": list(DONT_USE_CELLS)},
    }
    if ref is not None:
        report["reference"] = {
            "source": ref.source, "area_mm2": ref.area_mm2, "power_mw": ref.power_mw,
            "clock_mhz": ref.clock_mhz, "shares_percent": ref.shares, "note": ref.note,
            "area_ratio": _r(total_area / 1e6 / ref.area_mm2, 3) if ref.area_mm2 else None,
            "power_ratio": _r(power_w * 1e3 / ref.power_mw, 3) if ref.power_mw else None,
        }
    return report


def _method(table: ArchTable) -> str:
    parts = ", ".join(f"{p.name} x{p.count}" for p in table.parts)
    return (
        "Hierarchical: each block synthesized alone by yosys 0.23 (synth -flatten, dfflibmap, "
        "ABC map -D <clock period>, buffer/upsize/dnsize) onto the merged ASAP7 RVT TT libraries "
        f"without ORFS's DONT_USE cells, multiplied by its count ({parts}); child blocks black "
        "boxed where they are parts of their own; lane-replicated blocks extrapolated linearly "
        "from two smaller sizes" + "".join(
            f"; {p.name} fitted by non-negative least squares as a linear function of "
            f"{', '.join(p.fit.names)} over {len(p.fit.samples)} smaller configurations"
            for p in table.parts if p.fit) +
        ". Macro area from the FakeRAM liberty 'area'. Timing: worst "
        "ABC register-to-register delay of any block plus clock-to-Q and setup; paths across "
        "blocks, wires and clock skew are not seen. Power: per-block toggle rate from a VCD "
        "of an amaranth.sim run of one compiled layer on the activity configuration, applied "
        "to every mapped cell output (internal energy at typical slew/load plus 1/2 C V^2 of "
        "the driven pins), clock pins every cycle, liberty leakage, and FakeRAM leakage plus "
        "clock-pin energy per accessed bank; no wires, glitches, clock tree or clock gating.")
