"""Energy = sum over event counts x unit energies, from a per-technology TOML table.

Event names (docs/energy.md):

- ``dram.read_bytes``, ``dram.write_bytes``: bytes moved over the DRAM port.
- ``sram.<buffer>.read_bytes`` / ``.write_bytes``: bytes read or written in an on-chip buffer; the
  price per byte depends on the capacity of one bank of that buffer (``banks`` maps buffer names
  to bank bytes).
- ``rf.<name>.read_bytes`` / ``.write_bytes``: register-file traffic.
- ``op.<name>``: operations: ``mac8`` (8x8 multiply-accumulate), ``mul8``, ``add<bits>`` (an adder of
  that width, priced as bits/8 8-bit adds), ``mul<a>x<b>`` (priced as a*b/64 8x8 multiplies) and
  any op the table's [compute] section names.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tessera.errors import ConfigError

CATEGORIES = ("dram", "sram", "rf", "compute")

_ADD = re.compile(r"add(\d+)$")
_MUL = re.compile(r"mul(\d+)x(\d+)$")


@dataclass(frozen=True)
class EnergyTable:
    name: str
    description: str
    dram_read_byte: float
    dram_write_byte: float
    sram_points: tuple[tuple[float, float], ...]
    rf_byte: float
    compute: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, name_or_path: str) -> "EnergyTable":
        """A built-in table by name (e.g. ``smartdeal-28nm``) or a TOML file path."""
        path = Path(name_or_path)
        if path.suffix == ".toml" or path.exists():
            try:
                text = path.read_text()
            except OSError as exc:
                raise ConfigError(f"energy table file '{path}' cannot be read: {exc.strerror}") \
                    from None
        else:
            res = resources.files("tessera") / "data" / f"{name_or_path}.toml"
            if not res.is_file():
                known = sorted(p.name[:-5] for p in (resources.files("tessera") / "data").iterdir()
                               if p.name.endswith(".toml"))
                raise ConfigError(f"config field 'energy_table' = {name_or_path!r} is unknown: "
                                  f"allowed is a TOML file path or one of {', '.join(known)}")
            text = res.read_text()
        return cls.from_toml(text, str(name_or_path))

    @classmethod
    def from_toml(cls, text: str, source: str) -> "EnergyTable":
        try:
            d = tomllib.loads(text)
            points = tuple(sorted((float(c), float(e)) for c, e in d["sram"]["points"]))
            table = cls(name=d.get("name", source), description=d.get("description", ""),
                        dram_read_byte=float(d["dram"]["read_byte"]),
                        dram_write_byte=float(d["dram"]["write_byte"]),
                        sram_points=points, rf_byte=float(d["rf"]["byte"]),
                        compute={k: float(v) for k, v in d["compute"].items()})
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"energy table '{source}' is malformed ({type(exc).__name__}: {exc}); "
                              "it needs [dram] read_byte/write_byte, [sram] points, [rf] byte and "
                              "[compute] mac8/mul8/add8") from None
        for op in ("mac8", "mul8", "add8"):
            if op not in table.compute:
                raise ConfigError(f"energy table '{source}' has no [compute] {op}")
        if not points:
            raise ConfigError(f"energy table '{source}' has an empty [sram] points list")
        return table

    def sram_byte(self, bank_bytes: float) -> float:
        """pJ per byte for a bank of this capacity (log-linear between the table's points)."""
        pts = self.sram_points
        if bank_bytes <= pts[0][0]:
            return pts[0][1]
        for (c0, e0), (c1, e1) in zip(pts, pts[1:]):
            if bank_bytes <= c1:
                t = math.log(bank_bytes / c0) / math.log(c1 / c0)
                return e0 + t * (e1 - e0)
        return pts[-1][1]

    def op_energy(self, op: str) -> float:
        if op in self.compute:
            return self.compute[op]
        m = _ADD.match(op)
        if m:
            return self.compute["add8"] * int(m.group(1)) / 8
        m = _MUL.match(op)
        if m:  # an array multiplier's energy grows with the product of its widths
            return self.compute["mul8"] * int(m.group(1)) * int(m.group(2)) / 64
        raise ConfigError(f"energy table '{self.name}' has no price for operation '{op}': "
                          f"allowed are add<bits>, mul<a>x<b> and "
                          f"{', '.join(sorted(self.compute))}")

    def price(self, events: dict[str, float], banks: dict[str, int]) -> dict[str, float]:
        """Energy in pJ per category (dram, sram, rf, compute) and ``total``."""
        out = dict.fromkeys(CATEGORIES, 0.0)
        for key, count in events.items():
            if not count:
                continue
            kind, _, rest = key.partition(".")
            if kind == "dram":
                unit = self.dram_read_byte if rest == "read_bytes" else self.dram_write_byte
            elif kind == "sram":
                buf = rest.rsplit(".", 1)[0]
                if buf not in banks:
                    raise KeyError(f"event {key} names buffer {buf!r} with no bank size")
                unit = self.sram_byte(banks[buf])
            elif kind == "rf":
                unit = self.rf_byte
            elif kind == "op":
                kind, unit = "compute", self.op_energy(rest)
            else:
                raise KeyError(f"event {key!r} has no energy category")
            out[kind] += count * unit
        out["total"] = sum(out[c] for c in CATEGORIES)
        return out
