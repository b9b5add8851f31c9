"""Simulation results: per-layer and total cycles, phases, events and energy, as a table or JSON.

Every simulator (LCP, SmartDeal, systolic, the baselines) returns a ``SimReport`` so that the CLI,
the benchmarks and the reproduction scripts print and compare them the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from .energy import CATEGORIES, EnergyTable


@dataclass
class LayerReport:
    """One layer. ``phases`` attribute every cycle to one phase, so they sum to ``cycles``."""
    name: str
    cycles: int
    macs: int
    phases: dict[str, int] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)
    energy_pj: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimReport:
    arch: str
    config: dict[str, Any]
    config_hash: str
    clock_mhz: float
    peak_macs_per_cycle: int
    energy_table: str
    layers: list[LayerReport]
    banks: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, cfg, layers: list[LayerReport], banks: dict[str, int],
              peak_macs_per_cycle: int, table: EnergyTable | None = None) -> "SimReport":
        """Price every layer's events with the configuration's energy table."""
        table = table or EnergyTable.load(cfg.energy_table)
        for layer in layers:
            layer.energy_pj = table.price(layer.events, banks)
        return cls(arch=cfg.arch, config=cfg.to_dict(), config_hash=cfg.config_hash,
                   clock_mhz=cfg.clock_mhz, peak_macs_per_cycle=peak_macs_per_cycle,
                   energy_table=table.name, layers=layers, banks=dict(banks))

    @property
    def total(self) -> LayerReport:
        phases, events, energy = Counter(), Counter(), Counter()
        for layer in self.layers:
            phases.update(layer.phases)
            events.update(layer.events)
            energy.update(layer.energy_pj)
        return LayerReport("total", sum(l.cycles for l in self.layers),
                           sum(l.macs for l in self.layers), dict(phases), dict(events),
                           {k: float(energy.get(k, 0.0)) for k in (*CATEGORIES, "total")})

    def latency_us(self, cycles: int) -> float:
        return cycles / self.clock_mhz

    def utilization(self, layer: LayerReport) -> float:
        return layer.macs / (layer.cycles * self.peak_macs_per_cycle) if layer.cycles else 0.0

    def _row(self, layer: LayerReport) -> dict[str, Any]:
        return {
            "name": layer.name,
            "cycles": int(layer.cycles),
            "latency_us": self.latency_us(layer.cycles),
            "macs": int(layer.macs),
            "utilization": self.utilization(layer),
            "energy_pj": float(layer.energy_pj.get("total", 0.0)),
            "energy_breakdown_pj": {k: float(layer.energy_pj.get(k, 0.0)) for k in CATEGORIES},
            "phases": {k: int(v) for k, v in layer.phases.items()},
            "events": {k: float(v) for k, v in sorted(layer.events.items())},
            **({"info": layer.info} if layer.info else {}),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.arch, "config": self.config, "config_hash": self.config_hash,
            "clock_mhz": self.clock_mhz, "energy_table": self.energy_table,
            "peak_macs_per_cycle": self.peak_macs_per_cycle,
            "layers": [self._row(l) for l in self.layers],
            "total": self._row(self.total),
        }

    def table(self, title: str | None = None) -> Table:
        t = Table(title=title or f"{self.arch} {self.config_hash} @ {self.clock_mhz:g} MHz "
                                 f"(energy: {self.energy_table})")
        for col, just in [("layer", "left"), ("cycles", "right"), ("latency us", "right"),
                          ("MACs", "right"), ("util", "right"), ("energy nJ", "right"),
                          ("DRAM", "right"), ("SRAM", "right"), ("RF", "right"),
                          ("compute", "right")]:
            t.add_column(col, justify=just)
        rows = [*self.layers, self.total]
        for i, layer in enumerate(rows):
            e = layer.energy_pj
            tot = e.get("total", 0.0) or 1.0
            t.add_row(layer.name, f"{layer.cycles:,}", f"{self.latency_us(layer.cycles):,.2f}",
                      f"{layer.macs:,}", f"{self.utilization(layer):.1%}",
                      f"{e.get('total', 0.0) / 1e3:,.2f}",
                      *(f"{e.get(c, 0.0) / tot:.0%}" for c in CATEGORIES),
                      end_section=(i == len(rows) - 2))
        return t
