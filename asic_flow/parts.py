"""Per-architecture tables for the hierarchical estimate: which blocks, how many of each.

A large core is estimated block by block: each *part* is one block of ``hdl.top.blocks_for``
synthesized alone (its children that are parts of their own left as black boxes) and multiplied
by how often the core holds it. A block made of identical lanes (e.g. the PPU) may instead be
synthesized at two small configurations and extrapolated linearly in the lane count. Buffers are
SRAM macros, counted from the generated core. The same table maps the core's instance paths to
parts, so switching activity from a simulation lands on the right block.

A block whose size depends on several dimensions at once (SmartDeal's core glue: per-slice
trees and drain registers, input-buffer words, pass words) is instead *fitted*: synthesized at a
few small configurations and its cells fitted, by non-negative least squares, as a linear
function of structural features (``Fit``). When converting the whole core to Verilog is impractical, the
table lists the core's buffers so the SRAM macros can be planned without it.

An architecture adds itself with a function ``cfg -> ArchTable`` in ``TABLES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tessera.config import ArchConfig
from tessera.errors import ConfigError

__all__ = ["Part", "Fit", "ArchTable", "Reference", "TABLES", "table_for",
           "planned_macros"]


@dataclass(frozen=True)
class Fit:
    """Cells of a block as a linear function of structural features of the configuration.

    Each sample configuration is synthesized; every cell type's count is fitted by non-negative
    least squares as sum_k c_k * feature_k (``names`` describe the features), and evaluated at
    the target.
    """
    names: tuple[str, ...]
    features: Callable[[ArchConfig], tuple[float, ...]]
    samples: tuple[ArchConfig, ...]

    def __post_init__(self):
        assert len(self.samples) > len(self.names), self


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
    ``lanes``. ``fit``: a least-squares fit over sample configurations instead (``Fit``).
    """
    name: str
    block: str
    count: int = 1
    blackbox: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    group: str = ""
    samples: tuple[tuple[int, ArchConfig], ...] = ()
    lanes: int = 0
    fit: Fit | None = None

    def __post_init__(self):
        assert len(self.samples) in (0, 1, 2), self
        assert len(self.samples) < 2 or self.lanes > 0, self
        assert not (self.samples and self.fit), self

    def configs(self, target: ArchConfig) -> tuple[tuple[int, ArchConfig], ...]:
        """(key, configuration) of every synthesis this part needs: the target (key 0), its
        lane samples (key = lanes) or its fit samples (key = 1, 2, ...)."""
        if self.fit:
            return tuple(enumerate(self.fit.samples, 1))
        return self.samples or ((0, target),)


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
    #: the core's buffers (name -> (word bits, words)), to plan its SRAM macros without
    #: converting the whole core to Verilog; None: count the macros in the core's Verilog
    buffers: Callable[[ArchConfig], dict[str, tuple[int, int]]] | None = None
    #: whether converting the whole core to Verilog is practical on a machine like this one
    #: (the ORFS directory needs it; the estimate does not when ``buffers`` is given)
    whole_core: bool = True

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


#: SmartDeal: the largest core (multiply-accumulators) whose whole Verilog is generated by default;
#: larger ones take minutes and gigabytes in Amaranth (smartdeal-paper's 8,192 ran out of memory).
SD_WHOLE_CORE_MACS = 1024
#: (dim_m, dim_c, dim_f) of the small cores the core's own logic is fitted from.
SD_FIT_DIMS = ((2, 2, 2), (4, 2, 2), (2, 4, 2), (2, 2, 4), (4, 4, 2), (4, 2, 4), (2, 4, 4))
#: The fit's features: control and step registers; per slice (parameters, basis word, PPU lane,
#: output beat); per line of a slice (adder-tree input, Ce codes of the pass word); per MAC
#: (drain shadow register); per pixel lane of the input-buffer word (prefetched words, DMA).
SD_FIT_FEATURES = ("1", "dim_m", "dim_m*dim_c", "dim_m*dim_c*dim_f", "dim_c*dim_f")


def _sd_features(c) -> tuple[float, ...]:
    return (1.0, c.dim_m, c.dim_m * c.dim_c, c.dim_m * c.dim_c * c.dim_f, c.dim_c * c.dim_f)


def _sd_sized(cfg, dim_m: int, dim_c: int, dim_f: int):
    """``cfg`` at other dimensions, with the widest DRAM port (up to cfg's) they allow."""
    width = cfg.dram_width
    lanes = dim_c * cfg.S
    while lanes % width or (dim_m % width and lanes % dim_m):
        width //= 2
    return cfg.replace(dim_m=dim_m, dim_c=dim_c, dim_f=dim_f, dram_width=width)


def _sd_buffers(cfg) -> dict[str, tuple[int, int]]:
    """SdCore's buffers: input GB, weight buffer (two banks of pass words), basis buffer."""
    from tessera.compiler.sd.isa import basis_word_bits
    from tessera.hdl.sd.core import PassWord

    return {"bb": (basis_word_bits(cfg.dim_m, cfg.S, cfg.dram_width), 2 * cfg.bb_depth),
            "gb": (8 * cfg.gb_lanes * cfg.dim_f, cfg.gb_depth),
            "wb": (PassWord(cfg).size, 2 * cfg.wb_depth)}


def _smartdeal_table(cfg) -> ArchTable:
    dm, dc, F = cfg.dim_m, cfg.dim_c, cfg.dim_f
    largest = tuple(max(d[i] for d in SD_FIT_DIMS) for i in range(3))
    fit = None
    if any(v > big for v, big in zip((dm, dc, F), largest)):
        fit = Fit(SD_FIT_FEATURES, _sd_features,
                  tuple(_sd_sized(cfg, *d) for d in SD_FIT_DIMS))
    # An index selector's logic grows with the input-buffer word (dim_c*S lanes): extrapolated
    # linearly in dim_c from 2 and 4 lines at the target's dim_f, S and dim_m.
    sel_samples = (((2, _sd_sized(cfg, dm, 2, F)), (4, _sd_sized(cfg, dm, 4, F)))
                   if dc > 4 else ())
    act = cfg.replace(dim_m=min(dm, 2), dim_c=min(dc, 2), dim_f=min(F, 4),
                      gb_depth=min(cfg.gb_depth, 64), wb_depth=min(cfg.wb_depth, 32),
                      bb_depth=min(cfg.bb_depth, 8), dram_width=2)
    return ArchTable(
        parts=(
            Part("core", "core", blackbox=("line_*", "sel_*"),
                 scopes=("", "gb", "wb", "bb", "dma", "ppu"), fit=fit,
                 group="control, buffers, trees"),
            Part("index_selector", "index_selector", dc, scopes=("sel_*",),
                 samples=sel_samples, lanes=dc, group="index selectors"),
            Part("pe_line", "pe_line", dm * dc, blackbox=("engines", "mac*"),
                 scopes=("line_*",), group="pe lines"),
            Part("rebuild_engines", "rebuild_engines", dm * dc, scopes=("line_*.engines",),
                 group="rebuild_engine"),
            Part("mac", "mac", dm * dc * F, scopes=("line_*.mac*",), group="pe lines"),
        ),
        separate=("rebuild_engine",),
        activity_config=act,
        activity_layer=f"conv:C={2 * act.gb_lanes},K={2 * act.dim_m},H=8,W=8,R=3,pad=1,relu",
        reference=Reference(
            "SmartDeal paper (smartdeal.md, Table IX): 28 nm, 1 GHz", clock_mhz=1000.0,
            shares={"rebuild_engine": 0.64},
            note="the paper's design is 28 nm: only the rebuild engines' share is comparable"),
        buffers=_sd_buffers,
        whole_core=dm * dc * F <= SD_WHOLE_CORE_MACS,
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


def planned_macros(cfg: ArchConfig, table: ArchTable) -> tuple[dict[str, int],
                                                                dict[str, tuple[str, int]]]:
    """From the table's buffer list: macro name -> count, and buffer -> (macro, macros one
    access touches), as the ASIC build (hdl/memories.py) tiles them: two banks of half the
    words each, every bank ``rows`` x ``cols`` macros."""
    from tessera.hdl.memories import plan_bank

    assert table.buffers is not None
    counts: dict[str, int] = {}
    buffers = {}
    for name, (width, depth) in sorted(table.buffers(cfg).items()):
        plan = plan_bank(width, depth // 2)
        counts[plan.macro.name] = counts.get(plan.macro.name, 0) + 2 * plan.count
        buffers[name] = (plan.macro.name, plan.cols)
    return dict(sorted(counts.items())), buffers
