"""The LCP accelerator core: controller, load/compute/store units, buffers and the DRAM port.

The controller runs the compiled command stream one *step* at a time (compiler/lcp/isa.py). In a
step, the load unit streams the step's DRAM reads (weights into the inactive cell registers,
activations into the activation buffer, channel parameters, then the next step's descriptor) while
one execution unit runs: the compute unit streams a tile's pixels through the array into the
accumulators, or the store unit post-processes a finished tile and writes it out. The step ends
when both are idle. Every unit's duration is a closed-form function of its descriptor and of the
DRAM contract (docs/memory-model.md), which is what lets sim/lcp.py predict cycles exactly.
"""

from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from tessera.compiler.lcp.isa import PARAM_BYTES, STEP_BYTES, STEP_DTYPE, Flag, Op
from tessera.config import LcpConfig

from ..memories import SimpleDualPortRam
from .array import DATA_BITS, LcpArray
from .ppu import PARAM_LAYOUT, PostProcessor

__all__ = ["STEP_LAYOUT", "ReadRequest", "dram_signature", "LoadUnit", "ComputeUnit",
           "StoreUnit", "LcpCore"]

ADDR_BITS = 32
BEAT_COUNT_BITS = 24


def _step_layout() -> data.StructLayout:
    """The 64-byte step descriptor as an Amaranth layout, derived from the NumPy dtype."""
    fields = {}
    for name in STEP_DTYPE.names:
        dt = STEP_DTYPE.fields[name][0]
        fields[name] = (signed if dt.kind == "i" else unsigned)(8 * dt.itemsize)
    layout = data.StructLayout(fields)
    for name in STEP_DTYPE.names:  # byte offsets must agree with the dtype
        assert layout[name].offset == 8 * STEP_DTYPE.fields[name][1], name
    return layout


STEP_LAYOUT = _step_layout()

ReadRequest = data.StructLayout({"addr": unsigned(ADDR_BITS), "beats": unsigned(BEAT_COUNT_BITS)})


def dram_signature(cfg) -> dict:
    """The DRAM port: read requests, read data (always accepted), addressed write beats."""
    beat = 8 * cfg.dram_width
    return {
        "rd_req": Out(stream.Signature(ReadRequest)),
        "rd_data": In(stream.Signature(unsigned(beat))),     # ready is always 1
        "wr": Out(stream.Signature(data.StructLayout({"addr": unsigned(ADDR_BITS),
                                                       "data": unsigned(beat)}))),
    }


class LoadUnit(wiring.Component):
    """Issues a step's read requests in order (weights, activation rows, parameters, next step)
    and routes the returning beats by counting them: the data always arrive in request order."""

    def __init__(self, cfg: LcpConfig):
        self._cfg = cfg
        B = cfg.dram_width
        self.w_beats = cfg.rows * cfg.cols // B
        self.param_beats = cfg.cols * PARAM_BYTES // B
        self.step_beats = STEP_BYTES // B
        super().__init__({
            "start": In(1),
            "base": In(ADDR_BITS),
            "step": In(STEP_LAYOUT),        # the current step's load fields
            "fetch": In(1),                 # also fetch the next step descriptor
            "fetch_addr": In(ADDR_BITS),
            "busy": Out(1),
            "rd_req": Out(stream.Signature(ReadRequest)),
            "rd_data": In(stream.Signature(unsigned(8 * B))),
            "w_row": Out(data.ArrayLayout(signed(DATA_BITS), cfg.cols)),
            "w_load": Out(1),
            "abuf_addr": Out(ceil_log2(cfg.abuf_depth)),
            "abuf_data": Out(8 * cfg.rows),
            "abuf_en": Out(1),
            "params": Out(data.ArrayLayout(PARAM_LAYOUT, cfg.cols)),
            "next_step": Out(STEP_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, B = self._cfg, self._cfg.dram_width
        W, ACT, PARAM, FETCH = range(4)
        enabled = Cat(self.step.flags & int(Flag.LOAD_W) != 0, self.step.flags & int(Flag.LOAD_ACT) != 0,
                      self.step.flags & int(Flag.LOAD_PARAM) != 0, self.fetch)

        # -- request side ---------------------------------------------------------------------
        pending = Signal(4)
        base = Signal(ADDR_BITS)
        w_addr, p_addr, f_addr = (Signal(ADDR_BITS, name=n) for n in ("w_addr", "p_addr",
                                                                      "f_addr"))
        act_addr = Signal(ADDR_BITS)
        act_stride = Signal(ADDR_BITS)
        act_rows_left = Signal(16)
        act_row_beats = Signal(32)
        act_rows = Signal(16)
        with m.If(self.start):
            m.d.sync += [
                pending.eq(enabled), base.eq(self.base),
                w_addr.eq(self.step.w_addr), p_addr.eq(self.step.param_addr),
                f_addr.eq(self.fetch_addr), act_addr.eq(self.step.act_addr),
                act_stride.eq(self.step.act_row_stride), act_rows_left.eq(self.step.act_rows),
                act_rows.eq(self.step.act_rows), act_row_beats.eq(self.step.act_row_beats),
            ]
        req = self.rd_req
        m.d.comb += req.valid.eq(pending != 0)
        with m.If(pending[W]):
            m.d.comb += [req.p.addr.eq(base + w_addr), req.p.beats.eq(self.w_beats)]
        with m.Elif(pending[ACT]):
            m.d.comb += [req.p.addr.eq(base + act_addr), req.p.beats.eq(act_row_beats)]
        with m.Elif(pending[PARAM]):
            m.d.comb += [req.p.addr.eq(base + p_addr), req.p.beats.eq(self.param_beats)]
        with m.Else():
            m.d.comb += [req.p.addr.eq(base + f_addr), req.p.beats.eq(self.step_beats)]
        with m.If(req.valid & req.ready):
            with m.If(pending[W]):
                m.d.sync += pending[W].eq(0)
            with m.Elif(pending[ACT]):
                m.d.sync += [act_rows_left.eq(act_rows_left - 1),
                             act_addr.eq(act_addr + act_stride)]
                with m.If(act_rows_left == 1):
                    m.d.sync += pending[ACT].eq(0)
            with m.Elif(pending[PARAM]):
                m.d.sync += pending[PARAM].eq(0)
            with m.Else():
                m.d.sync += pending[FETCH].eq(0)

        # -- data side: count beats per destination ---------------------------------------------
        waiting = Signal(4)
        count = Signal(32)            # beats received in the current destination
        rows_done = Signal(16)        # ACT: requests completed
        with m.If(self.start):
            m.d.sync += [waiting.eq(enabled), count.eq(0), rows_done.eq(0)]
        m.d.comb += self.busy.eq(waiting != 0)
        beat = self.rd_data.payload
        got = self.rd_data.valid
        m.d.comb += self.rd_data.ready.eq(1)  # every destination takes a beat per cycle

        def finish(phase):
            m.d.sync += [waiting[phase].eq(0), count.eq(0)]

        # Weights: `cols` bytes per array row, shifted in through the first row.
        w_acc = Signal(8 * cfg.cols)
        w_line = Cat(w_acc[8 * B:], beat)
        per_row = cfg.cols // B
        m.d.comb += self.w_row.as_value().eq(w_line)
        # Activations: `rows` bytes per buffer entry.
        a_acc = Signal(8 * cfg.rows)
        a_entry = Cat(a_acc[8 * B:], beat)
        per_entry = cfg.rows // B
        a_ptr = Signal(ceil_log2(cfg.abuf_depth))
        with m.If(self.start):
            m.d.sync += a_ptr.eq(self.step.act_abuf_base)
        m.d.comb += [self.abuf_addr.eq(a_ptr), self.abuf_data.eq(a_entry)]
        params = Signal(8 * PARAM_BYTES * cfg.cols)
        m.d.comb += self.params.as_value().eq(params)
        nxt = Signal(8 * STEP_BYTES)
        m.d.comb += self.next_step.as_value().eq(nxt)

        with m.If(got):
            m.d.sync += count.eq(count + 1)
            with m.If(waiting[W]):
                m.d.sync += w_acc.eq(w_line)
                m.d.comb += self.w_load.eq(count % per_row == per_row - 1)
                with m.If(count == self.w_beats - 1):
                    finish(W)
            with m.Elif(waiting[ACT]):
                m.d.sync += a_acc.eq(a_entry)
                with m.If(count % per_entry == per_entry - 1):
                    m.d.comb += self.abuf_en.eq(1)
                    m.d.sync += a_ptr.eq(a_ptr + 1)
                with m.If(count == act_row_beats - 1):
                    m.d.sync += [count.eq(0), rows_done.eq(rows_done + 1)]
                    with m.If(rows_done == act_rows - 1):
                        finish(ACT)
            with m.Elif(waiting[PARAM]):
                m.d.sync += params.eq(Cat(params[8 * B:], beat))
                with m.If(count == self.param_beats - 1):
                    finish(PARAM)
            with m.Else():
                m.d.sync += nxt.eq(Cat(nxt[8 * B:], beat))
                with m.If(count == self.step_beats - 1):
                    finish(FETCH)
        return m


class ComputeUnit(wiring.Component):
    """Streams one tile's pixels through the array for one weight block.

    Pixel i's activation-buffer address is presented i+1 cycles after start; positions in the
    zero padding read nothing and feed zeros. The column sums are added to (or, on the first
    block, written into) accumulator i ``1 + array latency`` cycles later.
    """

    def __init__(self, cfg: LcpConfig, array_latency: int, sum_bits: int):
        self._cfg = cfg
        self._lat = array_latency
        self._sum_bits = sum_bits
        acc = data.ArrayLayout(signed(cfg.acc_width), cfg.cols)
        super().__init__({
            "start": In(1),
            "step": In(STEP_LAYOUT),
            "busy": Out(1),
            "abuf_addr": Out(ceil_log2(cfg.abuf_depth)),
            "abuf_en": Out(1),
            "abuf_data": In(8 * cfg.rows),
            "x": Out(data.ArrayLayout(signed(DATA_BITS), cfg.rows)),
            "swap": Out(1),
            "sums": In(data.ArrayLayout(signed(sum_bits), cfg.cols)),
            "acc_raddr": Out(ceil_log2(cfg.acc_depth)),
            "acc_ren": Out(1),
            "acc_rdata": In(acc),
            "acc_waddr": Out(ceil_log2(cfg.acc_depth)),
            "acc_wdata": Out(acc),
            "acc_wen": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, lat = self._cfg, self._lat
        s = self.step
        m.d.comb += self.swap.eq(self.start)

        # -- address generator -----------------------------------------------------------------
        active = Signal()
        x, y = Signal(16), Signal(16)
        iy, ix = Signal(signed(26)), Signal(signed(26))
        row_addr, addr = Signal(signed(36)), Signal(signed(36))
        tw, th, stride = Signal(16), Signal(16), Signal(8)
        bh, bw, ox_off = Signal(16), Signal(16), Signal(signed(16))
        row_step = Signal(32)
        clear = Signal()
        pixel = Signal(ceil_log2(cfg.acc_depth) + 1)
        with m.If(self.start):
            m.d.sync += [
                active.eq(1), x.eq(0), y.eq(0), pixel.eq(0),
                iy.eq(s.oy_off), ix.eq(s.ox_off), row_addr.eq(s.abuf_start),
                addr.eq(s.abuf_start), tw.eq(s.tw), th.eq(s.th), stride.eq(s.stride),
                bh.eq(s.bh), bw.eq(s.bw), ox_off.eq(s.ox_off), row_step.eq(s.row_step),
                clear.eq(s.flags & int(Flag.ACC_CLEAR) != 0),
            ]
        inside = (iy >= 0) & (iy < bh) & (ix >= 0) & (ix < bw)
        m.d.comb += [self.abuf_addr.eq(addr), self.abuf_en.eq(active & inside)]
        last = (x == tw - 1) & (y == th - 1)
        with m.If(active):
            m.d.sync += pixel.eq(pixel + 1)
            with m.If(x == tw - 1):
                m.d.sync += [x.eq(0), y.eq(y + 1), ix.eq(ox_off), iy.eq(iy + stride),
                             row_addr.eq(row_addr + row_step), addr.eq(row_addr + row_step)]
            with m.Else():
                m.d.sync += [x.eq(x + 1), ix.eq(ix + stride), addr.eq(addr + stride)]
            with m.If(last):
                m.d.sync += active.eq(0)

        # -- pipeline tags: stage 0 is the address cycle ------------------------------------------
        depth = 2 + lat  # address -> buffer data -> array (lat) -> accumulator write
        valid = [Signal(name=f"valid{i}") for i in range(depth)]
        tag = [Signal(ceil_log2(cfg.acc_depth), name=f"acc_addr{i}") for i in range(depth)]
        inb = Signal()
        m.d.comb += [valid[0].eq(active), tag[0].eq(pixel)]
        m.d.sync += inb.eq(active & inside)
        for i in range(1, depth):
            m.d.sync += [valid[i].eq(valid[i - 1]), tag[i].eq(tag[i - 1])]
        for r in range(cfg.rows):
            lane = self.abuf_data[8 * r:8 * r + 8].as_signed()
            m.d.comb += self.x[r].eq(Mux(inb, lane, 0))

        # Accumulate: read one cycle ahead of the sums, write when they arrive.
        m.d.comb += [self.acc_raddr.eq(tag[depth - 2]), self.acc_ren.eq(valid[depth - 2] & ~clear)]
        m.d.comb += [self.acc_waddr.eq(tag[depth - 1]), self.acc_wen.eq(valid[depth - 1])]
        for c in range(cfg.cols):
            total = Mux(clear, self.sums[c], self.acc_rdata[c] + self.sums[c])
            m.d.comb += self.acc_wdata[c].eq(total[:cfg.acc_width].as_signed())

        busy = Signal()
        with m.If(self.start):
            m.d.sync += busy.eq(1)
        with m.Elif(valid[depth - 1] & ~valid[depth - 2] & ~active):
            m.d.sync += busy.eq(0)
        m.d.comb += self.busy.eq(busy)
        return m


class StoreUnit(wiring.Component):
    """Post-processes a tile and writes it, one output vector (``rows`` channels of one pixel of
    one plane) every ``max(window, rows/dram_width)`` cycles. A write the memory does not accept
    freezes the whole unit until it does."""

    def __init__(self, cfg: LcpConfig):
        self._cfg = cfg
        acc = data.ArrayLayout(signed(cfg.acc_width), cfg.cols)
        beat = 8 * cfg.dram_width
        super().__init__({
            "start": In(1),
            "base": In(ADDR_BITS),
            "step": In(STEP_LAYOUT),
            "busy": Out(1),
            "acc_raddr": Out(ceil_log2(cfg.acc_depth)),
            "acc_ren": Out(1),
            "acc_rdata": In(acc),
            "params": In(data.ArrayLayout(PARAM_LAYOUT, cfg.cols)),
            "wr": Out(stream.Signature(data.StructLayout({"addr": unsigned(ADDR_BITS),
                                                           "data": unsigned(beat)}))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, s = self._cfg, self.step
        B, rows = cfg.dram_width, cfg.rows
        beats_per_vec = rows // B
        planes_max = cfg.planes
        m.submodules.ppu = ppu = PostProcessor(rows, cfg.acc_width)
        en = Signal()
        m.d.comb += en.eq(~self.wr.valid | self.wr.ready)

        # -- reader: plane, pooled row, pooled column, window element ----------------------------
        active = Signal()
        pool, relu = Signal(), Signal()
        tw = Signal(16)
        ph, pw = Signal(16), Signal(16)       # output tile in (pooled) pixels
        planes = Signal(8)
        plane, py, px = Signal(8), Signal(16), Signal(16)
        phase = Signal(3)                     # cycle within the vector's period
        row_base = Signal(ceil_log2(cfg.acc_depth) + 2)
        with m.If(self.start):
            is_pool = s.flags & int(Flag.POOL) != 0
            m.d.sync += [
                active.eq(1), pool.eq(is_pool), relu.eq(s.flags & int(Flag.RELU) != 0),
                tw.eq(s.tw), ph.eq(Mux(is_pool, s.th >> 1, s.th)),
                pw.eq(Mux(is_pool, s.tw >> 1, s.tw)), planes.eq(s.planes),
                plane.eq(0), py.eq(0), px.eq(0), phase.eq(0), row_base.eq(0),
            ]
        window = Mux(pool, 4, 1)
        period = Mux(pool, max(4, beats_per_vec), max(1, beats_per_vec))
        dy, dx = phase[1], phase[0]
        col = Mux(pool, Cat(dx, px), px)
        m.d.comb += [
            self.acc_raddr.eq(row_base + col + Mux(pool & dy, tw, 0)),
            self.acc_ren.eq(active & (phase < window) & en),
        ]
        last_vec = (plane == planes - 1) & (py == ph - 1) & (px == pw - 1)
        with m.If(active & en):
            with m.If(phase == period - 1):
                m.d.sync += phase.eq(0)
                with m.If(px == pw - 1):
                    m.d.sync += px.eq(0)
                    with m.If(py == ph - 1):
                        m.d.sync += [py.eq(0), row_base.eq(0), plane.eq(plane + 1)]
                    with m.Else():
                        m.d.sync += [py.eq(py + 1), row_base.eq(row_base + Mux(pool, tw << 1, tw))]
                    with m.If(last_vec):
                        m.d.sync += active.eq(0)
                with m.Else():
                    m.d.sync += px.eq(px + 1)
            with m.Else():
                m.d.sync += phase.eq(phase + 1)

        # -- post-processing: the accumulator arrives one cycle after its read -----------------
        rd_valid, rd_first, rd_last, rd_plane = Signal(), Signal(), Signal(), Signal(8)
        with m.If(en):
            m.d.sync += [rd_valid.eq(self.acc_ren), rd_first.eq(phase == 0),
                         rd_last.eq(phase == window - 1), rd_plane.eq(plane)]
        m.d.comb += [ppu.en.eq(en), ppu.valid.eq(rd_valid), ppu.first.eq(rd_first),
                     ppu.last.eq(rd_last), ppu.relu.eq(relu)]
        for lane in range(rows):
            a = self.acc_rdata[lane]
            p = self.params[lane].as_value()
            for j in range(1, planes_max):
                a = Mux(rd_plane == j, self.acc_rdata[j * rows + lane], a)
                p = Mux(rd_plane == j, self.params[j * rows + lane].as_value(), p)
            m.d.comb += [ppu.acc[lane].eq(a), ppu.params[lane].as_value().eq(p)]

        # -- writer: rows/B addressed beats per output vector ---------------------------------------
        out_buf = Signal(8 * rows)
        beats_left = Signal(range(beats_per_vec + 1))
        base, out_addr = Signal(ADDR_BITS), Signal(ADDR_BITS)
        row_stride, plane_stride = Signal(ADDR_BITS), Signal(ADDR_BITS)
        w_plane, w_py, w_px = Signal(8), Signal(16), Signal(16)
        vec_addr = Signal(ADDR_BITS)        # next vector's address
        row_addr = Signal(ADDR_BITS)        # its row's first vector
        plane_addr = Signal(ADDR_BITS)      # its plane's first vector
        beat_addr = Signal(ADDR_BITS)
        busy = Signal()
        with m.If(self.start):
            m.d.sync += [
                busy.eq(1), base.eq(self.base), w_plane.eq(0), w_py.eq(0), w_px.eq(0),
                vec_addr.eq(s.out_addr), row_addr.eq(s.out_addr), plane_addr.eq(s.out_addr),
                row_stride.eq(s.out_row_stride), plane_stride.eq(s.out_plane_stride),
            ]
        m.d.comb += [
            self.wr.valid.eq(beats_left != 0),
            self.wr.p.data.eq(out_buf[:8 * B]),
            self.wr.p.addr.eq(base + beat_addr),
        ]
        w_last = (w_plane == planes - 1) & (w_py == ph - 1) & (w_px == pw - 1)
        final_vec = Signal()
        with m.If(self.wr.valid & self.wr.ready):
            m.d.sync += [out_buf.eq(out_buf >> (8 * B)), beats_left.eq(beats_left - 1),
                         beat_addr.eq(beat_addr + B)]
            with m.If((beats_left == 1) & final_vec):
                m.d.sync += [busy.eq(0), final_vec.eq(0)]
        with m.If(ppu.out_valid & en):
            m.d.sync += [out_buf.eq(ppu.out.as_value()), beats_left.eq(beats_per_vec),
                         beat_addr.eq(vec_addr), final_vec.eq(w_last)]
            with m.If(w_px == pw - 1):
                m.d.sync += w_px.eq(0)
                with m.If(w_py == ph - 1):
                    m.d.sync += [w_py.eq(0), w_plane.eq(w_plane + 1),
                                 vec_addr.eq(plane_addr + plane_stride),
                                 row_addr.eq(plane_addr + plane_stride),
                                 plane_addr.eq(plane_addr + plane_stride)]
                with m.Else():
                    m.d.sync += [w_py.eq(w_py + 1), vec_addr.eq(row_addr + row_stride),
                                 row_addr.eq(row_addr + row_stride)]
            with m.Else():
                m.d.sync += [w_px.eq(w_px + 1), vec_addr.eq(vec_addr + rows)]
        m.d.comb += self.busy.eq(busy)
        return m


class LcpCore(wiring.Component):
    """The whole accelerator behind one DRAM port.

    Pulse ``start`` with the program's DRAM ``base``; ``done`` rises when the program has finished
    (``error`` set if its HEADER names another configuration); ``cycles`` counts the cycles in
    between. ``config_id`` is the read-only ID register: the configuration hash.
    """

    def __init__(self, cfg: LcpConfig):
        if not isinstance(cfg, LcpConfig):
            raise TypeError(f"LcpCore needs an LcpConfig, not {type(cfg).__name__}")
        self._cfg = cfg
        super().__init__({
            "start": In(1),
            "base": In(ADDR_BITS),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "cycles": Out(32),
            "config_id": Out(32),
            **dram_signature(cfg),
        })

    @property
    def config(self) -> LcpConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.array = array = LcpArray(cfg)
        m.submodules.load = load = LoadUnit(cfg)
        m.submodules.compute = compute = ComputeUnit(cfg, array.latency, array.sum_bits)
        m.submodules.store = store = StoreUnit(cfg)
        m.submodules.abuf = abuf = SimpleDualPortRam(unsigned(8 * cfg.rows), cfg.abuf_depth,
                                                     "abuf")
        acc_shape = data.ArrayLayout(signed(cfg.acc_width), cfg.cols)
        m.submodules.acc = acc = SimpleDualPortRam(acc_shape, cfg.acc_depth, "acc")

        m.d.comb += self.config_id.eq(cfg.config_id)
        wiring.connect(m, load.rd_req, wiring.flipped(self.rd_req))
        wiring.connect(m, wiring.flipped(self.rd_data), load.rd_data)
        wiring.connect(m, store.wr, wiring.flipped(self.wr))

        # Buffers and array wiring.
        m.d.comb += [
            abuf.w_addr.eq(load.abuf_addr), abuf.w_data.eq(load.abuf_data),
            abuf.w_en.eq(load.abuf_en),
            abuf.r_addr.eq(compute.abuf_addr), abuf.r_en.eq(compute.abuf_en),
            compute.abuf_data.eq(abuf.r_data),
            array.x.eq(compute.x), array.swap.eq(compute.swap),
            array.w_row.eq(load.w_row), array.w_load.eq(load.w_load),
            compute.sums.eq(array.sums),
            acc.w_addr.eq(compute.acc_waddr), acc.w_data.eq(compute.acc_wdata),
            acc.w_en.eq(compute.acc_wen),
            compute.acc_rdata.eq(acc.r_data), store.acc_rdata.eq(acc.r_data),
            store.params.eq(load.params),
        ]
        storing = Signal()
        m.d.comb += [
            acc.r_addr.eq(Mux(storing, store.acc_raddr, compute.acc_raddr)),
            acc.r_en.eq(Mux(storing, store.acc_ren, compute.acc_ren)),
        ]

        # Controller.
        cur = Signal(STEP_LAYOUT)
        base = Signal(32)
        pc = Signal(32)
        cycles = Signal(32)
        error = Signal()
        last = cur.flags & int(Flag.LAST) != 0
        m.d.comb += [load.base.eq(base), store.base.eq(base), compute.step.eq(cur),
                     store.step.eq(cur), self.cycles.eq(cycles), self.error.eq(error)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [base.eq(self.base), pc.eq(0), cycles.eq(0), error.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [load.start.eq(1), load.fetch.eq(1), load.fetch_addr.eq(pc),
                             self.busy.eq(1)]
                m.d.sync += [pc.eq(pc + STEP_BYTES), cycles.eq(cycles + 1)]
                m.next = "WAIT_FETCH"
            with m.State("WAIT_FETCH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(~load.busy):
                    with m.If((load.next_step.op == int(Op.HEADER))
                              & (load.next_step.config_id == cfg.config_id)):
                        m.d.sync += cur.eq(load.next_step)
                        m.next = "LAUNCH"
                    with m.Else():
                        m.d.sync += error.eq(1)
                        m.next = "DONE"
            with m.State("LAUNCH"):
                m.d.comb += [
                    self.busy.eq(1),
                    load.step.eq(cur), load.start.eq(1), load.fetch.eq(~last),
                    load.fetch_addr.eq(pc),
                    compute.start.eq(cur.op == int(Op.COMPUTE)),
                    store.start.eq(cur.op == int(Op.STORE)),
                ]
                m.d.sync += [storing.eq(cur.op == int(Op.STORE)), cycles.eq(cycles + 1)]
                with m.If(~last):
                    m.d.sync += pc.eq(pc + STEP_BYTES)
                m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(~load.busy & ~compute.busy & ~store.busy):
                    with m.If(last):
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += cur.eq(load.next_step)
                        m.next = "LAUNCH"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                with m.If(self.start):
                    m.d.sync += [base.eq(self.base), pc.eq(0), cycles.eq(0), error.eq(0)]
                    m.next = "FETCH"
        return m
