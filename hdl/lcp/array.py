"""The LCP array (lcp.md III-B, Fig. 8a): rows x cols cells reduced per column by adder trees.

Each cell holds two stationary weights (double buffering: one computes while the next block is
shifted in through the first row) and multiplies its row's activation by the active one. Each
column's products meet in a pipelined adder tree, so the reduction takes ceil(log2(rows)) cycles
instead of the rows-cycle chain of a MAC-based systolic array.
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from tessera.config import LcpConfig

__all__ = ["Cell", "AdderTree", "LcpArray"]

DATA_BITS = 8
PRODUCT_BITS = 2 * DATA_BITS

def _positive(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    return value

class Cell(wiring.Component):
    """One array cell: two weight registers and a registered int8 x int8 multiply.

    ``sel`` picks the active weight; ``load`` shifts ``w_in`` into the inactive one, whose value
    ``w_out`` feeds the cell below (weights enter through the first row).
    """

    x: In(signed(DATA_BITS))
    w_in: In(signed(DATA_BITS))
    load: In(1)
    sel: In(1)
    w_out: Out(signed(DATA_BITS))
    product: Out(signed(PRODUCT_BITS))

    def elaborate(self, platform):
        m = Module()
        bank = [Signal(signed(DATA_BITS), name=f"bank{i}") for i in range(2)]
        with m.If(self.load):
            with m.If(self.sel):
                m.d.sync += bank[0].eq(self.w_in)
            with m.Else():
                m.d.sync += bank[1].eq(self.w_in)
        m.d.comb += self.w_out.eq(Mux(self.sel, bank[0], bank[1]))
        m.d.sync += self.product.eq(self.x * Mux(self.sel, bank[1], bank[0]))
        return m

class AdderTree(wiring.Component):
    """Balanced, fully pipelined sum of ``n`` signed inputs: ceil(log2(n)) register levels."""

    def __init__(self, n: int, width: int):
        self._n = _positive("n", n)
        self._width = _positive("width", width)
        super().__init__({
            "terms": In(data.ArrayLayout(signed(width), n)),
            "sum": Out(signed(width + ceil_log2(n))),
        })

    @property
    def latency(self) -> int:
        return ceil_log2(self._n)

    def elaborate(self, platform):
        m = Module()
        level = [self.terms[i] for i in range(self._n)]
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = []
            for i in range(0, len(level), 2):
                pair = level[i:i + 2]
                reg = Signal(signed(self._width + depth), name=f"l{depth}_{i // 2}")
                m.d.sync += reg.eq(pair[0] + pair[1] if len(pair) == 2 else pair[0])
                nxt.append(reg)
            level = nxt
        m.d.comb += self.sum.eq(level[0])
        return m

class LcpArray(wiring.Component):
    """rows x cols cells and one adder tree per column.

    ``x`` (one activation per row) enters every cycle; ``sums`` (one per column) appear
    ``latency`` cycles later. ``w_row`` is shifted into the inactive weights of the first row when
    ``w_load`` is high, pushing every inactive row down by one; ``swap`` exchanges the banks.
    """

    def __init__(self, cfg: LcpConfig):
        self._cfg = cfg
        super().__init__({
            "x": In(data.ArrayLayout(signed(DATA_BITS), cfg.rows)),
            "w_row": In(data.ArrayLayout(signed(DATA_BITS), cfg.cols)),
            "w_load": In(1),
            "swap": In(1),
            "sums": Out(data.ArrayLayout(signed(self.sum_bits), cfg.cols)),
        })

    @property
    def sum_bits(self) -> int:
        return PRODUCT_BITS + ceil_log2(self._cfg.rows)

    @property
    def latency(self) -> int:
        """Cycles from ``x`` to ``sums``: the product register plus the tree levels."""
        return 1 + ceil_log2(self._cfg.rows)

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._cfg.rows, self._cfg.cols
        sel = Signal()
        with m.If(self.swap):
            m.d.sync += sel.eq(~sel)
        cells = [[Cell() for _ in range(cols)] for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                cell = cells[r][c]
                m.submodules[f"cell_{r}_{c}"] = cell
                m.d.comb += [
                    cell.x.eq(self.x[r]),
                    cell.w_in.eq(self.w_row[c] if r == 0 else cells[r - 1][c].w_out),
                    cell.load.eq(self.w_load),
                    cell.sel.eq(sel),
                ]
        for c in range(cols):
            tree = AdderTree(rows, PRODUCT_BITS)
            m.submodules[f"tree_{c}"] = tree
            m.d.comb += [tree.terms[r].eq(cells[r][c].product) for r in range(rows)]
            m.d.comb += self.sums[c].eq(tree.sum)
        return m
