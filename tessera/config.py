"""One configuration for everything: ``ArchConfig`` and its per-architecture subclasses.

A configuration is a frozen, validated dataclass. The hardware generator, the cycle simulator, the
compiler, the testbenches and the FPGA/ASIC flows all read the same object, so nothing is configured
twice. Each field carries its help text, its allowed values and whether it changes the generated
hardware; the hardware fields form the configuration hash that the generated RTL exposes in its ID
register and that every compiled program records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar

import tomli_w

from .errors import ConfigError

__all__ = [
    "ArchConfig", "LcpConfig", "ARCHS", "PRESETS", "Preset",
    "resolve_config", "load_config", "config_from_dict",
]

#: Version of the hashed configuration encoding; bump when the meaning of a field changes.
HASH_VERSION = 1


@dataclass(frozen=True)
class Allowed:
    """The set of values a field accepts, with a phrase that describes it in error messages."""
    phrase: str
    test: Callable[[Any], bool]


def power_of_two(lo: int, hi: int) -> Allowed:
    return Allowed(f"a power of two from {lo} to {hi}",
                   lambda v: lo <= v <= hi and v & (v - 1) == 0)


def int_range(lo: int, hi: int) -> Allowed:
    return Allowed(f"an integer from {lo} to {hi}", lambda v: lo <= v <= hi)


def number_range(lo: float, hi: float) -> Allowed:
    return Allowed(f"a number from {lo:g} to {hi:g}", lambda v: lo <= v <= hi)


def any_name() -> Allowed:
    return Allowed("a non-empty name", lambda v: bool(v.strip()))


def param(default: Any, help: str, allowed: Allowed, *, hardware: bool = True):
    """A configuration field: default, help text, allowed values, and whether it shapes the RTL."""
    return field(default=default, metadata={"help": help, "allowed": allowed, "hardware": hardware})


@dataclass(frozen=True)
class ArchConfig:
    """Fields shared by every architecture: the memory system contract and the clock.

    DRAM is a port with a fixed access latency and a fixed bandwidth of ``dram_width`` bytes per
    cycle (one beat per cycle); see docs/memory-model.md.
    """

    arch: ClassVar[str] = ""

    clock_mhz: float = param(100.0, "core clock in MHz (used for latency and power figures)",
                             number_range(1, 5000), hardware=False)
    dram_width: int = param(4, "DRAM port width in bytes; the port moves one beat per cycle",
                            power_of_two(1, 32))
    dram_latency: int = param(10, "cycles from a DRAM read request to its first data beat",
                              int_range(1, 1000), hardware=False)
    energy_table: str = param("smartdeal-28nm", "energy table: a built-in name or a TOML file path",
                              any_name(), hardware=False)

    # -- validation -------------------------------------------------------------------------------
    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            want = f.type if isinstance(f.type, type) else {"int": int, "float": float,
                                                             "str": str, "bool": bool}[f.type]
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise ConfigError(f"config field '{f.name}' = {value!r} has the wrong type: "
                                  f"expected {want.__name__}")
            allowed: Allowed = f.metadata["allowed"]
            if not allowed.test(value):
                raise ConfigError(f"config field '{f.name}' = {value!r} is invalid: "
                                  f"allowed is {allowed.phrase}")
        self.check_relations()

    def check_relations(self) -> None:
        """Cross-field rules; subclasses raise ConfigError naming the field that breaks them."""

    # -- serialisation ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, **{f.name: getattr(self, f.name) for f in fields(self)}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @property
    def config_hash(self) -> str:
        """Eight hex digits identifying the generated hardware (hardware fields only)."""
        hw = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["hardware"]}
        blob = json.dumps({"v": HASH_VERSION, "arch": self.arch, **hw}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    @property
    def config_id(self) -> int:
        """The hash as the 32-bit value of the RTL's read-only ID register."""
        return int(self.config_hash, 16)

    @classmethod
    def field_help(cls) -> list[tuple[str, str, Any, str]]:
        """(name, allowed, default, help) for every field, for --help and docs."""
        return [(f.name, f.metadata["allowed"].phrase, f.default, f.metadata["help"])
                for f in fields(cls)]

    def replace(self, **changes: Any) -> "ArchConfig":
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown config key '{unknown[0]}' for arch '{self.arch}': "
                              f"allowed keys are {', '.join(f.name for f in fields(self))}")
        return dataclasses.replace(self, **changes)

    def with_overrides(self, assignments: list[str]) -> "ArchConfig":
        """Apply CLI ``key=value`` strings, parsing each value by the field's type."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for text in assignments:
            key, sep, raw = text.partition("=")
            key, raw = key.strip(), raw.strip()
            if not sep or not key:
                raise ConfigError(f"--set '{text}' is malformed: expected key=value")
            if key not in types:
                raise ConfigError(f"unknown config key '{key}' for arch '{self.arch}': "
                                  f"allowed keys are {', '.join(types)}")
            changes[key] = _parse_value(key, raw, types[key])
        return self.replace(**changes)


def _parse_value(key: str, raw: str, typ: Any) -> Any:
    name = typ if isinstance(typ, str) else typ.__name__
    try:
        if name == "int":
            return int(raw, 0)
        if name == "float":
            return float(raw)
        if name == "bool":
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return raw
    except ValueError:
        raise ConfigError(f"config field '{key}' = {raw!r} is not a valid {name}") from None


@dataclass(frozen=True)
class LcpConfig(ArchConfig):
    """The LCP latency-optimized array (lcp.md III-B): rows x cols int8 cells, column adder trees.

    ``rows`` is the reduction (input-channel) dimension of one stationary block, ``cols`` the number
    of output channels computed at once. Activations are int8, accumulators ``acc_width`` bits.
    """

    arch: ClassVar[str] = "lcp"

    rows: int = param(4, "array rows: input channels reduced per block by each column's adder tree",
                      power_of_two(2, 128))
    cols: int = param(4, "array columns: output channels per block (a multiple of rows)",
                      power_of_two(2, 256))
    acc_width: int = param(32, "accumulator width in bits (sums wrap at this width)",
                           int_range(20, 32))
    abuf_depth: int = param(256, "activation buffer entries of `rows` bytes (two banks)",
                            power_of_two(16, 65536))
    acc_depth: int = param(32, "accumulator entries (output pixels per tile), each `cols` wide",
                           power_of_two(4, 8192))

    def check_relations(self) -> None:
        if self.cols % self.rows:
            raise ConfigError(f"config field 'cols' = {self.cols} is invalid: allowed is a multiple "
                              f"of rows ({self.rows})")
        if self.dram_width > self.rows:
            raise ConfigError(f"config field 'dram_width' = {self.dram_width} is invalid: allowed "
                              f"is at most rows ({self.rows}) bytes")

    @property
    def planes(self) -> int:
        """Activation planes (groups of `rows` channels) produced by one column block."""
        return self.cols // self.rows


#: Every architecture Tessera knows, by the name used on the command line.
ARCHS: dict[str, type[ArchConfig]] = {"lcp": LcpConfig}


@dataclass(frozen=True)
class Preset:
    name: str
    arch: str
    description: str
    values: dict[str, Any]

    def build(self) -> ArchConfig:
        return ARCHS[self.arch](**self.values)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("lcp-asap7-32x64", "lcp", "LCP paper ASIC: 32x64 cells at 800 MHz, LPDDR2-class DRAM",
           dict(rows=32, cols=64, clock_mhz=800.0, dram_width=4, dram_latency=40,
                abuf_depth=1024, acc_depth=128)),
    Preset("lcp-pynq-z1", "lcp", "PYNQ-Z1 (XC7Z020): 8x16 cells = 128 DSP48E1, 64-bit HP port",
           dict(rows=8, cols=16, clock_mhz=100.0, dram_width=8, dram_latency=24,
                abuf_depth=4096, acc_depth=512)),
    Preset("lcp-32x32-1ghz", "lcp", "smartdeal-paper's peer: 32x32 cells = 1K 8-bit multipliers "
           "(its 8K bit-serial MACs), 1 GHz, its DRAM port", dict(
               rows=32, cols=32, clock_mhz=1000.0, dram_width=16, dram_latency=100,
               abuf_depth=16384, acc_depth=4096)),
    Preset("lcp-32x64-1ghz", "lcp", "smartdeal-paper's dense-peak peer: 32x64 cells "
           "(2K MAC/cycle), 1 GHz, its DRAM port", dict(
               rows=32, cols=64, clock_mhz=1000.0, dram_width=16, dram_latency=100,
               abuf_depth=16384, acc_depth=2048)),
    Preset("lcp-tiny", "lcp", "4x4 test array", dict(rows=4, cols=4, dram_width=4, dram_latency=6,
                                                       abuf_depth=128, acc_depth=16)),
    Preset("lcp-small", "lcp", "4x8 test array", dict(rows=4, cols=8, dram_width=2, dram_latency=10,
                                                        abuf_depth=256, acc_depth=32)),
    Preset("lcp-8x16", "lcp", "8x16 test array", dict(rows=8, cols=16, dram_width=8, dram_latency=12,
                                                        abuf_depth=512, acc_depth=64)),
]}

#: The preset used when only --arch is given.
DEFAULT_PRESET = {"lcp": "lcp-tiny"}


def config_from_dict(data: dict[str, Any], source: str = "config") -> ArchConfig:
    data = dict(data)
    arch = data.pop("arch", None)
    if arch not in ARCHS:
        raise ConfigError(f"{source}: field 'arch' = {arch!r} is invalid: allowed is one of "
                          f"{', '.join(ARCHS)}")
    cls = ARCHS[arch]
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"{source}: unknown config key '{key}' for arch '{arch}': "
                              f"allowed keys are {', '.join(sorted(known))}")
    return cls(**data)


def load_config(path: str | Path) -> ArchConfig:
    """Read a configuration from a .json or .toml file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file '{path}' is not valid {path.suffix[1:] or 'JSON'}: {exc}") \
            from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a table of fields")
    return config_from_dict(data, source=str(path))


def resolve_config(arch: str | None = None, preset: str | None = None,
                   config_file: str | None = None, sets: list[str] | None = None) -> ArchConfig:
    """The configuration a command runs on: a file or a preset (or the arch's default), then --set."""
    if config_file and preset:
        raise ConfigError("give either --config or --preset, not both")
    if config_file:
        cfg = load_config(config_file)
    else:
        if preset is None:
            if arch is None:
                raise ConfigError("no architecture given: use --arch "
                                  f"({', '.join(ARCHS)}) or --preset")
            if arch not in ARCHS:
                raise ConfigError(f"--arch '{arch}' is unknown: allowed is one of "
                                  f"{', '.join(ARCHS)}")
            preset = DEFAULT_PRESET[arch]
        if preset not in PRESETS:
            raise ConfigError(f"--preset '{preset}' is unknown: allowed is one of "
                              f"{', '.join(PRESETS)}")
        cfg = PRESETS[preset].build()
    if arch is not None and cfg.arch != arch:
        raise ConfigError(f"--arch '{arch}' does not match the configuration's arch '{cfg.arch}'")
    return cfg.with_overrides(sets or [])


@dataclass(frozen=True)
class SystolicConfig(ArchConfig):
    """A conventional rows x cols systolic MAC array, the baseline SCALE-Sim v3 models.

    ``dataflow`` picks what stays in the cells: outputs (os), weights (ws) or inputs (is). Three
    double-buffered SRAMs (IFMAP, filter, OFMAP) sit between the array and DRAM. With
    ``scalesim_compat`` the simulator (sim/systolic.py) reproduces SCALE-Sim's estimate-bandwidth
    mode exactly, known errors included; without it those errors are corrected (docs/systolic.md).
    """

    arch: ClassVar[str] = "systolic"

    rows: int = param(32, "array rows (SCALE-Sim ArrayHeight)", int_range(1, 4096))
    cols: int = param(32, "array columns (SCALE-Sim ArrayWidth)", int_range(1, 4096))
    dataflow: str = param("os", "os, ws or is: keep outputs, weights or inputs in the cells",
                          Allowed("one of os, ws, is", lambda v: v in ("os", "ws", "is")))
    ifmap_sram_kb: int = param(64, "IFMAP SRAM in KB, double-buffered (SCALE-Sim IfmapSramSzkB)",
                               int_range(1, 1 << 20))
    filter_sram_kb: int = param(64, "filter SRAM in KB, double-buffered (FilterSramSzkB)",
                                int_range(1, 1 << 20))
    ofmap_sram_kb: int = param(64, "OFMAP SRAM in KB, double-buffered (OfmapSramSzkB)",
                               int_range(1, 1 << 20))
    word_size: int = param(1, "bytes per data word (SCALE-Sim always uses 1)",
                           Allowed("1, 2 or 4", lambda v: v in (1, 2, 4)))
    scalesim_compat: bool = param(True, "reproduce SCALE-Sim v3 exactly, its errors included; "
                                  "false corrects them (docs/systolic.md)",
                                  Allowed("true or false", lambda v: isinstance(v, bool)),
                                  hardware=False)


ARCHS["systolic"] = SystolicConfig
PRESETS.update({p.name: p for p in [
    Preset(f"systolic-32x32-{df}", "systolic",
           f"SCALE-Sim's default scale.cfg, {df.upper()} dataflow: 32x32, 64 KB per SRAM",
           dict(rows=32, cols=32, dataflow=df, ifmap_sram_kb=64, filter_sram_kb=64,
                ofmap_sram_kb=64, dram_width=16))
    for df in ("os", "ws", "is")] + [
    Preset("systolic-tpu-256x256", "systolic",
           "TPU v1-like (SCALE-Sim google.cfg): 256x256 WS, 6 MB IFMAP/filter, 2 MB OFMAP SRAM",
           dict(rows=256, cols=256, dataflow="ws", ifmap_sram_kb=6144, filter_sram_kb=6144,
                ofmap_sram_kb=2048, dram_width=32, clock_mhz=700.0)),
]})
DEFAULT_PRESET["systolic"] = "systolic-32x32-os"


@dataclass(frozen=True)
class SmartDealConfig(ArchConfig):
    """The SmartDeal accelerator (smartdeal.md V-B, Fig. 4): dim_m PE slices of dim_c PE lines of
    dim_f bit-serial MACs. Each line rebuilds its weights from Ce codes and an S x S basis in two
    ping-pong rebuild engines; slices share input activations; vector-wise zero Ce rows are
    skipped together with their activation rows (docs/smartdeal.md).
    """

    arch: ClassVar[str] = "smartdeal"

    dim_m: int = param(4, "PE slices: output channels computed at once (group of shared "
                          "vector sparsity)", int_range(1, 128))
    dim_c: int = param(2, "PE lines per slice: (input channel, kernel row) pairs per pass",
                       int_range(1, 64))
    dim_f: int = param(4, "bit-serial MACs per line: output pixels of a row segment",
                       power_of_two(2, 64))
    S: int = param(3, "basis size = longest kernel row a line runs (kernel width)",
                   int_range(2, 7))
    n_exp: int = param(8, "power-of-two exponents a Ce code can hold (shift 0..n_exp-1)",
                       int_range(1, 8))
    acc_width: int = param(32, "MAC accumulator width in bits (sums wrap at this width)",
                           int_range(24, 40))
    gb_depth: int = param(64, "input global buffer words (two banks), each dim_c*S channels x "
                              "dim_f pixels", power_of_two(8, 65536))
    wb_depth: int = param(32, "weight buffer words per bank (two banks): one pass of Ce codes, "
                              "or half a pass of int8 weights", power_of_two(4, 65536))
    bb_depth: int = param(8, "basis buffer words per bank (two banks): one S x S basis per "
                             "slice", power_of_two(2, 65536))
    fc_clusters: int = param(2, "MAC clusters per line for FC-like layers (1x1, at most dim_f/2 "
                                "output columns): 2 splits a line's MACs between its two rebuild "
                                "engines, each on its own output channels (twice the FC "
                                "throughput for a second shift-and-add unit per line); 1 keeps "
                                "one weight per line", int_range(1, 2))

    def check_relations(self) -> None:
        B = self.dram_width
        if self.dim_m * self.dim_c * self.S % 2:
            raise ConfigError(f"config field 'dim_m' = {self.dim_m} is invalid: allowed makes "
                              f"dim_m*dim_c*S even (two pass words hold a pass of int8 weights)")
        if self.gb_lanes % B or self.dim_f * self.gb_lanes % B:
            raise ConfigError(f"config field 'dram_width' = {B} is invalid: allowed is a divisor "
                              f"of dim_c*S ({self.gb_lanes}) channels")
        if self.dim_m % B and self.gb_lanes % self.dim_m:
            raise ConfigError(f"config field 'dim_m' = {self.dim_m} is invalid: allowed is a "
                              f"multiple of dram_width ({B}) or a divisor of dim_c*S "
                              f"({self.gb_lanes})")
        if self.rebuilt_bits + 8 + 1 > self.acc_width:
            raise ConfigError(f"config field 'acc_width' = {self.acc_width} is invalid: allowed is "
                              f"at least {self.rebuilt_bits + 9} (a rebuilt weight is "
                              f"{self.rebuilt_bits} bits)")

    @property
    def gb_lanes(self) -> int:
        """Channels in one input-buffer word, and in one activation plane in DRAM."""
        return self.dim_c * self.S

    @property
    def rebuilt_bits(self) -> int:
        """Signed width of a rebuilt weight: |W| <= S * 127 * 2**(n_exp - 1)."""
        return (self.S * 127 << (self.n_exp - 1)).bit_length() + 1


ARCHS["smartdeal"] = SmartDealConfig
PRESETS.update({p.name: p for p in [
    Preset("smartdeal-paper", "smartdeal",
           "SmartDeal Table IX: 64 slices x 16 lines x 8 bit-serial MACs (8K), S=3, 1 GHz",
           dict(dim_m=64, dim_c=16, dim_f=8, S=3, clock_mhz=1000.0, dram_width=16,
                dram_latency=100, gb_depth=1024, wb_depth=256, bb_depth=64)),
    Preset("smartdeal-pynq-z1", "smartdeal",
           "PYNQ-Z1 (XC7Z020): 4 slices x 4 lines x 2 bit-serial MACs in LUTs, 32-bit port, "
           "no MAC clusters (their second shift-and-add units do not fit)",
           dict(dim_m=4, dim_c=4, dim_f=2, S=3, clock_mhz=100.0, dram_width=4, dram_latency=24,
                gb_depth=2048, wb_depth=512, bb_depth=64, fc_clusters=1)),
    Preset("smartdeal-tiny", "smartdeal", "2 slices x 2 lines x 4 MACs test array",
           dict(dim_m=2, dim_c=2, dim_f=4, dram_width=2, dram_latency=5, gb_depth=64,
                wb_depth=32, bb_depth=8)),
    Preset("smartdeal-small", "smartdeal", "4 slices x 4 lines x 4 MACs test array",
           dict(dim_m=4, dim_c=4, dim_f=4, dram_width=4, dram_latency=8, gb_depth=128,
                wb_depth=64, bb_depth=16)),
]})
DEFAULT_PRESET["smartdeal"] = "smartdeal-tiny"
