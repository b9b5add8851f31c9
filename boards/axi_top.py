"""The accelerator core behind AXI: the Vivado top ``tessera_top`` (docs/pynq.md).

The core is unchanged: the shell adapts its DRAM port (read requests, read beats, addressed write
beats) to an AXI4 master and exposes its control and status through AXI4-Lite registers
(driver/regs.py) and an interrupt. Port names are the flat ones Vivado infers interfaces from
(``s_axi_*``, ``m_axi_*``, ``aclk``, ``aresetn``, ``interrupt``).

Cycle exactness through AXI rests on the *latency equalizer* in ReadPath: every read request the
core makes is timestamped when it is accepted and its beats are released to the core exactly when
the DRAM contract says (first beat L cycles later, then one per cycle, in order), from a FIFO that
the AXI R channel fills. An AXI slave that answers within L cycles is therefore invisible to the
core; a slower one only delays the core (values stay right) and is counted.
"""

from __future__ import annotations

from amaranth import Cat, ClockDomain, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from tessera.config import ArchConfig
from tessera.hdl.top import core_for

from .driver.regs import ADDR_BITS, REG, Register, version_word

__all__ = ["AddrBurst", "ReadPath", "WritePath", "AxiTop", "TOP_NAME", "latency_max",
           "MAX_BURST", "LINGER"]

#: Verilog module name of the shell; the Vivado module reference and the driver's VLNV use it.
TOP_NAME = "tessera_top"
#: Longest AXI burst the shell issues (AXI4 INCR allows 256; bursts never cross 4 KB either).
MAX_BURST = 256
#: A write burst stays open while the core's write beats come at most this many cycles apart.
LINGER = 4
#: Depths: read data and write data FIFOs (one BRAM36 each at 64 bits), read request queue,
#: write burst descriptor queue.
READ_DATA_DEPTH = 512
REQUEST_DEPTH = 512
WRITE_DATA_DEPTH = 512
AW_DEPTH = 32

AddrBurst = data.StructLayout({"addr": unsigned(32), "len": unsigned(8)})


def latency_max(cfg: ArchConfig) -> int:
    """Largest LATENCY the equalizer holds: room to raise the preset's latency at run time (a
    layer that reads the previous layer's output needs L to cover the write drain too)."""
    return 1 << ceil_log2(max(256, 4 * cfg.dram_latency))


def _max_burst(beat_bytes: int) -> int:
    return min(MAX_BURST, 4096 // beat_bytes)


def _min(a, b):
    return Mux(a < b, a, b)


class ReadPath(wiring.Component):
    """Core read requests become AXI AR bursts; AXI R beats reach the core at the contract times.

    ``req`` is always accepted unless a queue is full (``req_stall``). The timing queue holds,
    per accepted request, the cycle its first beat is due (acceptance + ``latency``) and its beat
    count; when that cycle comes the count joins ``due``, and one beat is released per cycle
    while ``due`` is non-zero. ``late`` marks a cycle in which a beat is due but AXI has not
    delivered it yet. A request is not issued on AR while it overlaps the address range of
    writes still in flight (``wr_busy``/``wr_lo``/``wr_hi``), so reads see every earlier write;
    ``wr_wait`` asks the write path to close its open burst at once.
    """

    def __init__(self, request_shape, beat_bytes: int, latency_max: int):
        self._req_shape = request_shape
        self._B = beat_bytes
        self._lmax = latency_max
        self._tbits = ceil_log2(latency_max + 1)
        super().__init__({
            "req": In(stream.Signature(request_shape)),
            "data": Out(stream.Signature(unsigned(8 * beat_bytes))),
            "latency": In(range(latency_max + 1)),
            "wr_busy": In(1),
            "wr_lo": In(32),
            "wr_hi": In(32),
            "ar": Out(stream.Signature(AddrBurst)),
            "r": In(stream.Signature(data.StructLayout({"data": unsigned(8 * beat_bytes),
                                                         "resp": unsigned(2)}))),
            "late": Out(1),
            "req_stall": Out(1),
            "resp_error": Out(1),
            "wr_wait": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B, shift = self._B, exact_log2(self._B)
        beats_shape = self._req_shape["beats"].shape
        timing = data.StructLayout({"time": unsigned(self._tbits), "beats": beats_shape})
        m.submodules.timing = tq = fifo.SyncFIFO(width=timing.size, depth=self._lmax)
        m.submodules.requests = rq = fifo.SyncFIFOBuffered(width=self._req_shape.size,
                                                            depth=REQUEST_DEPTH)
        m.submodules.beats = dq = fifo.SyncFIFOBuffered(width=8 * B, depth=READ_DATA_DEPTH)

        # -- accept requests: timestamp them and queue them for AR ------------------------------
        now = Signal(self._tbits)
        m.d.sync += now.eq(now + 1)
        req = self.req
        m.d.comb += [
            req.ready.eq(tq.w_rdy & rq.w_rdy),
            tq.w_en.eq(req.valid & req.ready),
            tq.w_data.eq(Cat((now + self.latency)[:self._tbits], req.p.beats)),
            rq.w_en.eq(req.valid & req.ready),
            rq.w_data.eq(req.payload.as_value()),
            self.req_stall.eq(req.valid & ~req.ready),
        ]

        # -- latency equalizer: release beats at the contract times -----------------------------
        head = data.View(timing, tq.r_data)
        arrive = Signal()
        due = Signal(32)
        total = Signal(32)
        m.d.comb += [
            arrive.eq(tq.r_rdy & (head.time == now)),
            tq.r_en.eq(arrive),
            total.eq(due + Mux(arrive, head.beats, 0)),
            self.data.valid.eq((total != 0) & dq.r_rdy),
            self.data.payload.eq(dq.r_data),
            dq.r_en.eq(self.data.valid & self.data.ready),
            self.late.eq((total != 0) & ~dq.r_rdy),
        ]
        m.d.sync += due.eq(total - (self.data.valid & self.data.ready))

        # -- R channel fills the beat FIFO ------------------------------------------------------
        m.d.comb += [
            dq.w_data.eq(self.r.p.data),
            dq.w_en.eq(self.r.valid),
            self.r.ready.eq(dq.w_rdy),
            self.resp_error.eq(self.r.valid & self.r.ready & (self.r.p.resp != 0)),
        ]

        # -- AR: split each request into bursts (<= MAX_BURST beats, never across 4 KB) ---------
        queued = data.View(self._req_shape, rq.r_data)
        cur_valid = Signal()
        cur_addr = Signal(32)
        cur_left = Signal(beats_shape)
        src_addr = Mux(cur_valid, cur_addr, queued.addr)
        src_left = Mux(cur_valid, cur_left, queued.beats)
        to_page = (Const(4096, 13) - src_addr[:12]) >> shift
        length = Signal(range(_max_burst(B) + 1))
        m.d.comb += length.eq(_min(_min(src_left, _max_burst(B)), to_page))
        src_end = src_addr + (src_left << shift)
        hazard = self.wr_busy & (src_addr < self.wr_hi) & (self.wr_lo < src_end)
        ar = self.ar
        load = (~ar.valid | ar.ready) & (cur_valid | rq.r_rdy) & ~hazard
        m.d.comb += self.wr_wait.eq((cur_valid | rq.r_rdy) & hazard)
        with m.If(ar.valid & ar.ready):
            m.d.sync += ar.valid.eq(0)
        with m.If(load):
            rest = src_left - length
            m.d.sync += [
                ar.valid.eq(1), ar.p.addr.eq(src_addr), ar.p.len.eq(length - 1),
                cur_valid.eq(rest != 0), cur_addr.eq(src_addr + (length << shift)),
                cur_left.eq(rest),
            ]
            m.d.comb += rq.r_en.eq(~cur_valid)
        return m


class WritePath(wiring.Component):
    """Core write beats go into a FIFO drained to AXI; consecutive addresses become bursts.

    Bursts are formed where the beats enter (so they depend only on the core's deterministic
    timing, never on AXI): a beat extends the open burst when it continues its addresses, the
    burst is shorter than MAX_BURST and no 4 KB boundary is crossed; an open burst is closed when
    LINGER cycles pass without a beat, or at once when a read waits for it (``drain``). The
    last beat is held one cycle so its WLAST is known.
    ``busy`` covers every accepted write until its B response; ``lo``/``hi`` bound their
    addresses. ``wr`` is refused only when a FIFO is full (``stall``).
    """

    def __init__(self, write_shape, beat_bytes: int):
        self._wr_shape = write_shape
        self._B = beat_bytes
        super().__init__({
            "wr": In(stream.Signature(write_shape)),
            "aw": Out(stream.Signature(AddrBurst)),
            "w": Out(stream.Signature(data.StructLayout({"data": unsigned(8 * beat_bytes),
                                                         "last": unsigned(1)}))),
            "b": In(stream.Signature(data.StructLayout({"resp": unsigned(2)}))),
            "busy": Out(1),
            "lo": Out(32),
            "hi": Out(32),
            "stall": Out(1),
            "resp_error": Out(1),
            "drain": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        B = self._B
        beat = 8 * B
        m.submodules.data = wq = fifo.SyncFIFOBuffered(width=beat + 1, depth=WRITE_DATA_DEPTH)
        m.submodules.bursts = aq = fifo.SyncFIFOBuffered(width=AddrBurst.size, depth=AW_DEPTH)

        held_valid = Signal()
        held_addr = Signal(32)
        held_data = Signal(beat)
        start = Signal(32)
        count = Signal(range(_max_burst(B) + 1))
        idle = Signal(range(LINGER))
        room = wq.w_rdy & aq.w_rdy
        wr = self.wr
        take = wr.valid & room
        cont = (held_valid & (wr.p.addr == held_addr + B) & (count != _max_burst(B))
                & (wr.p.addr[:12] != 0))
        flush = held_valid & ~take & ((idle == LINGER - 1) | self.drain) & room
        push_aw = (take & held_valid & ~cont) | flush
        m.d.comb += [
            wr.ready.eq(room),
            self.stall.eq(wr.valid & ~room),
            wq.w_en.eq((take & held_valid) | flush),
            wq.w_data.eq(Cat(held_data, Mux(take, ~cont, 1))),
            aq.w_en.eq(push_aw),
            aq.w_data.eq(Cat(start, (count - 1)[:8])),
        ]
        with m.If(take):
            m.d.sync += [held_valid.eq(1), held_addr.eq(wr.p.addr), held_data.eq(wr.p.data),
                         idle.eq(0)]
            with m.If(cont):
                m.d.sync += count.eq(count + 1)
            with m.Else():
                m.d.sync += [start.eq(wr.p.addr), count.eq(1)]
        with m.Elif(flush):
            m.d.sync += held_valid.eq(0)
        with m.Elif(held_valid & (idle != LINGER - 1)):
            m.d.sync += idle.eq(idle + 1)

        # -- drain to AXI: AW and W independently, every B accepted --------------------------
        m.d.comb += [
            self.aw.valid.eq(aq.r_rdy), self.aw.payload.eq(aq.r_data), aq.r_en.eq(self.aw.ready),
            self.w.valid.eq(wq.r_rdy), self.w.payload.eq(wq.r_data), wq.r_en.eq(self.w.ready),
            self.b.ready.eq(1),
            self.resp_error.eq(self.b.valid & (self.b.p.resp != 0)),
        ]
        outstanding = Signal(16)      # bursts formed and not yet answered on B
        m.d.sync += outstanding.eq(outstanding + push_aw - self.b.valid)
        m.d.comb += self.busy.eq(held_valid | (outstanding != 0))

        # -- address range of the writes in flight -----------------------------------------
        end = wr.p.addr + B
        with m.If(take):
            with m.If(~self.busy):
                m.d.sync += [self.lo.eq(wr.p.addr), self.hi.eq(end)]
            with m.Else():
                m.d.sync += [self.lo.eq(_min(self.lo, wr.p.addr)),
                             self.hi.eq(Mux(end > self.hi, end, self.hi))]
        return m


def _axi_master_members(beat_bytes: int) -> list[tuple[str, int, bool]]:
    """(name, width, is_output) of the m_axi_* ports: AXI4 with 1-bit IDs, no QoS/region/user."""
    beat = 8 * beat_bytes
    ports = []
    for ch in ("aw", "ar"):
        ports += [(f"{ch}id", 1, True), (f"{ch}addr", 32, True), (f"{ch}len", 8, True),
                  (f"{ch}size", 3, True), (f"{ch}burst", 2, True), (f"{ch}cache", 4, True),
                  (f"{ch}prot", 3, True), (f"{ch}valid", 1, True), (f"{ch}ready", 1, False)]
    ports += [("wdata", beat, True), ("wstrb", beat_bytes, True), ("wlast", 1, True),
              ("wvalid", 1, True), ("wready", 1, False),
              ("bid", 1, False), ("bresp", 2, False), ("bvalid", 1, False), ("bready", 1, True),
              ("rid", 1, False), ("rdata", beat, False), ("rresp", 2, False),
              ("rlast", 1, False), ("rvalid", 1, False), ("rready", 1, True)]
    return ports


_AXIL_SLAVE = [("awaddr", ADDR_BITS, False), ("awprot", 3, False), ("awvalid", 1, False),
               ("awready", 1, True), ("wdata", 32, False), ("wstrb", 4, False),
               ("wvalid", 1, False), ("wready", 1, True), ("bresp", 2, True), ("bvalid", 1, True),
               ("bready", 1, False), ("araddr", ADDR_BITS, False), ("arprot", 3, False),
               ("arvalid", 1, False), ("arready", 1, True), ("rdata", 32, True),
               ("rresp", 2, True), ("rvalid", 1, True), ("rready", 1, False)]

#: Vivado interface attributes: clock with its buses and reset, active-low reset, level interrupt.
_PORT_ATTRS = {
    "aclk": {"X_INTERFACE_INFO": "xilinx.com:signal:clock:1.0 aclk CLK",
             "X_INTERFACE_PARAMETER": "ASSOCIATED_BUSIF s_axi:m_axi, ASSOCIATED_RESET aresetn"},
    "aresetn": {"X_INTERFACE_INFO": "xilinx.com:signal:reset:1.0 aresetn RST",
                "X_INTERFACE_PARAMETER": "POLARITY ACTIVE_LOW"},
    "interrupt": {"X_INTERFACE_INFO": "xilinx.com:signal:interrupt:1.0 interrupt INTERRUPT",
                  "X_INTERFACE_PARAMETER": "SENSITIVITY LEVEL_HIGH"},
}


class AxiTop(wiring.Component):
    """The accelerator that ``cfg`` describes behind AXI4-Lite registers and an AXI4 master.

    Generic over cores: anything ``core_for(cfg)`` returns with start/base/busy/done/error/
    cycles/config_id and the rd_req/rd_data/wr DRAM port.
    """

    def __init__(self, cfg: ArchConfig):
        self._cfg = cfg
        self._core, self._core_name = core_for(cfg)
        self._lmax = latency_max(cfg)
        members = {"aclk": In(1), "aresetn": In(1), "interrupt": Out(1)}
        for name, width, out in _AXIL_SLAVE:
            members[f"s_axi_{name}"] = (Out if out else In)(width)
        for name, width, out in _axi_master_members(cfg.dram_width):
            members[f"m_axi_{name}"] = (Out if out else In)(width)
        super().__init__(members)
        for name, attrs in _PORT_ATTRS.items():
            getattr(self, name).attrs.update(attrs)

    @property
    def config(self) -> ArchConfig:
        return self._cfg

    @property
    def latency_max(self) -> int:
        return self._lmax

    def elaborate(self, platform):
        m = Module()
        cfg, B = self._cfg, self._cfg.dram_width
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]

        m.submodules.core = core = self._core
        members = core.signature.members
        m.submodules.reads = rp = ReadPath(members["rd_req"].signature.members["payload"].shape,
                                           B, self._lmax)
        m.submodules.writes = wp = WritePath(members["wr"].signature.members["payload"].shape, B)
        wiring.connect(m, core.rd_req, rp.req)
        wiring.connect(m, rp.data, core.rd_data)
        wiring.connect(m, core.wr, wp.wr)
        m.d.comb += [rp.wr_busy.eq(wp.busy), rp.wr_lo.eq(wp.lo), rp.wr_hi.eq(wp.hi),
                     wp.drain.eq(rp.wr_wait)]
        self._axi_master(m, rp, wp)

        # -- registers --------------------------------------------------------------------------
        irq_enable = Signal()
        base = Signal(32)
        latency = Signal(range(self._lmax + 1), init=cfg.dram_latency)
        running, done, irq, axi_error = Signal(), Signal(), Signal(), Signal()
        counters = {name: Signal(32, name=name.lower())
                    for name in ("VIOLATIONS", "READ_LATE", "REQ_STALL", "WRITE_STALL")}
        m.d.comb += rp.latency.eq(latency)

        # AXI4-Lite write: take AW and W together, answer OKAY.
        s = self
        take_w = s.s_axi_awvalid & s.s_axi_wvalid & ~s.s_axi_bvalid
        m.d.comb += [s.s_axi_awready.eq(take_w), s.s_axi_wready.eq(take_w),
                     s.s_axi_bresp.eq(0)]
        with m.If(take_w):
            m.d.sync += s.s_axi_bvalid.eq(1)
        with m.Elif(s.s_axi_bready):
            m.d.sync += s.s_axi_bvalid.eq(0)

        def written(reg: Register):
            return take_w & (s.s_axi_awaddr[2:] == reg.offset >> 2)

        def merged(old):
            return Cat(*(Mux(s.s_axi_wstrb[i], s.s_axi_wdata.word_select(i, 8),
                             old.word_select(i, 8)) for i in range(4)))

        control = REG["CONTROL"]
        start = Signal()
        m.d.comb += start.eq(written(control) & s.s_axi_wstrb[0] & ~running
                             & s.s_axi_wdata[control.field("START").bit])
        with m.If(written(control) & s.s_axi_wstrb[0]):
            m.d.sync += irq_enable.eq(s.s_axi_wdata[control.field("IRQ_ENABLE").bit])
        with m.If(written(REG["BASE"])):
            m.d.sync += base.eq(merged(base))
        new_latency = merged(Cat(latency, Const(0, 32 - len(latency))))
        with m.If(written(REG["LATENCY"]) & ~running & (new_latency >= 1)
                  & (new_latency <= self._lmax)):
            m.d.sync += latency.eq(new_latency)
        with m.If(written(REG["IRQ"]) & s.s_axi_wstrb[0]
                  & s.s_axi_wdata[REG["IRQ"].field("DONE").bit]):
            m.d.sync += irq.eq(0)

        # Runs: START clears the status; done = core done and every write answered.
        m.d.comb += [core.start.eq(start), core.base.eq(base)]
        finish = running & core.done & ~wp.busy
        events = {"READ_LATE": rp.late, "REQ_STALL": rp.req_stall, "WRITE_STALL": wp.stall}
        with m.If(start):
            m.d.sync += [running.eq(1), done.eq(0), irq.eq(0), axi_error.eq(0),
                         *(c.eq(0) for c in counters.values())]
        with m.Else():
            with m.If(finish):
                m.d.sync += [running.eq(0), done.eq(1), irq.eq(1)]
            with m.If(rp.resp_error | wp.resp_error):
                m.d.sync += axi_error.eq(1)
            with m.If(running):
                for name, event in events.items():
                    m.d.sync += counters[name].eq(counters[name] + event)
                m.d.sync += counters["VIOLATIONS"].eq(
                    counters["VIOLATIONS"] + (rp.late | rp.req_stall | wp.stall))
        m.d.comb += self.interrupt.eq(irq & irq_enable)

        # AXI4-Lite read: one register per request, unmapped offsets read 0.
        values = {
            "CONTROL": _pack(control, START=0, IRQ_ENABLE=irq_enable),
            "STATUS": _pack(REG["STATUS"], BUSY=running, DONE=done, ERROR=core.error,
                            AXI_ERROR=axi_error),
            "IRQ": _pack(REG["IRQ"], DONE=irq),
            "BASE": base,
            "CYCLES": core.cycles,
            "CONFIG_ID": core.config_id,
            "LATENCY": latency,
            "LATENCY_MAX": self._lmax,
            "VERSION": version_word(),
            **counters,
        }
        assert set(values) == set(REG), "every register needs a value"
        m.d.comb += [s.s_axi_arready.eq(~s.s_axi_rvalid), s.s_axi_rresp.eq(0)]
        with m.If(s.s_axi_arvalid & s.s_axi_arready):
            m.d.sync += s.s_axi_rvalid.eq(1)
            with m.Switch(s.s_axi_araddr[2:]):
                for name, value in values.items():
                    with m.Case(REG[name].offset >> 2):
                        m.d.sync += s.s_axi_rdata.eq(value)
                with m.Default():
                    m.d.sync += s.s_axi_rdata.eq(0)
        with m.Elif(s.s_axi_rready):
            m.d.sync += s.s_axi_rvalid.eq(0)
        return m

    def _axi_master(self, m, rp: ReadPath, wp: WritePath) -> None:
        """Map the read and write paths' channels onto the flat m_axi_* ports."""
        B = self._cfg.dram_width
        s = self
        for ch, burst in (("ar", rp.ar), ("aw", wp.aw)):
            m.d.comb += [
                getattr(s, f"m_axi_{ch}id").eq(0),
                getattr(s, f"m_axi_{ch}addr").eq(burst.p.addr),
                getattr(s, f"m_axi_{ch}len").eq(burst.p.len),
                getattr(s, f"m_axi_{ch}size").eq(exact_log2(B)),
                getattr(s, f"m_axi_{ch}burst").eq(0b01),        # INCR
                getattr(s, f"m_axi_{ch}cache").eq(0b0011),      # normal, non-cacheable, bufferable
                getattr(s, f"m_axi_{ch}prot").eq(0),
                getattr(s, f"m_axi_{ch}valid").eq(burst.valid),
                burst.ready.eq(getattr(s, f"m_axi_{ch}ready")),
            ]
        m.d.comb += [
            s.m_axi_wdata.eq(wp.w.p.data), s.m_axi_wstrb.eq((1 << B) - 1),
            s.m_axi_wlast.eq(wp.w.p.last), s.m_axi_wvalid.eq(wp.w.valid),
            wp.w.ready.eq(s.m_axi_wready),
            wp.b.p.resp.eq(s.m_axi_bresp), wp.b.valid.eq(s.m_axi_bvalid),
            s.m_axi_bready.eq(wp.b.ready),
            rp.r.p.data.eq(s.m_axi_rdata), rp.r.p.resp.eq(s.m_axi_rresp),
            rp.r.valid.eq(s.m_axi_rvalid), s.m_axi_rready.eq(rp.r.ready),
        ]


def _pack(reg: Register, **values):
    """A register's 32-bit value from its fields (every field must be given)."""
    assert set(values) == {f.name for f in reg.fields}, reg.name
    bits = [Const(0, 1)] * 32
    for f in reg.fields:
        value = values[f.name]
        value = Const(value, f.width) if isinstance(value, int) else value
        for i in range(f.width):
            bits[f.bit + i] = value[i]
    return Cat(*bits)
