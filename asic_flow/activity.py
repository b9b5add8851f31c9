"""Switching activity from an RTL simulation of a compiled layer.

The layer is compiled (random int8 weights and input, fixed seed) for the table's activity
configuration and run on its core in Amaranth's simulator, against a DRAM model that keeps the
memory contract of docs/memory-model.md, while a VCD records every signal. From the VCD: per
instance path, the bit toggles of its signals (clock, reset and memory arrays excluded); per
buffer, the cycles its read and write enables were high.
"""

from __future__ import annotations

import fnmatch
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Activity", "run_activity", "parse_vcd"]


@dataclass
class Activity:
    """Toggles per instance path (a tuple of names below the core), and the run's length."""
    cycles: int
    toggles: dict[tuple[str, ...], int] = field(default_factory=dict)
    bits: dict[tuple[str, ...], int] = field(default_factory=dict)
    high: dict[tuple[tuple[str, ...], str], int] = field(default_factory=dict)  # 1-bit enables

    def rates(self, scopes: list[tuple[str, ...]]) -> list[float]:
        """Toggles per bit per cycle of each entry of ``scopes`` (a part's instance-path globs;
        a signal belongs to the entry with the longest matching pattern)."""
        toggles, bits = [0] * len(scopes), [0] * len(scopes)
        for scope, n in self.bits.items():
            best, best_len = None, -1
            for i, patterns in enumerate(scopes):
                for pattern in patterns:
                    parts = pattern.split(".") if pattern else []
                    if len(parts) > best_len and len(parts) <= len(scope) and all(
                            fnmatch.fnmatchcase(s, p) for s, p in zip(scope, parts)):
                        best, best_len = i, len(parts)
            if best is not None:
                toggles[best] += self.toggles[scope]
                bits[best] += n
        for patterns, b in zip(scopes, bits):
            assert b, f"no signals under {patterns} in the activity simulation"
        return [t / (b * self.cycles) for t, b in zip(toggles, bits)]

    def per_cycle(self, scope: tuple[str, ...], name: str) -> float:
        """Fraction of cycles a 1-bit signal was high."""
        return self.high.get((scope, name), 0) / self.cycles


_SKIP = re.compile(r"^(clk|rst)$|\[")


def parse_vcd(path: Path, enables: tuple[str, ...] = ("r_en", "w_en")) -> Activity:
    """Bit toggles per scope below the top module, and high time of the ``enables``."""
    ids: dict[str, list[tuple[tuple[str, ...], int, str]]] = {}
    stack: list[str] = []
    period = None
    clock_id = None
    with open(path) as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "$scope":
                stack.append(tok[2])
            elif tok[0] == "$upscope":
                stack.pop()
            elif tok[0] == "$var":
                width, code, name = int(tok[2]), tok[3], tok[4]
                scope = tuple(stack[2:])          # below the bench and the core
                if name == "clk" and not scope:
                    clock_id = code
                if not _SKIP.search(name):
                    ids.setdefault(code, []).append((scope, width, name))
            elif tok[0] == "$enddefinitions":
                break
        toggles: dict[str, int] = {}
        value: dict[str, int] = {}
        high: dict[str, int] = {}
        since: dict[str, int] = {}
        watch = {code for code, uses in ids.items()
                 if any(w == 1 and n in enables for _, w, n in uses)}
        now, clock_edges, first_edge = 0, 0, None
        for line in f:
            c = line[0]
            if c == "#":
                now = int(line[1:])
                continue
            if c == "b":
                bits, code = line[1:].split()
                v = int(bits.replace("x", "0").replace("z", "0"), 2)
            elif c in "01xz":
                code = line[1:].strip()
                v = 1 if c == "1" else 0
            else:
                continue
            if code == clock_id:
                if v == 1:
                    clock_edges += 1
                    if first_edge is None:
                        first_edge = now
                    elif period is None:
                        period = now - first_edge
                continue
            if code not in ids:
                continue
            old = value.get(code)
            if old is not None:
                toggles[code] = toggles.get(code, 0) + (old ^ v).bit_count()
            if code in watch:
                if old == 1 and v != 1:
                    high[code] = high.get(code, 0) + now - since[code]
                elif v == 1 and old != 1:
                    since[code] = now
            value[code] = v
        for code in watch:
            if value.get(code) == 1:
                high[code] = high.get(code, 0) + now - since[code]
    act = Activity(cycles=max(1, clock_edges))
    for code, uses in ids.items():
        for scope, width, name in uses:
            act.toggles[scope] = act.toggles.get(scope, 0) + toggles.get(code, 0)
            act.bits[scope] = act.bits.get(scope, 0) + width
            if code in watch and width == 1 and name in enables:
                act.high[scope, name] = round(high.get(code, 0) / (period or 1))
    return act


def run_activity(cfg, layer: str, workdir: Path, seed: int = 0) -> tuple[Activity, dict]:
    """Compile ``layer`` for ``cfg``, run it on the core in amaranth.sim with a VCD, and return
    the activity and a summary (cycles, outputs checked against the golden model)."""
    from amaranth.sim import Simulator

    from tessera.backends import backend, golden_outputs
    from tessera.commands._common import layer_shapes
    from tessera.crosscheck import random_program
    from tessera.hdl.top import core_for

    prog = random_program(cfg, layer_shapes([layer]), seed)
    core, _ = core_for(cfg)
    mem = prog.image.copy()
    B, L = cfg.dram_width, cfg.dram_latency
    result = {}

    async def bench(ctx):
        """The DRAM contract: a request's first beat L edges after it is accepted, then one beat
        per edge, requests in order; writes accepted at once (sim/rtl/dram.py)."""
        ctx.set(core.rd_req.ready, 1)
        ctx.set(core.wr.ready, 1)
        ctx.set(core.start, 1)
        pending: deque[list[int]] = deque()
        edge = 0
        while True:
            upcoming = edge + 1
            if pending and pending[0][0] <= upcoming:
                req = pending[0]
                ctx.set(core.rd_data.payload,
                        int.from_bytes(mem[req[1]:req[1] + B].tobytes(), "little"))
                ctx.set(core.rd_data.valid, 1)
                req[1] += B
                req[2] -= 1
                if req[2] == 0:
                    pending.popleft()
                    if pending:
                        pending[0][0] = max(pending[0][0], upcoming + 1)
                else:
                    req[0] = upcoming + 1
            else:
                ctx.set(core.rd_data.valid, 0)
            if ctx.get(core.rd_req.valid):
                p = ctx.get(core.rd_req.payload)
                pending.append([upcoming + L, int(p.addr), int(p.beats)])
            if ctx.get(core.wr.valid):
                p = ctx.get(core.wr.payload)
                mem[int(p.addr):int(p.addr) + B] = np.frombuffer(
                    int(p.data).to_bytes(B, "little"), np.uint8)
            await ctx.tick()
            edge += 1
            if edge == 1:
                ctx.set(core.start, 0)
            if ctx.get(core.done):
                result.update(cycles=int(ctx.get(core.cycles)), error=bool(ctx.get(core.error)))
                return

    sim = Simulator(core)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    workdir.mkdir(parents=True, exist_ok=True)
    vcd = workdir / "activity.vcd"
    with sim.write_vcd(str(vcd)):
        sim.run()
    outs = backend(cfg).read_outputs(prog, mem)
    result["outputs_match"] = (not result["error"]) and all(
        np.array_equal(g, o) for g, o in zip(golden_outputs(prog), outs))
    act = parse_vcd(vcd)
    vcd.unlink()
    return act, {"layer": layer, "config": cfg.to_dict(), "cycles": result["cycles"],
                 "outputs_match": result["outputs_match"], "seed": seed}
