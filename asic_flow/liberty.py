"""Just enough Liberty: merge cell libraries for yosys, and read area, power and timing per cell.

Yosys 0.23's ``abc -liberty`` and ``dfflibmap -liberty`` take one file, so the five ASAP7
standard-cell libraries are merged into one (templates deduplicated by name, ORFS's DONT_USE
cells left out). Power groups slow ABC down without changing the mapping, so yosys gets a copy
without them; the power model reads the full cells here. All values are converted to ps, fF, fJ,
pW and um^2 using each library's declared units.
"""

from __future__ import annotations

import fnmatch
import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Group", "parse_group", "Library", "read_library", "merge", "CellData", "cell_data",
           "TYPICAL_SLEW_PS", "TYPICAL_LOAD_FF"]

#: Operating point at which delay and energy tables are read: a 20 ps input slew and a load of
#: about three ASAP7 inputs. First-order: placement and wires would move both.
TYPICAL_SLEW_PS = 20.0
TYPICAL_LOAD_FF = 2.0

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|/\*.*?\*/|//[^\n]*|\\\n|[{}();:,]|[^\s{}();:,"]+', re.S)
_BRACE = re.compile(r'"(?:[^"\\]|\\.)*"|/\*.*?\*/|[{}]', re.S)
_POWER_GROUP = re.compile(r'^[ \t]*(?:internal_power|leakage_power)\s*\(\s*\)\s*\{', re.M)


@dataclass
class Group:
    """A Liberty group: ``kind (args) { attributes; subgroups }``."""
    kind: str
    args: list[str]
    attrs: dict[str, str] = field(default_factory=dict)
    complex: dict[str, list[str]] = field(default_factory=dict)
    groups: list["Group"] = field(default_factory=list)

    def find(self, kind: str) -> list["Group"]:
        return [g for g in self.groups if g.kind == kind]

    @property
    def name(self) -> str:
        return self.args[0] if self.args else ""


def _unquote(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def parse_group(text: str) -> Group:
    """Parse one group (e.g. a whole ``cell (...) {...}``) into a tree."""
    toks = [t for t in _TOKEN.findall(text) if not t.startswith(("/*", "//", "\\\n"))]
    pos = 0

    def group(kind: str) -> Group:
        nonlocal pos
        args = []
        assert toks[pos] == "(", toks[pos:pos + 5]
        pos += 1
        while toks[pos] != ")":
            if toks[pos] != ",":
                args.append(_unquote(toks[pos]))
            pos += 1
        pos += 1
        g = Group(kind, args)
        assert toks[pos] == "{"
        pos += 1
        while toks[pos] != "}":
            name = toks[pos]
            pos += 1
            if toks[pos] == ":":
                g.attrs[name] = _unquote(toks[pos + 1])
                pos += 2
                if pos < len(toks) and toks[pos] == ";":
                    pos += 1
            elif toks[pos] == "(":
                end = pos
                while toks[end] != ")":
                    end += 1
                if end + 1 < len(toks) and toks[end + 1] == "{":
                    g.groups.append(group(name))
                else:
                    g.complex[name] = [_unquote(t) for t in toks[pos + 1:end] if t != ","]
                    pos = end + 1
                    if toks[pos] == ";":
                        pos += 1
            else:
                pos += 1
        pos += 1
        return g

    kind = toks[pos]
    pos += 1
    return group(kind)


def _top_groups(text: str) -> tuple[str, list[tuple[int, int]], int]:
    """(library header up to its first group, [(start, end)] of its top-level groups, body end)."""
    m = re.search(r"library\s*\([^)]*\)\s*\{", text)
    if not m:
        raise ValueError("no library group")
    depth, start, spans = 1, None, []
    for tok in _BRACE.finditer(text, m.end()):
        s = tok.group()
        if s == "{":
            if depth == 1:
                start = text.rfind("\n", 0, tok.start()) + 1
            depth += 1
        elif s == "}":
            depth -= 1
            if depth == 1:
                spans.append((start, tok.end()))
            elif depth == 0:
                return text[:m.end()], spans, tok.start()
    raise ValueError("unbalanced braces")


_SCALE = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0}


def _unit(text: str, base: str) -> float:
    """'1ps' -> 1e-12 (in ``base`` units: s, W, F, V, A)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([fpnum]?)" + base + r"\s*", text, re.I)
    if not m:
        raise ValueError(f"unknown unit {text!r}")
    return float(m.group(1)) * _SCALE[m.group(2).lower()]


@dataclass
class Library:
    """Cells of one or more Liberty files, with scale factors to ps / fF / fJ / pW."""
    header: str                       # the first library's text up to its first group
    simple: str                       # the first library's top-level simple attributes
    templates: dict[tuple[str, str], str]
    cells: dict[str, str]             # name -> cell group text
    time_ps: float
    cap_ff: float
    energy_fj: float
    leak_pw: float
    voltage: float
    template_vars: dict[str, tuple[str, ...]]


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("latin-1")


def read_library(paths, dont_use=()) -> Library:
    """Read and merge Liberty files; cells matching a ``dont_use`` glob are left out. The files
    must share their units (true for one ASAP7 corner); the first file's header is kept."""
    lib = None
    for path in paths:
        text = _read_text(Path(path))
        head, spans, end = _top_groups(text)
        units = library_units(text[:spans[0][0] if spans else end])
        if lib is None:
            simple = "".join(text[a:b] for a, b in zip(
                [len(head)] + [e for _, e in spans], [s for s, _ in spans] + [end]))
            lib = Library(head, simple, {}, {}, *units, template_vars={})
        elif units != (lib.time_ps, lib.cap_ff, lib.energy_fj, lib.leak_pw, lib.voltage):
            raise ValueError(f"{path}: units differ from the first library")
        for a, b in spans:
            g = text[a:b]
            m = re.match(r"\s*(\w+)\s*\(\s*\"?([^)\"]*)\"?\s*\)", g)
            kind, name = m.group(1), m.group(2).strip()
            if kind == "cell":
                if not any(fnmatch.fnmatchcase(name, p) for p in dont_use):
                    lib.cells.setdefault(name, g)
            else:
                if (kind, name) not in lib.templates:
                    lib.templates[kind, name] = g
                    if kind.endswith("template"):
                        tg = parse_group(g)
                        lib.template_vars[name] = tuple(
                            tg.attrs[k] for k in ("variable_1", "variable_2", "variable_3")
                            if k in tg.attrs)
    assert lib is not None, "no library files"
    return lib


def library_units(head: str) -> tuple[float, float, float, float, float]:
    def attr(name, default=None):
        m = re.search(name + r'\s*:\s*"?([^";\n]+)"?\s*;', head)
        if not m:
            if default is None:
                raise ValueError(f"library has no {name}")
            return default
        return m.group(1)
    time = _unit(attr("time_unit"), "s")
    volt = _unit(attr("voltage_unit", "1V"), "V")
    leak = _unit(attr("leakage_power_unit"), "W")
    m = re.search(r"capacitive_load_unit\s*\(\s*([\d.]+)\s*,\s*(\w+)\s*\)", head)
    cap = float(m.group(1)) * _SCALE[m.group(2).lower()[0]]
    nom = re.search(r"nom_voltage\s*:\s*([\d.]+)", head)
    voltage = float(nom.group(1)) * volt if nom else 0.7
    return time / 1e-12, cap / 1e-15, cap * volt * volt / 1e-15, leak / 1e-12, voltage


def merge(lib: Library, path: Path, keep_power: bool) -> None:
    """Write ``lib`` as one Liberty file; without power groups when ``keep_power`` is false."""
    cells = lib.cells.values()
    if not keep_power:
        cells = (_strip_power(c) for c in cells)
    with open(path, "w") as f:
        f.write(lib.header + lib.simple)
        for g in lib.templates.values():
            f.write(g + "\n")
        for c in cells:
            f.write(c + "\n")
        f.write("}\n")


def _strip_power(text: str) -> str:
    out, pos = [], 0
    while (m := _POWER_GROUP.search(text, pos)):
        out.append(text[pos:m.start()])
        depth = 1
        for tok in _BRACE.finditer(text, m.end()):
            depth += 1 if tok.group() == "{" else -1 if tok.group() == "}" else 0
            if depth == 0:
                pos = tok.end()
                break
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True)
class CellData:
    """What the estimate needs of one cell, in um^2, pW, fJ, fF and ps."""
    name: str
    area: float
    leakage_pw: float
    e_out_fj: float        # internal energy per output transition, summed over output pins
    c_in_ff: float         # capacitance of the data inputs
    sequential: bool
    e_clk_fj: float        # internal energy of the clock pin per clock cycle (both edges)
    c_clk_ff: float
    clk_to_q_ps: float
    setup_ps: float


def _table(g: Group, lib: Library, point: dict[str, float]) -> float:
    """Value of a lookup table at the typical operating point (linear interpolation)."""
    vals = np.array([float(v) for row in g.complex.get("values", ["0"])
                     for v in row.replace("\\", " ").split(",") if v.strip()])
    variables = lib.template_vars.get(g.name, ())
    idx = [np.array([float(v) for v in g.complex[f"index_{i + 1}"][0].split(",")])
           if f"index_{i + 1}" in g.complex else None for i in range(len(variables))]
    idx = [i for i in idx if i is not None]
    if not idx or vals.size == 1:
        return float(vals.mean())
    want = [point.get(v, TYPICAL_SLEW_PS) for v in variables][:len(idx)]
    if len(idx) == 1:
        return float(np.interp(want[0], idx[0], vals[:idx[0].size]))
    grid = vals.reshape(idx[0].size, idx[1].size)
    col = [np.interp(want[1], idx[1], grid[r]) for r in range(idx[0].size)]
    return float(np.interp(want[0], idx[0], col))


def _supply(groups: list[Group]) -> list[Group]:
    """Power groups charged to the supply (ASAP7 lists VDD and VSS currents separately)."""
    return [g for g in groups if g.attrs.get("related_pg_pin", "VDD") != "VSS"]


def cell_data(lib: Library, name: str) -> CellData:
    g = parse_group(lib.cells[name])
    t, e, c = lib.time_ps, lib.energy_fj, lib.cap_ff
    slew = TYPICAL_SLEW_PS / t
    point = {"input_transition_time": slew, "input_net_transition": slew,
             "related_pin_transition": slew, "constrained_pin_transition": slew,
             "total_output_net_capacitance": TYPICAL_LOAD_FF / c}
    leaks = _supply(g.find("leakage_power"))
    plain = [float(x.attrs["value"]) for x in leaks if "when" not in x.attrs]
    every = [float(x.attrs["value"]) for x in leaks]
    leakage = (plain[0] if plain else float(np.mean(every)) if every
               else float(g.attrs.get("cell_leakage_power", 0.0))) * lib.leak_pw
    pins = g.find("pin")
    sequential = bool(g.find("ff"))
    e_out = c_in = e_clk = c_clk = clk_q = setup = 0.0
    for pin in pins:
        direction = pin.attrs.get("direction")
        cap = float(pin.attrs.get("capacitance", 0.0)) * c
        powers = _supply(pin.find("internal_power"))
        energies = [(_table(p.find("rise_power")[0], lib, point) if p.find("rise_power") else 0.0,
                     _table(p.find("fall_power")[0], lib, point) if p.find("fall_power") else 0.0)
                    for p in powers]
        if direction == "output":
            if energies:
                e_out += float(np.mean([(r + f) / 2 for r, f in energies])) * e
            arcs = [a for a in pin.find("timing") if a.attrs.get("timing_type") in
                    ("rising_edge", "falling_edge")]
            delays = [_table(d, lib, point) for a in arcs for d in a.groups
                      if d.kind in ("cell_rise", "cell_fall")]
            if delays:
                clk_q = max(clk_q, max(delays) * t)
        elif direction == "input":
            if pin.attrs.get("clock") == "true":
                c_clk += cap
                if energies:
                    e_clk += float(np.mean([r + f for r, f in energies])) * e
            else:
                c_in += cap
                checks = [d for a in pin.find("timing")
                          if a.attrs.get("timing_type", "").startswith("setup")
                          for d in a.groups if d.kind in ("rise_constraint", "fall_constraint")]
                if checks:
                    setup = max(setup, max(_table(d, lib, point) for d in checks) * t)
    return CellData(name, float(g.attrs.get("area", 0.0)), leakage, e_out, c_in, sequential,
                    e_clk, c_clk, clk_q, setup)
