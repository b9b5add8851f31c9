"""Per-architecture tables for the hierarchical estimate: which blocks, how many of each.

A large core is estimated block by block: each *part* is one block of ``hdl.top.blocks_for``
synthesized alone (its children that are parts of their own left as black boxes) and multiplied
by how often the core holds it. A block made of identical lanes (e.g. the PPU) may instead be
synthesized at two small configurations and extrapolated linearly in the lane count. Buffers are
SRAM macros, counted from the generated core. The same table maps the core's instance paths to
parts, so switching activity from a simulation lands on the right block.

An architecture adds itself with a function ``cfg -> ArchTable`` in ``TABLES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tessera.config import ArchConfig
from tessera.errors import ConfigError

__all__ = ["Part", "ArchTable", "Reference", "TABLES", "table_for"]


@dataclass(frozen=True)
class Part:
    """One kind of block in the core.

    ``blackbox``: glob patterns of child instance names that are parts of their own.
    ``scopes``: glob patterns of instance paths in the core ("" is the core's own logic, "a.b_*"
    nests) whose signals give this part's switching activity.
    ``group``: parts with the same group are summed in the report; a table's ``separate`` groups
    get their share of the area reported on their own.
    ``samples``: (lanes, configuration) to synthesize at instead of the target; one sample is
    taken as it is (logic that does not depend on the size), two are extrapolated linearly to
    ``lanes``.
    """
    name: str
    block: str
    count: int = 1
    blackbox: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    group: str = ""
    samples: tuple[tuple[int, ArchConfig], ...] = ()
    lanes: int = 0

    def __post_init__(self):
        assert len(self.samples) in (0, 1, 2), self
        assert len(self.samples) < 2 or self.lanes > 0, self


@dataclass(frozen=True)
class Reference:
    """Published figures the estimate is compared with."""
    source: str
    area_mm2: float | None = None
    power_mw: float | None = None
    clock_mhz: float | None = None
    shares: dict[str, float] = field(default_factory=dict)   # group -> percent of the area
    note: str = ""


@dataclass(frozen=True)
class ArchTable:
    parts: tuple[Part, ...]
    #: groups whose share of the total area is reported on its own
    separate: tuple[str, ...]
    #: configuration and layer whose RTL simulation gives the switching activity
    activity_config: ArchConfig
    activity_layer: str
    reference: Reference | None = None

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)


def _lcp_table(cfg) -> ArchTable:
    rows, cols = cfg.rows, cfg.cols

    def sized(r: int, c: int | None = None):
        return cfg.replace(rows=r, cols=c or cols, dram_width=min(cfg.dram_width, r))

    ppu_samples = ((2, sized(2)), (4, sized(4))) if rows > 4 else ()
    act = sized(min(rows, 8), min(cols, 16))
    return ArchTable(
        parts=(
            Part("core", "core", blackbox=("array", "load", "compute", "store"),
                 scopes=("", "abuf", "acc"), group="control and buffers"),
            Part("array", "array", blackbox=("cell_*", "tree_*"), scopes=("array",),
                 samples=((1, sized(2, 2)),), group="array"),
            Part("cell", "cell", rows * cols, scopes=("array.cell_*",), group="array"),
            Part("adder_tree", "adder_tree", cols, scopes=("array.tree_*",), group="array"),
            Part("load_unit", "load_unit", scopes=("load",), group="control and buffers"),
            Part("compute_unit", "compute_unit", scopes=("compute",),
                 group="control and buffers"),
            Part("store_unit", "store_unit", blackbox=("ppu",), scopes=("store",),
                 group="post-processing"),
            Part("ppu", "ppu", scopes=("store.ppu",), samples=ppu_samples, lanes=rows,
                 group="post-processing"),
        ),
        separate=("array",),
        activity_config=act,
        activity_layer=f"conv:C={2 * act.rows},K={act.cols},H=8,W=8,R=3,pad=1,relu",
        reference=Reference(
            "LCP paper (lcp.md): 32x64 cells, ASAP7", area_mm2=0.107, power_mw=16.0,
            clock_mhz=800.0,
            note="the paper gives totals only; its buffer sizes and clock gating are unknown"),
    )


def _smartdeal_table(cfg) -> ArchTable:
    dm, dc, F = cfg.dim_m, cfg.dim_c, cfg.dim_f

    def sized(m: int):
        return cfg.replace(dim_m=m)

    glue_samples = ((2, sized(2)), (4, sized(4))) if dm > 4 else ()
    act = cfg.replace(dim_m=min(dm, 2), dim_c=min(dc, 2), dim_f=min(F, 4),
                      gb_depth=min(cfg.gb_depth, 64), wb_depth=min(cfg.wb_depth, 32),
                      bb_depth=min(cfg.bb_depth, 8), dram_width=2)
    return ArchTable(
        parts=(
            Part("core", "core", blackbox=("line_*",), scopes=("", "gb", "wb", "bb", "dma",
                                                                "ppu"),
                 samples=glue_samples, lanes=dm, group="control, buffers, trees"),
            Part("pe_line", "pe_line", dm * dc, blackbox=("engines", "mac*"),
                 scopes=("line_*",), group="pe lines"),
            Part("rebuild_engines", "rebuild_engines", dm * dc, scopes=("line_*.engines",),
                 group="rebuild_engine"),
            Part("mac", "mac", dm * dc * F, scopes=("line_*.mac*",), group="pe lines"),
        ),
        separate=("rebuild_engine",),
        activity_config=act,
        activity_layer=f"conv:C={2 * act.dim_c},K={2 * act.dim_m},H=8,W=8,R=3,pad=1,relu",
        reference=Reference(
            "SmartDeal paper (smartdeal.md, Table IX): 28 nm, 1 GHz", clock_mhz=1000.0,
            shares={"rebuild_engine": 0.64},
            note="the paper's design is 28 nm: only the rebuild engines' share is comparable"),
    )


#: arch -> its table; a new architecture adds an entry.
TABLES: dict[str, Callable[[ArchConfig], ArchTable]] = {
    "lcp": _lcp_table,
    "smartdeal": _smartdeal_table,
}


def table_for(cfg: ArchConfig) -> ArchTable:
    if cfg.arch not in TABLES:
        raise ConfigError(f"arch '{cfg.arch}' has no ASIC estimate table: allowed is one of "
                          f"{', '.join(TABLES)}")
    return TABLES[cfg.arch](cfg)
