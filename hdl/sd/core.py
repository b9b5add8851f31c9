"""The SmartDeal accelerator core (smartdeal.md V-B, Fig. 4a; docs/smartdeal.md).

dim_m slices of dim_c PE lines of dim_f Booth MACs. A COMPUTE step runs the tiles of one band of
output rows for one group of output channels. For every pass of a tile, the *prefetcher* reads the
pass word (the index selector's choice of pair per line and the Ce codes), loads the next channel
group's bases into the idle rebuild engines, fetches the input-buffer words the pairs need and has
every line rebuild its weight row, all while the previous pass computes. A pass starts when every
line has finished the previous one and the prefetch is complete. At the end of a tile the MAC
accumulators move to a drain shadow; the drain reduces each pixel over the lines (one adder tree
per slice), requantizes it (one lane per slice) and writes it out while the next tile computes.
In cluster mode (FC-like layers, two clusters built) a pass has two words, both engines rebuild
at once for the two halves of every line's MACs, and the drain writes the second half's pixels
to the second dim_m channels of the group.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from tessera.compiler.sd.isa import (CODE_BITS, HEADER_BITS, PARAM_BYTES, SEL_BITS, STEP_BYTES,
                                     STEP_DTYPE, Bank, Flag, Mode, Op, basis_word_bits,
                                     pass_word_bits)
from tessera.config import SmartDealConfig

from ..controller import run_steps
from ..descriptor import struct_layout
from ..dma import ADDR_BITS, ReadDma, dram_signature
from ..lcp.ppu import PARAM_LAYOUT, PostProcessor
from ..memories import SimpleDualPortRam
from .line import PeLine

__all__ = ["SD_STEP_LAYOUT", "SdCore", "PassWord", "IndexSelector", "depthwise_group"]

SD_STEP_LAYOUT = struct_layout(STEP_DTYPE)
#: One line's selection in a pass word: valid, slot (kernel row or plane offset), input lane.
SEL_LAYOUT = data.StructLayout({"valid": 1, "row": 3, "lane": 12})


def PassWord(cfg: SmartDealConfig) -> data.StructLayout:
    """A weight-buffer word: header, one selection per line, the codes of every slice's lines."""
    dm, dc, S = cfg.dim_m, cfg.dim_c, cfg.S
    bits = pass_word_bits(dm, dc, S, cfg.dram_width)
    used = HEADER_BITS + dc * SEL_BITS + dm * dc * S * CODE_BITS
    fields = {
        "plane": unsigned(12), "switch": unsigned(1), "bb_load": unsigned(1), "pad": unsigned(2),
        "bb_word": unsigned(16),
        "sel": data.ArrayLayout(data.StructLayout({"valid": 1, "row": 3, "lane": 12}), dc),
        "codes": data.ArrayLayout(CODE_BITS, dm * dc * S),
    }
    if bits > used:
        fields["fill"] = unsigned(bits - used)
    return data.StructLayout(fields)


def depthwise_group(cfg: SmartDealConfig) -> int:
    """Slices that take their own lane in depthwise mode: the largest divisor of dim_c*S that is
    at most dim_m (a depthwise channel group sits in one input plane)."""
    L = cfg.gb_lanes
    return max(d for d in range(1, min(cfg.dim_m, L) + 1) if L % d == 0)


class IndexSelector(wiring.Component):
    """The index selector for line ``l`` of every slice (one per line column; ``sel`` is the
    line's selection in the pass word). From the prefetched input-buffer words it picks the
    dim_f + S - 1 activations the next pass starts with (``window``; in depthwise mode slice
    i < depthwise_group takes ``dw_window[i]``, lane i of its group's lanes), and in pointwise
    mode the dim_f activations of the running pass's next step (``step``, at ``cur_lane`` +
    ``k_next`` in word ``cur_row``)."""

    def __init__(self, cfg: SmartDealConfig):
        if not isinstance(cfg, SmartDealConfig):
            raise TypeError(f"IndexSelector needs a SmartDealConfig, not {type(cfg).__name__}")
        self._cfg = cfg
        F, S, n = cfg.dim_f, cfg.S, cfg.dim_f + cfg.S - 1
        word = unsigned(8 * cfg.gb_lanes * F)
        super().__init__({
            "sel": In(SEL_LAYOUT), "depthwise": In(1),
            "next_words": In(data.ArrayLayout(word, 2 * S)),
            "cur_row": In(3), "cur_lane": In(12), "k_next": In(4),
            "cur_words": In(data.ArrayLayout(word, S)),
            "window": Out(data.ArrayLayout(signed(8), n)),
            "dw_window": Out(data.ArrayLayout(data.ArrayLayout(signed(8), n),
                                              depthwise_group(cfg))),
            "step": Out(data.ArrayLayout(signed(8), F)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        F, S, L = cfg.dim_f, cfg.S, cfg.gb_lanes
        g_dw = depthwise_group(cfg)
        sel = self.sel

        def byte(word, j, lane):
            return word.word_select(j * L + lane, 8).as_signed()

        # Each activation is chosen among its candidate bytes (slot x lane), not by muxing whole
        # words and shifting: the same selection in a fraction of the logic.
        for p in range(F + S - 1):
            h, j = divmod(p, F)
            words = [self.next_words[2 * r + h] for r in range(S)]
            normal = Array(Array(byte(w, j, lane) for lane in range(L)) for w in words)
            m.d.comb += self.window[p].eq(normal[sel.row][sel.lane])
            for i in range(g_dw):
                dw = Array(Array(byte(w, j, k * g_dw + i) for k in range(L // g_dw))
                           for w in words)
                m.d.comb += self.dw_window[i][p].eq(
                    Mux(self.depthwise, dw[sel.row][sel.lane // g_dw], self.window[p]))
        step_lane = self.cur_lane + self.k_next
        for j in range(F):
            step = Array(Array(byte(self.cur_words[r], j, lane) for lane in range(L))
                         for r in range(S))
            m.d.comb += self.step[j].eq(step[self.cur_row][step_lane])
        return m


class SdCore(wiring.Component):
    """Same control and DRAM interface as the LCP core: ``start``/``base`` in, ``busy``,
    ``done``, ``error``, ``cycles`` and the read-only ``config_id`` out."""

    def __init__(self, cfg: SmartDealConfig):
        if not isinstance(cfg, SmartDealConfig):
            raise TypeError(f"SdCore needs a SmartDealConfig, not {type(cfg).__name__}")
        self._cfg = cfg
        super().__init__({
            "start": In(1), "base": In(ADDR_BITS),
            "busy": Out(1), "done": Out(1), "error": Out(1), "cycles": Out(32),
            "config_id": Out(32),
            **dram_signature(cfg),
        })

    @property
    def config(self) -> SmartDealConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        dm, dc, F, S, L, B = cfg.dim_m, cfg.dim_c, cfg.dim_f, cfg.S, cfg.gb_lanes, cfg.dram_width
        word_layout = PassWord(cfg)
        wbytes = word_layout.size // 8
        bbytes = basis_word_bits(dm, S, B) // 8
        gbytes = L * F

        # -- buffers and the DMA ------------------------------------------------------------------
        m.submodules.dma = dma = ReadDma(B, [("gb", gbytes), ("wb", wbytes), ("bb", bbytes),
                                             ("param", dm * PARAM_BYTES), ("step", STEP_BYTES)])
        m.submodules.gb = gb = SimpleDualPortRam(unsigned(8 * gbytes), cfg.gb_depth, "gb",
                                                 banking="msb")
        m.submodules.wb = wb = SimpleDualPortRam(word_layout, 2 * cfg.wb_depth, "wb",
                                                 banking="msb")
        m.submodules.bb = bb = SimpleDualPortRam(unsigned(8 * bbytes), 2 * cfg.bb_depth, "bb",
                                                 banking="msb")
        # parameters per bank, one dim_m-channel word per cluster
        clusters = cfg.fc_clusters
        params = [[Signal(data.ArrayLayout(PARAM_LAYOUT, dm), name=f"params{i}_{c}")
                   for c in range(clusters)] for i in range(2)]
        next_step = Signal(SD_STEP_LAYOUT)
        wiring.connect(m, dma.rd_req, wiring.flipped(self.rd_req))
        wiring.connect(m, wiring.flipped(self.rd_data), dma.rd_data)

        cur = Signal(SD_STEP_LAYOUT)
        load_banks = Signal(8)
        gb_dst = Signal(16)
        m.d.comb += [
            gb.w_addr.eq(Mux(load_banks & int(Bank.GB), cfg.gb_depth // 2, 0) + gb_dst
                         + dma.gb_word_index),
            gb.w_data.eq(dma.gb_word), gb.w_en.eq(dma.gb_word_valid),
            wb.w_addr.eq(Mux(load_banks & int(Bank.WB), cfg.wb_depth, 0) + dma.wb_word_index),
            wb.w_data.as_value().eq(dma.wb_word), wb.w_en.eq(dma.wb_word_valid),
            bb.w_addr.eq(Mux(load_banks & int(Bank.WB), cfg.bb_depth, 0) + dma.bb_word_index),
            bb.w_data.eq(dma.bb_word), bb.w_en.eq(dma.bb_word_valid),
        ]
        with m.If(dma.param_word_valid):
            for i in range(2):
                for c in range(clusters):
                    hit = ((load_banks & int(Bank.WB) != 0) == i) \
                        & (dma.param_word_index == c if clusters > 1 else 1)
                    with m.If(hit):
                        m.d.sync += params[i][c].as_value().eq(dma.param_word)
        with m.If(dma.step_word_valid):
            m.d.sync += next_step.as_value().eq(dma.step_word)

        # -- the array --------------------------------------------------------------------------
        lines = [[PeLine(cfg) for _ in range(dc)] for _ in range(dm)]
        for i in range(dm):
            for l in range(dc):
                m.submodules[f"line_{i}_{l}"] = lines[i][l]
        all_lines = [ln for row in lines for ln in row]

        # Step-constant fields of the COMPUTE.
        mode, raw, taps, stride = cur.mode, cur.raw[0], cur.taps[:4], cur.stride
        gb_base = Mux(cur.banks & int(Bank.GB), cfg.gb_depth // 2, 0)
        wb_base = Mux(cur.banks & int(Bank.WB), cfg.wb_depth, 0)
        bb_base = Mux(cur.banks & int(Bank.WB), cfg.bb_depth, 0)
        # (a core built without clusters never runs CLUSTER steps: the compiler emits none)
        cluster = (mode == int(Mode.CLUSTER)) if cfg.fc_clusters == 2 else Const(0)
        pointwise = (mode == int(Mode.POINTWISE)) | cluster
        depthwise = mode == int(Mode.DEPTHWISE)
        two_words = raw | cluster            # words per pass: int8 weights, or two clusters

        # -- prefetcher ----------------------------------------------------------------------------
        go = Signal()                       # the COMPUTE was started this cycle
        pf_active = Signal()                # a prefetch is in progress
        pf_c = Signal(range(2 * S + 4))     # its cycle
        pf_p, pf_tx, pf_ty = Signal(16), Signal(16), Signal(16)
        pf_more = Signal()                  # a pass remains to prefetch
        pf_sel = Signal()                   # rebuild engine of the pass being prefetched
        ready = Signal()                    # next-pass registers hold a complete pass
        next_first = Signal()               # ... that starts a tile
        next_word = Signal(word_layout)
        next_words = Array(Signal(8 * gbytes, name=f"next_word{e}") for e in range(2 * S))
        # pointwise reloads read the current pass's words (one per plane slot)
        cur_words = Array(Signal(8 * gbytes, name=f"cur_word{r}") for r in range(S))
        cur_sel = Signal(data.ArrayLayout(data.StructLayout({"valid": 1, "row": 3, "lane": 12}),
                                          dc))
        pending = Signal(2 * S)             # GB reads still to issue
        read_entry = Signal(range(2 * S))   # the GB read issued last cycle
        read_valid = Signal()
        plane = Signal(12)

        incoming = wb.r_data                 # the pass word, in pf_c == 1
        used = [Signal(name=f"used{r}") for r in range(S)]
        for r in range(S):
            m.d.comb += used[r].eq(Cat(*(incoming.sel[l].valid & (incoming.sel[l].row == r)
                                         for l in range(dc))).any())
        two_halves = (taps > 1) & ~pointwise
        entries = Cat(*[Cat(used[r], used[r] & two_halves) for r in range(S)])
        reads = Mux(pf_c == 1, entries, pending)
        lowest = reads & (-reads)[:2 * S]
        entry = Signal(range(2 * S))
        for e in range(2 * S):
            with m.If(lowest[e]):
                m.d.comb += entry.eq(e)
        reading = pf_active & (pf_c >= 1) & (reads != 0)
        pl = Mux(pf_c == 1, incoming.plane, plane)
        m.d.comb += [
            wb.r_addr.eq(wb_base + Mux(two_words, pf_p << 1, pf_p) + (pf_c == 1)),
            wb.r_en.eq(pf_active & ((pf_c == 0) | ((pf_c == 1) & two_words))),
            # a slot is a kernel row, or for pointwise layers one of S planes of the group
            # (a COMPUTE that runs one tile of a band starts at tile (tx0, ty0) of it)
            gb.r_addr.eq(gb_base + ((pl + Mux(pointwise, entry >> 1, 0)) * cur.gb_rows
                                    + (pf_ty + cur.ty0) * stride + Mux(pointwise, 0, entry >> 1))
                         * cur.gb_words + pf_tx + cur.tx0 + entry[0]),
            gb.r_en.eq(reading),
        ]
        # Basis loads: the COMPUTE's first basis into the engine its first pass switches to; a
        # group's first pass loads the next group's basis into the other engine. Two clusters
        # load two words (engine 0, then engine 1): the first group's at the start, the next
        # group's from a group's last pass once its rows are rebuilt (pf_c 2 and 3).
        b_we, b_which = Signal(), Signal()
        load_b = pf_active & (pf_c == 1) & incoming.bb_load
        go_d, load_b_d, second_d = Signal(), Signal(), Signal()
        second_bb = cluster & (go_d | load_b_d)          # engine 1's word is read next
        m.d.sync += [go_d.eq(go), load_b_d.eq(load_b), second_d.eq(second_bb)]
        m.d.comb += [
            bb.r_addr.eq(bb_base + Mux(go, 0, Mux(second_bb, Mux(go_d, 1, next_word.bb_word + 1),
                                                  incoming.bb_word))),
            bb.r_en.eq(go | load_b | second_bb),
            b_we.eq(go_d | load_b_d | second_d),
            b_which.eq(Mux(cluster, second_d, ~pf_sel)),
        ]
        # Rebuild: in pf_c == 2 the codes (and a second word of int8 weights) are at hand.
        second = wb.r_data
        for i in range(dm):
            for l in range(dc):
                ln = lines[i][l]
                base = (i * dc + l) * S
                m.d.comb += [ln.b_we.eq(b_we), ln.b_which.eq(b_which),
                             ln.b_data.as_value().eq(bb.r_data[i * S * S * 8:(i + 1) * S * S * 8]),
                             ln.sel.eq(pf_sel), ln.raw_mode.eq(raw),
                             ln.w_latch.eq(pf_active & (pf_c == 2))]
                if clusters > 1:     # the second word holds the second cluster's codes
                    m.d.comb += ln.cluster.eq(cluster)
                    m.d.comb += [ln.codes1[s].eq(second.codes[base + s]) for s in range(S)]
                for s in range(S):
                    m.d.comb += ln.codes[s].eq(next_word.codes[base + s])
                    # int8 weights: bytes of the first half in the first word, the rest in the
                    # second, two code fields each
                    n = base + s
                    half = dm * dc * S // 2
                    if n < half:
                        byte = Cat(next_word.codes[2 * n], next_word.codes[2 * n + 1])
                    else:
                        k = n - half
                        byte = Cat(second.codes[2 * k], second.codes[2 * k + 1])
                    m.d.comb += ln.raw[s].eq(byte.as_signed())

        with m.If(go):
            m.d.sync += [pf_active.eq(1), pf_c.eq(0), pf_p.eq(0), pf_tx.eq(0), pf_ty.eq(0),
                         pf_more.eq(1), ready.eq(0), next_first.eq(1)]
        with m.Elif(pf_active):
            m.d.sync += pf_c.eq(pf_c + 1)
            with m.If(pf_c == 1):
                m.d.sync += [next_word.eq(incoming), plane.eq(incoming.plane),
                             pf_sel.eq(pf_sel ^ incoming.switch)]
            with m.If(reading):
                m.d.sync += pending.eq(reads & ~lowest)
            with m.Elif(pf_c == 1):
                m.d.sync += pending.eq(0)
            m.d.sync += [read_valid.eq(reading), read_entry.eq(entry)]
            with m.If(read_valid):
                m.d.sync += next_words[read_entry].eq(gb.r_data)
            with m.If((pf_c >= 2) & ~reading):
                m.d.sync += [pf_active.eq(0), ready.eq(1)]

        # -- passes ------------------------------------------------------------------------------
        started = Signal()                  # a pass of this COMPUTE has run
        finishing = Cat(*(ln.finishing for ln in all_lines)).all()
        drain_free = Signal()
        last_pass_of_tile = pf_p == cur.passes - 1
        advance = finishing & ready & (~(next_first & started) | drain_free)
        final = Signal()                    # every pass has run: close the last tile
        finish = finishing & started & ~pf_more & ~pf_active & ~ready & drain_free & ~final
        # a HOLD step (a chunk of a one-tile layer) leaves its sums in the MACs for the next
        hold = cur.flags & int(Flag.HOLD) != 0
        tile_end = (advance & next_first & started) | (finish & ~hold)
        m.d.comb += [ln.advance.eq(advance | finish) for ln in all_lines]
        m.d.comb += [ln.tile_end.eq(tile_end) for ln in all_lines]
        m.d.comb += [ln.taps.eq(taps) for ln in all_lines]
        m.d.comb += [ln.pointwise.eq(pointwise) for ln in all_lines]
        # The index selector: the FIFO window of each line. Every slice's line l sees the same
        # activations, except in depthwise mode where slice i takes lane i of its group's lanes.
        g_dw = depthwise_group(cfg)
        for l in range(dc):
            sel = next_word.sel[l]
            m.submodules[f"sel_{l}"] = selector = IndexSelector(cfg)
            m.d.comb += [selector.sel.eq(sel), selector.depthwise.eq(depthwise),
                         selector.cur_row.eq(cur_sel[l].row), selector.cur_lane.eq(cur_sel[l].lane),
                         # pointwise mode reloads the FIFO per step; every slice's line l keeps
                         # the same pace
                         selector.k_next.eq(lines[0][l].k_next)]
            m.d.comb += [selector.next_words[e].eq(next_words[e]) for e in range(2 * S)]
            m.d.comb += [selector.cur_words[r].eq(cur_words[r]) for r in range(S)]
            for i in range(dm):
                ln = lines[i][l]
                # slices past a depthwise group's channels stay idle
                m.d.comb += ln.next_active.eq(sel.valid & ~finish & (~depthwise | (i < cur.n_ch)))
                m.d.comb += ln.step_window.eq(selector.step)
                m.d.comb += ln.next_window.eq(selector.dw_window[i] if i < g_dw
                                              else selector.window)
        with m.If(advance):
            m.d.sync += [ready.eq(0), started.eq(1), cur_sel.eq(next_word.sel),
                         next_first.eq(last_pass_of_tile)]
            m.d.sync += [cur_words[r].eq(next_words[2 * r]) for r in range(S)]
            with m.If(pf_more):
                m.d.sync += [pf_active.eq(1), pf_c.eq(0)]
            # the pass after the one just taken
            with m.If(last_pass_of_tile):
                m.d.sync += pf_p.eq(0)
                with m.If(pf_tx == cur.nseg - 1):
                    m.d.sync += [pf_tx.eq(0), pf_ty.eq(pf_ty + 1)]
                    with m.If(pf_ty == cur.ny - 1):
                        m.d.sync += [pf_more.eq(0), pf_active.eq(0)]
                with m.Else():
                    m.d.sync += pf_tx.eq(pf_tx + 1)
            with m.Else():
                m.d.sync += pf_p.eq(pf_p + 1)
        with m.If(finish):
            m.d.sync += final.eq(1)

        # Tile coordinates of the passes running now (for the drain).
        run_tx, run_ty = Signal(16), Signal(16)
        with m.If(advance & next_first):
            m.d.sync += [run_tx.eq(pf_tx), run_ty.eq(pf_ty)]

        # -- drain ------------------------------------------------------------------------------
        wr = self.wr
        en = ~wr.valid | wr.ready           # a refused write freezes the drain
        acc = cfg.acc_width
        shadow = [[Signal(data.ArrayLayout(signed(acc), F), name=f"shadow_{i}_{l}")
                   for l in range(dc)] for i in range(dm)]
        feeding = Signal()
        fc = Signal(range(F + 1))           # pixel being fed
        phase = Signal(8)                   # cycle within the pixel's period
        n_beats = cur.n_ch >> ceil_log2(B)
        period = Mux(n_beats > 1, n_beats, 1)
        d_tx, d_ty = Signal(16), Signal(16)
        m.d.comb += drain_free.eq(~feeding)
        feed = feeding & (phase == 0) & en
        with m.If(tile_end):
            m.d.sync += [feeding.eq(1), fc.eq(0), phase.eq(0), d_tx.eq(run_tx),
                         d_ty.eq(run_ty)]
            for i in range(dm):
                for l in range(dc):
                    m.d.sync += shadow[i][l].eq(lines[i][l].acc_next)
        with m.Elif(feeding & en):
            with m.If(phase == period - 1):
                m.d.sync += phase.eq(0)
                with m.If(fc == F - 1):
                    m.d.sync += feeding.eq(0)
                with m.Else():
                    m.d.sync += fc.eq(fc + 1)
                for i in range(dm):
                    for l in range(dc):
                        m.d.sync += shadow[i][l].as_value().eq(
                            shadow[i][l].as_value() >> acc)
            with m.Else():
                m.d.sync += phase.eq(phase + 1)
        # Pixel tags: stride-1 column, whether the pixel is an output, where it goes, and its
        # cluster (in two clusters MAC f holds column f mod dim_f/2 of cluster f // (dim_f/2)).
        half = F // 2
        pix_cl = cluster & (fc >= half)
        xc = (d_tx + cur.tx0) * F + Mux(pix_cl, fc - half, fc)
        keep = Mux(stride == 2, ~xc[0], 1) & (Mux(stride == 2, xc >> 1, xc) < cur.out_w)
        x_out = Mux(stride == 2, xc >> 1, xc)
        tree_depth = ceil_log2(dc) if dc > 1 else 0
        tags = [(Signal(name=f"tv{i}"), Signal(16, name=f"tx{i}"), Signal(16, name=f"ty{i}"),
                 Signal(name=f"tc{i}")) for i in range(tree_depth + 1)]
        with m.If(en):
            m.d.sync += [tags[0][0].eq(feed & keep), tags[0][1].eq(x_out), tags[0][2].eq(d_ty),
                         tags[0][3].eq(pix_cl)]
            for i in range(1, tree_depth + 1):
                m.d.sync += [a.eq(b) for a, b in zip(tags[i], tags[i - 1])]
        # One adder tree per slice over its lines, registered per level (first level: the feed).
        m.submodules.ppu = ppu = PostProcessor(dm, acc)
        for i in range(dm):
            level = [Signal(signed(acc), name=f"tree_{i}_0_{l}") for l in range(dc)]
            with m.If(en):
                m.d.sync += [level[l].eq(shadow[i][l][0]) for l in range(dc)]
            depth = 0
            while len(level) > 1:
                depth += 1
                nxt = []
                for j in range(0, len(level), 2):
                    reg = Signal(signed(acc), name=f"tree_{i}_{depth}_{j // 2}")
                    pair = level[j:j + 2]
                    with m.If(en):
                        m.d.sync += reg.eq((pair[0] + pair[1])[:acc] if len(pair) == 2
                                           else pair[0])
                    nxt.append(reg)
                level = nxt
            m.d.comb += ppu.acc[i].eq(level[0])
        bank = cur.banks & int(Bank.WB) != 0
        m.d.comb += [
            ppu.en.eq(en), ppu.valid.eq(tags[-1][0]), ppu.first.eq(1), ppu.last.eq(1),
            ppu.relu.eq(cur.flags & int(Flag.RELU) != 0),
            ppu.params.as_value().eq(Array(Array(p.as_value() for p in b) for b in params)
                                     [bank][tags[-1][3] if clusters > 1 else 0]),
        ]
        ppu_x, ppu_y = Signal(16), Signal(16)
        post = [(Signal(16, name=f"px{i}"), Signal(16, name=f"py{i}"), Signal(name=f"pc{i}"))
                for i in range(PostProcessor.LATENCY)]
        with m.If(en):
            m.d.sync += [a.eq(b) for a, b in zip(post[0], tags[-1][1:])]
            for i in range(1, PostProcessor.LATENCY):
                m.d.sync += [a.eq(b) for a, b in zip(post[i], post[i - 1])]
        m.d.comb += [ppu_x.eq(post[-1][0]), ppu_y.eq(post[-1][1])]

        # Writer: n_ch bytes per output pixel, split where the channel group crosses a plane.
        obuf = Signal(8 * dm)
        beats_left = Signal(range(dm // max(1, B) + 2))
        offset = Signal(16)
        pix_addr = Signal(ADDR_BITS)
        base = Signal(ADDR_BITS)            # the program's DRAM base (from the controller)
        out_cl = Signal()                   # the pixel being written is the second cluster's
        lane0 = Mux(out_cl, cur.lane1, cur.lane0)
        len1 = Mux(lane0 + cur.n_ch > L, L - lane0, cur.n_ch)
        beat_addr = Mux(offset < len1, pix_addr + offset,
                        pix_addr - lane0 + cur.out_plane + (offset - len1))
        m.d.comb += [wr.valid.eq(beats_left != 0), wr.p.data.eq(obuf[:8 * B]),
                     wr.p.addr.eq(base + beat_addr)]
        with m.If(wr.valid & wr.ready):
            m.d.sync += [obuf.eq(obuf >> (8 * B)), beats_left.eq(beats_left - 1),
                         offset.eq(offset + B)]
        with m.If(ppu.out_valid & en):
            m.d.sync += [obuf.eq(ppu.out.as_value()), beats_left.eq(n_beats), offset.eq(0),
                         out_cl.eq(post[-1][2]),
                         pix_addr.eq(Mux(post[-1][2], cur.out_addr1, cur.out_addr)
                                     + ppu_y * cur.out_row + ppu_x * L)]
        pipe_busy = Cat(*(t[0] for t in tags)).any() | ppu.out_valid | (beats_left != 0)
        post_valid = Signal(PostProcessor.LATENCY)
        with m.If(en):
            m.d.sync += post_valid.eq(Cat(tags[-1][0], post_valid[:-1]))
        drain_idle = ~feeding & ~pipe_busy & (post_valid == 0)

        # -- controller ----------------------------------------------------------------------------
        def start_loads(step, fetch, pc):
            flags = step.flags
            m.d.comb += [
                dma.start.eq(1),
                dma.gb_en.eq(flags & int(Flag.LOAD_GB) != 0), dma.gb_addr.eq(step.gb_addr),
                dma.gb_rows.eq(step.gb_planes), dma.gb_row_beats.eq(step.gb_beats),
                dma.gb_stride.eq(step.gb_stride),
                dma.wb_en.eq(flags & int(Flag.LOAD_WB) != 0), dma.wb_addr.eq(step.wb_addr),
                dma.wb_rows.eq(1), dma.wb_row_beats.eq(step.wb_words * (wbytes // B)),
                dma.bb_en.eq(flags & int(Flag.LOAD_BB) != 0), dma.bb_addr.eq(step.bb_addr),
                dma.bb_rows.eq(1), dma.bb_row_beats.eq(step.bb_words * (bbytes // B)),
                dma.param_en.eq(flags & int(Flag.LOAD_PARAM) != 0),
                dma.param_addr.eq(step.param_addr), dma.param_rows.eq(1),
                dma.param_row_beats.eq(step.param_words * (dm * PARAM_BYTES // B)),
                dma.step_en.eq(fetch), dma.step_addr.eq(pc), dma.step_rows.eq(1),
                dma.step_row_beats.eq(STEP_BYTES // B),
            ]
            m.d.sync += [load_banks.eq(step.load_banks), gb_dst.eq(step.gb_dst)]

        def launch(step):
            m.d.comb += go.eq(step.op == int(Op.COMPUTE))

        computing = Signal()                # the COMPUTE unit is busy
        compute_done = computing & final & drain_idle
        with m.If(go):
            m.d.sync += [computing.eq(1), final.eq(0), started.eq(0)]
        with m.Elif(compute_done):
            m.d.sync += computing.eq(0)
        step, program_base = run_steps(m, self, layout=SD_STEP_LAYOUT, step_bytes=STEP_BYTES,
                                       config_id=cfg.config_id, header_op=int(Op.HEADER),
                                       last_flag=int(Flag.LAST), next_step=next_step,
                                       load_busy=dma.busy, exec_busy=computing,
                                       start_loads=start_loads, launch=launch)
        m.d.comb += [cur.eq(step), base.eq(program_base), dma.base.eq(program_base),
                     self.config_id.eq(cfg.config_id)]
        return m
