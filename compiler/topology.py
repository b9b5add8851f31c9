"""SCALE-Sim topology CSV files: the network description every Tessera simulator accepts.

SCALE-Sim (v2/v3) describes a network as one CSV row per layer, in one of two forms:

- conv: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
  Strides,`` -- the IFMAP sizes already include any padding, so the output size is
  ``(IFMAP - Filter) // Stride + 1``;
- GEMM: ``Layer, M, N, K,`` -- an M x K by K x N product, which SCALE-Sim maps onto its convolution
  form as a 1 x K filter sliding over an M x K input with one channel and N filters.

This module reads both forms the way SCALE-Sim's ``topology_utils`` does (a header line, fields
split on commas, surrounding whitespace and trailing commas ignored, a layer whose name contains
``DP`` expanded into one single-channel layer per channel) and is stricter where SCALE-Sim would
crash or silently misread: every problem is one line naming the file, line, column and value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tessera.errors import SpecError

__all__ = ["TopologyLayer", "read_topology", "write_topology", "CONV_COLUMNS", "GEMM_COLUMNS"]

#: Column names of the conv form, as SCALE-Sim's own topology files spell them.
CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                "Channels", "Num Filter", "Strides")
#: Column names of the GEMM (M, N, K) form.
GEMM_COLUMNS = ("Layer", "M", "N", "K")

_CONV_KEYS = ("layer name", "ifmap height", "ifmap width", "filter height", "filter width",
              "channels", "num filter", "strides")
_CONV_ALIASES = {"stride": "strides", "num filters": "num filter", "layer": "layer name"}
_GEMM_KEYS = ("layer", "m", "n", "k")
_GEMM_ALIASES = {"layer name": "layer"}


@dataclass(frozen=True)
class TopologyLayer:
    """One layer in SCALE-Sim's convolution form (a GEMM is a 1 x K filter over an M x K input)."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride: int

    def __post_init__(self):
        for field in ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters",
                      "stride"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"layer '{self.name}': {field} = {value!r} is invalid: allowed is "
                                f"a positive integer")
        for f, i in (("filter_h", "ifmap_h"), ("filter_w", "ifmap_w")):
            if getattr(self, f) > getattr(self, i):
                raise SpecError(f"layer '{self.name}': {f} = {getattr(self, f)} exceeds {i} = "
                                f"{getattr(self, i)}: allowed is at most the IFMAP size (SCALE-Sim "
                                f"IFMAP sizes include the padding)")

    @classmethod
    def gemm(cls, name: str, m: int, n: int, k: int) -> "TopologyLayer":
        """An M x K by K x N product in SCALE-Sim's convolution form (its ``load_arrays_gemm``)."""
        return cls(name, ifmap_h=m, ifmap_w=k, filter_h=1, filter_w=k, channels=1, num_filters=n,
                   stride=1)

    @property
    def ofmap_h(self) -> int:
        """Output rows as SCALE-Sim computes them: ``ceil((H - R + S) / S)``, no padding added.

        When ``H - R`` is not a multiple of the stride this is one more than a convolution has:
        the last row of windows hangs off the input (see docs/systolic.md).
        """
        return -(-(self.ifmap_h - self.filter_h + self.stride) // self.stride)

    @property
    def ofmap_w(self) -> int:
        return -(-(self.ifmap_w - self.filter_w + self.stride) // self.stride)

    @property
    def window(self) -> int:
        """Multiply-accumulates per output pixel: the GEMM reduction length K."""
        return self.filter_h * self.filter_w * self.channels

    @property
    def ofmap_pixels(self) -> int:
        """Output pixels per filter: the GEMM dimension M."""
        return self.ofmap_h * self.ofmap_w

    @property
    def macs(self) -> int:
        return self.ofmap_pixels * self.num_filters * self.window

    @property
    def mnk(self) -> tuple[int, int, int]:
        """The layer as the GEMM that SCALE-Sim maps onto the array: (M, N, K)."""
        return self.ofmap_pixels, self.num_filters, self.window

    @property
    def is_gemm(self) -> bool:
        """True when the layer is exactly a GEMM row (it round-trips through the M, N, K form)."""
        return (self.filter_h == 1 and self.channels == 1 and self.stride == 1
                and self.filter_w == self.ifmap_w)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _fields(line: str) -> list[str]:
    """Comma-separated fields without surrounding whitespace or the trailing empty ones."""
    fields = [f.strip() for f in line.split(",")]
    while fields and not fields[-1]:
        fields.pop()
    return fields


def _header_form(path: Path, header: list[str]) -> str:
    keys = [_norm(h) for h in header]
    conv = [_CONV_ALIASES.get(k, k) for k in keys[:len(_CONV_KEYS)]]
    gemm = [_GEMM_ALIASES.get(k, k) for k in keys[:len(_GEMM_KEYS)]]
    if tuple(conv) == _CONV_KEYS:
        return "conv"
    if tuple(gemm) == _GEMM_KEYS:
        return "gemm"
    raise SpecError(f"{path}:1: header {', '.join(header)!r} is not a SCALE-Sim topology header: "
                    f"allowed is '{', '.join(CONV_COLUMNS)}' (conv) or '{', '.join(GEMM_COLUMNS)}' "
                    f"(GEMM)")


def read_topology(path: str | Path) -> list[TopologyLayer]:
    """All layers of a SCALE-Sim topology CSV, conv or GEMM form (told apart by the header).

    Extra columns after the required ones are ignored, except a ``Sparsity`` column, whose ratio
    must be ``1:1``: the simulators here model dense layers. Blank lines, all-empty rows and lines
    starting with ``#`` are skipped.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise SpecError(f"cannot read topology file '{path}': {reason}") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise SpecError(f"{path}: the topology file is empty: expected a header line "
                        f"'{', '.join(CONV_COLUMNS)}' or '{', '.join(GEMM_COLUMNS)}' and one row "
                        f"per layer")
    header = _fields(lines[0])
    form = _header_form(path, header)
    columns = CONV_COLUMNS if form == "conv" else GEMM_COLUMNS
    sparsity_col = len(columns) if (len(header) > len(columns)
                                    and _norm(header[len(columns)]) == "sparsity") else None
    layers: list[TopologyLayer] = []
    for lineno, line in enumerate(lines[1:], start=2):
        fields = _fields(line)
        if not fields or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{lineno}"
        if len(fields) < len(columns):
            missing = ", ".join(repr(c) for c in columns[len(fields):])
            raise SpecError(f"{where}: layer {fields[0]!r} has {len(fields)} of the "
                            f"{len(columns)} columns: {missing} missing")
        name = fields[0]
        if not name:
            raise SpecError(f"{where}: column {columns[0]!r} is empty: allowed is a layer name")
        values = []
        for col, raw in zip(columns[1:], fields[1:len(columns)]):
            try:
                value = int(raw)
            except ValueError:
                raise SpecError(f"{where}: column {col!r} = {raw!r} is not an integer: allowed is "
                                f"a positive integer") from None
            if value < 1:
                raise SpecError(f"{where}: column {col!r} = {value} is invalid: allowed is a "
                                f"positive integer")
            values.append(value)
        if sparsity_col is not None and len(fields) > sparsity_col \
                and fields[sparsity_col] not in ("", "1:1"):
            raise SpecError(f"{where}: column 'Sparsity' = {fields[sparsity_col]!r} is not "
                            f"supported: allowed is 1:1 (dense layers)")
        if form == "gemm":
            m, n, k = values
            layers.append(TopologyLayer.gemm(name, m, n, k))
            continue
        ih, iw, fh, fw, ch, nf, st = values
        for f_col, f, i_col, i in ((3, fh, 1, ih), (4, fw, 2, iw)):
            if f > i:
                raise SpecError(f"{where}: column {columns[f_col]!r} = {f} exceeds "
                                f"{columns[i_col]!r} = {i}: allowed is at most the IFMAP size "
                                f"(SCALE-Sim IFMAP sizes include the padding)")
        if "DP" in name:
            # SCALE-Sim's depthwise convention: one single-channel layer per input channel.
            layers += [TopologyLayer(f"{name}Channel_{c}", ih, iw, fh, fw, 1, nf, st)
                       for c in range(ch)]
        else:
            layers.append(TopologyLayer(name, ih, iw, fh, fw, ch, nf, st))
    if not layers:
        raise SpecError(f"{path}: no layers after the header: expected one row per layer")
    return layers


def write_topology(layers: list[TopologyLayer], path: str | Path, form: str = "conv") -> None:
    """Write layers as a SCALE-Sim topology CSV (with SCALE-Sim's trailing commas).

    ``form="gemm"`` writes the M, N, K form; every layer must then be a GEMM row (``is_gemm``).
    """
    if form not in ("conv", "gemm"):
        raise SpecError(f"topology form {form!r} is unknown: allowed is conv or gemm")
    rows = [", ".join(CONV_COLUMNS if form == "conv" else GEMM_COLUMNS) + ","]
    for layer in layers:
        if "," in layer.name or not layer.name.strip():
            raise SpecError(f"layer name {layer.name!r} cannot be written to a CSV: allowed is a "
                            f"non-empty name without commas")
        if form == "gemm":
            if not layer.is_gemm:
                raise SpecError(f"layer '{layer.name}' is not a GEMM (filter {layer.filter_h}x"
                                f"{layer.filter_w}, {layer.channels} channels, stride "
                                f"{layer.stride}): allowed in the GEMM form are 1 x IFMAP-width "
                                f"filters over one channel at stride 1")
            m, n, k = layer.mnk
            rows.append(f"{layer.name}, {m}, {n}, {k},")
        else:
            rows.append(f"{layer.name},{layer.ifmap_h},{layer.ifmap_w},{layer.filter_h},"
                        f"{layer.filter_w},{layer.channels},{layer.num_filters},{layer.stride},")
    Path(path).write_text("\n".join(rows) + "\n")


def from_layer_shape(shape) -> TopologyLayer:
    """A LayerShape (compiler/layers.py) in SCALE-Sim's form: the padding goes into the IFMAP
    size (SCALE-Sim has none); a depthwise convolution becomes one-channel filters, which keeps
    its MAC count; a GEMM keeps SCALE-Sim's M x K input with 1 x K filters."""
    if shape.kind in ("gemm", "fc"):
        return TopologyLayer.gemm(shape.name, shape.W, shape.K, shape.C)
    pt, pl, pb, pr = shape.pads
    return TopologyLayer(shape.name, shape.H + pt + pb, shape.W + pl + pr, shape.R, shape.S,
                         shape.C // shape.groups, shape.K, shape.stride)
