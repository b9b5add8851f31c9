"""Behavioural Verilog models of the FakeRAM macros, so an ASIC-mode core can be simulated.

A model behaves like ORFS's ``platforms/asap7/verilog/fakeram7_*.v``: one port, the word at
``addr_in`` appears on ``rd_out`` one cycle after a cycle with ``ce_in`` high (the old word when
that cycle wrote), and ``rd_out`` turns X after a cycle without ``ce_in``. So a simulation fails
loudly if the buffer wrapper ever uses data it did not read.
"""

from __future__ import annotations

import re

from tessera.hdl.memories import FAKERAM7, FakeRam

__all__ = ["macros_in", "behavioural_models"]

_INSTANCE = re.compile(r"^\s*(fakeram7_\d+x\d+)\s+\\?[\w$.]+\s*\(", re.M)


def macros_in(verilog: str) -> dict[str, int]:
    """Macro name -> number of instances in a generated netlist, sorted by name."""
    counts: dict[str, int] = {}
    for name in _INSTANCE.findall(verilog):
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _model(ram: FakeRam) -> str:
    a, w = ram.abits, ram.width
    return f"""module {ram.name}(clk, ce_in, we_in, addr_in, wd_in, rd_out);
  input clk;
  input ce_in;
  input we_in;
  input [{a - 1}:0] addr_in;
  input [{w - 1}:0] wd_in;
  output reg [{w - 1}:0] rd_out;
  reg [{w - 1}:0] mem [0:{ram.depth - 1}];
  always @(posedge clk) begin
    if (ce_in) begin
      if (we_in) mem[addr_in] <= wd_in;
      rd_out <= mem[addr_in];
    end else begin
      rd_out <= {{{w}{{1'bx}}}};
    end
  end
endmodule
"""


def behavioural_models(names) -> str:
    """Verilog models of the named macros (every FakeRAM macro name Tessera knows)."""
    known = {ram.name: ram for ram in FAKERAM7}
    unknown = sorted(set(names) - set(known))
    assert not unknown, f"no model for {unknown}"
    header = "// Behavioural FakeRAM models for simulation (tessera.asic_flow.fakeram)\n"
    return header + "\n".join(_model(known[n]) for n in sorted(set(names)))
