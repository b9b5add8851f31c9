"""A read DMA for the DRAM port: per-destination 2-D transfers, issued and delivered in order.

Each destination (channel) gets ``rows`` read requests of ``row_beats`` beats, ``stride`` bytes
apart. Requests go out one per cycle, channels in order; the returning beats arrive in the same
order, so they are routed by counting them (no tags), and assembled into the channel's words.
Every destination takes a beat per cycle, so the read data stream is always ready: that is what
makes a transfer cost exactly ``latency + beats`` cycles under the DRAM contract.
"""

from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ReadRequest", "ReadDma", "dram_signature"]

ADDR_BITS = 32
BEAT_COUNT_BITS = 24

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


class ReadDma(wiring.Component):
    """``channels`` is a list of (name, word_bytes); a channel's transfer must be whole words.

    Per channel ``c``: inputs ``c_en``, ``c_addr``, ``c_rows``, ``c_row_beats``, ``c_stride``
    (sampled on ``start``); outputs ``c_word`` with ``c_word_valid`` (one cycle per completed
    word) and ``c_word_index`` (words completed before this one in the transfer).
    """

    def __init__(self, beat_bytes: int, channels: list[tuple[str, int]]):
        if not channels or any(w % beat_bytes for _, w in channels):
            raise TypeError(f"every channel's word must be a whole number of {beat_bytes}-byte "
                            f"beats, got {channels!r}")
        self._beat = beat_bytes
        self._channels = list(channels)
        members = {
            "start": In(1),
            "base": In(ADDR_BITS),
            "busy": Out(1),
            "rd_req": Out(stream.Signature(ReadRequest)),
            "rd_data": In(stream.Signature(unsigned(8 * beat_bytes))),
        }
        for name, word in channels:
            members.update({
                f"{name}_en": In(1), f"{name}_addr": In(ADDR_BITS), f"{name}_rows": In(16),
                f"{name}_row_beats": In(BEAT_COUNT_BITS), f"{name}_stride": In(ADDR_BITS),
                f"{name}_word": Out(8 * word), f"{name}_word_valid": Out(1),
                f"{name}_word_index": Out(24),
            })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        B, n = self._beat, len(self._channels)
        port = lambda name, field: getattr(self, f"{name}_{field}")

        # -- requests ------------------------------------------------------------------------
        pending = Signal(n)
        base = Signal(ADDR_BITS)
        addr = [Signal(ADDR_BITS, name=f"addr{i}") for i in range(n)]
        rows_left = [Signal(16, name=f"rows_left{i}") for i in range(n)]
        beats = [Signal(BEAT_COUNT_BITS, name=f"beats{i}") for i in range(n)]
        stride = [Signal(ADDR_BITS, name=f"stride{i}") for i in range(n)]
        rows = [Signal(16, name=f"rows{i}") for i in range(n)]
        enabled = Cat(*(port(name, "en") & (port(name, "rows") != 0)
                        for name, _ in self._channels))
        with m.If(self.start):
            m.d.sync += [pending.eq(enabled), base.eq(self.base)]
            for i, (name, _) in enumerate(self._channels):
                m.d.sync += [addr[i].eq(port(name, "addr")), rows_left[i].eq(port(name, "rows")),
                             rows[i].eq(port(name, "rows")), beats[i].eq(port(name, "row_beats")),
                             stride[i].eq(port(name, "stride"))]
        req = self.rd_req
        m.d.comb += req.valid.eq(pending != 0)
        with m.Switch(pending):
            for i in range(n):  # the lowest pending channel issues
                with m.Case("-" * (n - 1 - i) + "1" + "0" * i):
                    m.d.comb += [req.p.addr.eq(base + addr[i]), req.p.beats.eq(beats[i])]
                    with m.If(req.ready):
                        m.d.sync += [rows_left[i].eq(rows_left[i] - 1),
                                     addr[i].eq(addr[i] + stride[i])]
                        with m.If(rows_left[i] == 1):
                            m.d.sync += pending[i].eq(0)

        # -- data: count beats per channel, assemble words --------------------------------------
        waiting = Signal(n)
        count = Signal(BEAT_COUNT_BITS)       # beats of the current row
        rows_done = Signal(16)
        with m.If(self.start):
            m.d.sync += [waiting.eq(enabled), count.eq(0), rows_done.eq(0)]
        m.d.comb += [self.busy.eq(waiting != 0), self.rd_data.ready.eq(1)]
        beat = self.rd_data.payload
        assembling = []
        for name, word in self._channels:
            acc = Signal(8 * word, name=f"{name}_acc")
            part = Signal(range(max(2, word // B)), name=f"{name}_part")
            index = Signal(24, name=f"{name}_index")
            full = Cat(acc[8 * B:], beat)
            m.d.comb += [port(name, "word").eq(full), port(name, "word_index").eq(index)]
            with m.If(self.start):
                m.d.sync += [part.eq(0), index.eq(0)]
            assembling.append((acc, part, index, full, word // B))
        with m.Switch(waiting):
            for i, (name, _) in enumerate(self._channels):
                acc, part, index, full, per_word = assembling[i]
                with m.Case("-" * (n - 1 - i) + "1" + "0" * i):
                    with m.If(self.rd_data.valid):
                        m.d.sync += [acc.eq(full), count.eq(count + 1)]
                        if per_word > 1:
                            m.d.sync += part.eq(part + 1)
                        with m.If(part == per_word - 1):
                            m.d.comb += port(name, "word_valid").eq(1)
                            m.d.sync += [part.eq(0), index.eq(index + 1)]
                        with m.If(count == beats[i] - 1):
                            m.d.sync += [count.eq(0), rows_done.eq(rows_done + 1)]
                            with m.If(rows_done == rows[i] - 1):
                                m.d.sync += [waiting[i].eq(0), rows_done.eq(0)]
        return m
