"""The ASAP7 platform folder: find its files, or say in one line what is missing.

The folder is ORFS's ``flow/platforms/asap7`` (or anything laid out like it): standard-cell
libraries in ``lib/NLDM`` (RVT, TT corner; ``.lib`` or ``.lib.gz``), LEFs in ``lef``, and the
FakeRAM macros as ``lef/fakeram7_*.lef`` and ``lib/NLDM/fakeram7_*.lib``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tessera.errors import TesseraError

__all__ = ["PlatformError", "Asap7Platform", "find_platform", "STD_LIBS", "DONT_USE_CELLS",
           "MacroData", "PLATFORM_ENV"]

#: Environment variable naming a default platform folder (used by the tests).
PLATFORM_ENV = "TESSERA_ASAP7_DIR"

#: The five RVT TT libraries ORFS's TC corner uses, by the file-name prefix.
STD_LIBS = ("AO", "INVBUF", "OA", "SEQ", "SIMPLE")

#: ORFS's asap7 DONT_USE_CELLS: cells synthesis must not pick.
DONT_USE_CELLS = ("*x1p*_ASAP7*", "*xp*_ASAP7*", "SDF*", "ICG*")


class PlatformError(TesseraError):
    """A missing or unusable ASAP7 platform folder or file."""


@dataclass(frozen=True)
class MacroData:
    """A FakeRAM macro as its liberty states it, in um^2, pW, fJ and ps."""
    name: str
    area_um2: float
    leakage_pw: float
    access_fj: float         # clock-pin energy of one accessed cycle (rise + fall)
    clk_to_q_ps: float


@dataclass(frozen=True)
class Asap7Platform:
    root: Path

    @property
    def lib_dir(self) -> Path:
        return self.root / "lib" / "NLDM"

    @property
    def lef_dir(self) -> Path:
        return self.root / "lef"

    def std_libs(self) -> list[Path]:
        """The RVT TT libraries, one per family, in a fixed order."""
        found = []
        for family in STD_LIBS:
            hits = sorted(p for p in self.lib_dir.glob(f"asap7sc7p5t_{family}_RVT_TT_nldm_*.lib*")
                          if p.name.endswith((".lib", ".lib.gz")))
            if not hits:
                raise PlatformError(
                    f"ASAP7 platform '{self.root}': no {family} RVT TT library "
                    f"(lib/NLDM/asap7sc7p5t_{family}_RVT_TT_nldm_*.lib[.gz]); --platform-dir must "
                    f"be ORFS's flow/platforms/asap7")
            found.append(hits[-1])
        return found

    def macro_files(self, name: str) -> tuple[Path, Path]:
        """(LEF, LIB) of a FakeRAM macro."""
        lef, lib = self.lef_dir / f"{name}.lef", self.lib_dir / f"{name}.lib"
        for path in (lef, lib):
            if not path.is_file():
                raise PlatformError(f"ASAP7 platform '{self.root}': macro file "
                                    f"{path.relative_to(self.root)} is missing")
        return lef, lib

    def macro_data(self, name: str) -> MacroData:
        _, lib = self.macro_files(name)
        text = lib.read_text(errors="replace")
        try:
            return _macro_data(name, text)
        except (ValueError, AttributeError, IndexError):
            raise PlatformError(f"ASAP7 platform '{self.root}': {lib.name} is not a FakeRAM "
                                f"liberty file (no area, clock power or read timing)") from None


def _macro_data(name: str, text: str) -> MacroData:
    from .liberty import library_units, parse_group

    start = re.search(r"\bcell\s*\(", text).start()
    time_ps, _, energy_fj, leak_pw, _ = library_units(text[:start])
    cell = parse_group(text[start:text.rindex("}")])
    clk = next(p for p in cell.find("pin") if p.name == "clk")
    power = clk.find("internal_power")[0]
    rise = max(float(v) for v in power.find("rise_power")[0].complex["values"][0].split(","))
    fall = max(float(v) for v in power.find("fall_power")[0].complex["values"][0].split(","))
    rd = next(b for b in cell.find("bus") if b.name == "rd_out")
    delay = max(float(v) for g in rd.find("timing")[0].groups if g.kind == "cell_rise"
                for row in g.complex["values"] for v in row.split(","))
    return MacroData(name, float(cell.attrs["area"]),
                     float(cell.attrs["cell_leakage_power"]) * leak_pw,
                     (rise + fall) * energy_fj, delay * time_ps)


def find_platform(directory: str | os.PathLike | None) -> Asap7Platform | None:
    """The platform at ``directory`` (or $TESSERA_ASAP7_DIR), checked; None if neither is given."""
    if directory is None:
        directory = os.environ.get(PLATFORM_ENV) or None
        if directory is None:
            return None
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise PlatformError(f"--platform-dir '{directory}' is not a directory: allowed is ORFS's "
                            f"flow/platforms/asap7 folder")
    for sub in ("lib/NLDM", "lef"):
        if not (root / sub).is_dir():
            raise PlatformError(f"--platform-dir '{directory}' has no {sub}/ folder: allowed is "
                                f"ORFS's flow/platforms/asap7 folder")
    platform = Asap7Platform(root.resolve())
    platform.std_libs()
    return platform
