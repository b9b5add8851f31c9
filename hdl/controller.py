"""The step machine every accelerator core runs its command stream with.

``start`` (with the program's DRAM ``base``) makes the core fetch the first step, check that it is
a HEADER naming this configuration (else stop with ``error``), then run steps: in a step's
LAUNCH cycle its loads (and the fetch of the next step) and its execution start; the step ends in
the first cycle in which the load unit and the execution units are all idle. Every step thus
costs 2 + max(load, exec) cycles, the figure the simulators add up. ``cycles`` counts the cycles
from start to done.
"""

from amaranth import Signal

from .dma import ADDR_BITS

__all__ = ["run_steps"]


def run_steps(m, core, *, layout, step_bytes: int, config_id: int, header_op: int,
              last_flag: int, next_step, load_busy, exec_busy, start_loads, launch):
    """Add the controller to ``m`` for ``core`` (a component with start, base, busy, done,
    error and cycles ports). ``next_step`` is the register the load unit fetches steps into;
    ``start_loads(step, fetch, pc)`` programs the load unit for a step (and, if ``fetch``, the
    step at ``pc``); ``launch(step)`` starts its execution. Returns (current step, base)."""
    cur = Signal(layout)
    base = Signal(ADDR_BITS)
    pc = Signal(32)
    cycles = Signal(32)
    error = Signal()
    last = cur.flags & last_flag != 0
    m.d.comb += [core.cycles.eq(cycles), core.error.eq(error)]

    def restart():
        m.d.sync += [base.eq(core.base), pc.eq(0), cycles.eq(0), error.eq(0)]
        m.next = "FETCH"

    with m.FSM():
        with m.State("IDLE"):
            with m.If(core.start):
                restart()
        with m.State("FETCH"):
            start_loads(layout.const({}), 1, pc)
            m.d.comb += core.busy.eq(1)
            m.d.sync += [pc.eq(pc + step_bytes), cycles.eq(cycles + 1)]
            m.next = "WAIT_FETCH"
        with m.State("WAIT_FETCH"):
            m.d.comb += core.busy.eq(1)
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(~load_busy):
                with m.If((next_step.op == header_op) & (next_step.config_id == config_id)):
                    m.d.sync += cur.eq(next_step)
                    m.next = "LAUNCH"
                with m.Else():
                    m.d.sync += error.eq(1)
                    m.next = "DONE"
        with m.State("LAUNCH"):
            start_loads(cur, ~last, pc)
            launch(cur)
            m.d.comb += core.busy.eq(1)
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(~last):
                m.d.sync += pc.eq(pc + step_bytes)
            m.next = "WAIT"
        with m.State("WAIT"):
            m.d.comb += core.busy.eq(1)
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(~load_busy & ~exec_busy):
                with m.If(last):
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += cur.eq(next_step)
                    m.next = "LAUNCH"
        with m.State("DONE"):
            m.d.comb += core.done.eq(1)
            with m.If(core.start):
                restart()
    return cur, base
