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

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from tessera.compiler.lcp.isa import PARAM_BYTES, STEP_BYTES, STEP_DTYPE, Flag, Op
from tessera.config import LcpConfig

from ..controller import run_steps
from ..descriptor import struct_layout
from ..dma import ADDR_BITS, ReadDma, dram_signature
from ..memories import SimpleDualPortRam
from .array import DATA_BITS, LcpArray
from .ppu import PARAM_LAYOUT, PostProcessor

__all__ = ["STEP_LAYOUT", "ComputeUnit", "StoreUnit", "LcpCore"]


STEP_LAYOUT = struct_layout(STEP_DTYPE)

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
        base = Signal(ADDR_BITS)
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
        B = cfg.dram_width
        m.submodules.load = load = ReadDma(B, [("w", cfg.cols), ("act", cfg.rows),
                                                ("param", cfg.cols * PARAM_BYTES),
                                                ("step", STEP_BYTES)])
        m.submodules.compute = compute = ComputeUnit(cfg, array.latency, array.sum_bits)
        m.submodules.store = store = StoreUnit(cfg)
        m.submodules.abuf = abuf = SimpleDualPortRam(unsigned(8 * cfg.rows), cfg.abuf_depth,
                                                     "abuf", banking="msb")
        acc_shape = data.ArrayLayout(signed(cfg.acc_width), cfg.cols)
        m.submodules.acc = acc = SimpleDualPortRam(acc_shape, cfg.acc_depth, "acc",
                                                   banking="lsb")

        wiring.connect(m, load.rd_req, wiring.flipped(self.rd_req))
        wiring.connect(m, wiring.flipped(self.rd_data), load.rd_data)
        wiring.connect(m, store.wr, wiring.flipped(self.wr))

        # Buffers and array wiring.
        # Load unit destinations: the weight shift chain, the ABUF, parameters, the next step.
        params = Signal(data.ArrayLayout(PARAM_LAYOUT, cfg.cols))
        next_step = Signal(STEP_LAYOUT)
        act_base = Signal(ceil_log2(cfg.abuf_depth))
        with m.If(load.param_word_valid):
            m.d.sync += params.as_value().eq(load.param_word)
        with m.If(load.step_word_valid):
            m.d.sync += next_step.as_value().eq(load.step_word)
        m.d.comb += [
            abuf.w_addr.eq(act_base + load.act_word_index), abuf.w_data.eq(load.act_word),
            abuf.w_en.eq(load.act_word_valid),
            abuf.r_addr.eq(compute.abuf_addr), abuf.r_en.eq(compute.abuf_en),
            compute.abuf_data.eq(abuf.r_data),
            array.x.eq(compute.x), array.swap.eq(compute.swap),
            array.w_row.as_value().eq(load.w_word), array.w_load.eq(load.w_word_valid),
            compute.sums.eq(array.sums),
            acc.w_addr.eq(compute.acc_waddr), acc.w_data.eq(compute.acc_wdata),
            acc.w_en.eq(compute.acc_wen),
            compute.acc_rdata.eq(acc.r_data), store.acc_rdata.eq(acc.r_data),
            store.params.eq(params),
        ]
        storing = Signal()
        m.d.comb += [
            acc.r_addr.eq(Mux(storing, store.acc_raddr, compute.acc_raddr)),
            acc.r_en.eq(Mux(storing, store.acc_ren, compute.acc_ren)),
        ]

        # Controller.
        def start_loads(step, fetch, pc):
            """Program the load unit with a step's transfers and, if ``fetch``, the next step."""
            flags = step.flags
            m.d.comb += [
                load.start.eq(1),
                load.w_en.eq(flags & int(Flag.LOAD_W) != 0), load.w_addr.eq(step.w_addr),
                load.w_rows.eq(1), load.w_row_beats.eq(cfg.rows * cfg.cols // B),
                load.act_en.eq(flags & int(Flag.LOAD_ACT) != 0), load.act_addr.eq(step.act_addr),
                load.act_rows.eq(step.act_rows), load.act_row_beats.eq(step.act_row_beats),
                load.act_stride.eq(step.act_row_stride),
                load.param_en.eq(flags & int(Flag.LOAD_PARAM) != 0),
                load.param_addr.eq(step.param_addr), load.param_rows.eq(1),
                load.param_row_beats.eq(cfg.cols * PARAM_BYTES // B),
                load.step_en.eq(fetch), load.step_addr.eq(pc), load.step_rows.eq(1),
                load.step_row_beats.eq(STEP_BYTES // B),
            ]
            m.d.sync += act_base.eq(step.act_abuf_base)

        def launch(step):
            m.d.comb += [compute.start.eq(step.op == int(Op.COMPUTE)),
                         store.start.eq(step.op == int(Op.STORE))]
            m.d.sync += storing.eq(step.op == int(Op.STORE))

        cur, base = run_steps(m, self, layout=STEP_LAYOUT, step_bytes=STEP_BYTES,
                              config_id=cfg.config_id, header_op=int(Op.HEADER),
                              last_flag=int(Flag.LAST), next_step=next_step,
                              load_busy=load.busy, exec_busy=compute.busy | store.busy,
                              start_loads=start_loads, launch=launch)
        m.d.comb += [load.base.eq(base), store.base.eq(base), compute.step.eq(cur),
                     store.step.eq(cur), self.config_id.eq(cfg.config_id)]
        return m
