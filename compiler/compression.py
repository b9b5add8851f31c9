"""The compression driver: (name, weight) pairs in, encoded layers, an accounting report and a
self-contained .npz out (docs/compression.md describes every field).

Accounting follows smartdeal.md III-C: a layer's stored bits are everything needed to rebuild it
(for SmartDeal: Ce's indexes and codes, the Huffman table, B and its scales), and

    compression_rate = 32 * n_weights / stored bits       (how many times smaller than FP32)

The reconstruction error is ||W - W_rebuilt||_F / ||W||_F per layer, and over the model
sqrt(sum ||W - W_rebuilt||^2 / sum ||W||^2), with W_rebuilt computed from the stored integers.
"""

from __future__ import annotations

import json
import math
import re
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from tessera.compiler.ce_codec import CODINGS, CeStreams, decode_ce, encode_ce
from tessera.compiler.prune import check_structure, filter_rows, prune
from tessera.compiler.quantize import Int8Weight, calibrate_scale, check_weight, quantize_weight
from tessera.compiler.smartdeal import (BlockLayout, SmartDealLayer, SmartDealOptions, decompose,
                                        supports)
from tessera.compiler.tbn import TbnLayer, TbnOptions, tile_layer
from tessera.errors import CompileError, ProgramError, SpecError

METHODS = ("smartdeal", "tbn", "int8", "prune")
FALLBACKS = ("int8", "error")
CODING_CHOICES = ("auto", *CODINGS)
FORMAT, FORMAT_VERSION = "tessera-compressed", 1
HEADER_KEY = "__header__"
FP32_BITS = 32


@dataclass(frozen=True)
class PruneOptions:
    """Magnitude pruning: the pass of method 'prune', or a pre-pass of the other methods."""
    fraction: float
    structure: str = "element"
    S: int = 3
    group_size: int = 1

    def __post_init__(self):
        check_structure(self.structure, self.group_size)
        if not (isinstance(self.fraction, (int, float)) and 0 <= self.fraction < 1):
            raise CompileError(f"prune fraction = {self.fraction!r} is invalid: allowed is a "
                               "number in [0, 1)")


@dataclass(frozen=True)
class CompressOptions:
    """What to do with every layer of a model."""
    method: str
    smartdeal: SmartDealOptions = SmartDealOptions()
    coding: str = "auto"          # Ce codes: fixed, huffman, or auto (the smaller)
    fallback: str = "int8"        # kernels SmartDeal cannot reshape: store int8, or fail
    tbn: TbnOptions = TbnOptions()
    prune: PruneOptions | None = None
    percentile: float = 100.0     # activation calibration

    def __post_init__(self):
        for option, value, allowed in (("method", self.method, METHODS),
                                       ("coding", self.coding, CODING_CHOICES),
                                       ("fallback", self.fallback, FALLBACKS)):
            if value not in allowed:
                raise CompileError(f"compression {option} '{value}' is unknown: allowed is one "
                                   f"of {', '.join(allowed)}")
        if self.method == "prune" and self.prune is None:
            raise CompileError("method 'prune' needs prune options (a fraction to prune)")

    def to_json(self) -> dict:
        """The options that shaped the result (the ones of the chosen method)."""
        out: dict = {"method": self.method, "percentile": self.percentile}
        if self.method == "smartdeal":
            out.update(smartdeal=asdict(self.smartdeal), coding=self.coding,
                       fallback=self.fallback)
        if self.method == "tbn":
            out["tbn"] = asdict(self.tbn)
        if self.prune is not None:
            out["prune"] = asdict(self.prune)
        return out


@dataclass(frozen=True)
class LayerReport:
    """One layer's accounting; the table and the JSON report are made of these."""
    name: str
    shape: tuple[int, ...]
    method: str               # how the layer is stored (a fallback shows here)
    bits: int                 # stored bits
    rel_err: float
    w_sparsity: float         # exact zeros in the rebuilt weight
    sq_err: float
    sq_norm: float
    seconds: float
    details: dict = field(default_factory=dict)   # method-specific, JSON-ready

    @property
    def n_weights(self) -> int:
        return math.prod(self.shape)

    @property
    def compression_rate(self) -> float:
        return FP32_BITS * self.n_weights / self.bits

    def to_json(self) -> dict:
        """Deterministic fields only (no timing)."""
        return {"name": self.name, "shape": list(self.shape), "method": self.method,
                "n_weights": self.n_weights, "bits": self.bits,
                "bits_per_weight": self.bits / self.n_weights,
                "compression_rate": self.compression_rate, "rel_err": self.rel_err,
                "w_sparsity": self.w_sparsity, "ce_sparsity": self.details.get("ce_sparsity"),
                **{k: v for k, v in self.details.items() if k != "ce_sparsity"}}


@dataclass(frozen=True)
class CompressedLayer:
    """A compressed layer: its report, and its stored form (header entry and arrays)."""
    report: LayerReport
    header: dict                     # JSON-ready: how to read ``arrays``
    arrays: dict[str, np.ndarray]    # what -o stores
    rebuilt: np.ndarray              # computed by the pass, before encoding

    def entry(self) -> dict:
        """The layer's entry in a file header."""
        return {"name": self.report.name, "shape": list(self.report.shape), **self.header}

    def decoded(self) -> dict[str, np.ndarray]:
        """What --dump writes: the factors decoded from the stored arrays, the rebuilt weight."""
        return _decode_entry(self.entry(), self.arrays.__getitem__)


@dataclass(frozen=True)
class CompressedModel:
    """Every layer of a model, compressed with one set of options."""
    options: CompressOptions
    layers: list[CompressedLayer]

    def total(self) -> dict:
        """Model-wide figures: sums, the overall error, sparsities weighted by size."""
        reports = [layer.report for layer in self.layers]
        n = sum(r.n_weights for r in reports)
        bits = sum(r.bits for r in reports)
        norm = sum(r.sq_norm for r in reports)
        sd = [r.details for r in reports if r.method == "smartdeal"]
        ce_elements = sum(d["ce_elements"] for d in sd)
        return {"n_weights": n, "bits": bits, "bits_per_weight": bits / n,
                "compression_rate": FP32_BITS * n / bits,
                "rel_err": math.sqrt(sum(r.sq_err for r in reports) / norm) if norm else 0.0,
                "w_sparsity": sum(r.w_sparsity * r.n_weights for r in reports) / n,
                "ce_sparsity": (sum(d["ce_sparsity"] * d["ce_elements"] for d in sd)
                                / ce_elements) if sd else None,
                "clamped": sum(d["clamped"] for d in sd) if sd else None}

    def to_json(self) -> dict:
        return {"options": self.options.to_json(),
                "layers": [layer.report.to_json() for layer in self.layers],
                "total": self.total()}

    def save(self, path: str | Path) -> None:
        """One .npz: ``__header__`` (JSON text) and the arrays of layer i as ``L<i>.<field>``."""
        arrays: dict[str, np.ndarray] = {}
        entries = []
        for i, layer in enumerate(self.layers):
            key = f"L{i}"
            entries.append({"key": key, **layer.entry()})
            arrays.update({f"{key}.{name}": value for name, value in layer.arrays.items()})
        header = {"format": FORMAT, "version": FORMAT_VERSION, "options": self.options.to_json(),
                  "layers": entries}
        with open(path, "wb") as f:
            np.savez(f, **{HEADER_KEY: np.array(json.dumps(header, sort_keys=True))}, **arrays)

    def dump(self, directory: str | Path) -> list[Path]:
        """One .npz per layer (``<index>_<name>.npz``) with the factors decoded from the stored
        arrays and the rebuilt weight, so the result can be checked with NumPy alone."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, layer in enumerate(self.layers):
            path = directory / f"{i:03d}_{re.sub(r'[^A-Za-z0-9._-]', '_', layer.report.name)}.npz"
            with open(path, "wb") as f:
                np.savez(f, **layer.decoded())
            paths.append(path)
        return paths


# -- the methods: each returns (header, arrays, rebuilt, bits, details) --------------------------

def _smartdeal(layer: SmartDealLayer, coding: str):
    opts = layer.options
    group = opts.group_size if opts.structure == "vector" else None
    streams = {c: encode_ce(layer.ce_codes, opts.n_exp, c, group) for c in CODINGS}
    b_bits = 8 * layer.b_int.size + 8 * layer.b_frac.size
    chosen = min(CODINGS, key=lambda c: streams[c].total_bits) if coding == "auto" else coding
    ce = streams[chosen]
    rebuilt = layer.rebuilt()
    details = {"coding": chosen, "ce_elements": layer.ce_codes.size,
               "ce_sparsity": float(np.mean(layer.ce_codes == 0)),
               "ce_bits_per_element": ce.total_bits / layer.ce_codes.size,
               "ce_index_bits": ce.index_bits, "ce_code_bits": ce.n_code_bits + ce.table_bits,
               "b_bits": b_bits, "bits_fixed": streams["fixed"].total_bits + b_bits,
               "bits_huffman": streams["huffman"].total_bits + b_bits,
               "clamped": layer.clamped, "iterations": layer.iterations}
    lay = layer.layout
    header = {"method": "smartdeal", "exp_min": opts.exp_min, "exp_max": opts.exp_max,
              "layout": {"S": lay.S, "unit": lay.unit, "units": lay.units,
                         "n_slices": lay.n_slices, "units_per_slice": lay.units_per_slice},
              "ce": ce.header()}
    arrays = {"ce_row_index": ce.row_index, "ce_elem_index": ce.elem_index,
              "ce_codes": ce.codes, "b": layer.b_int, "b_frac": layer.b_frac}
    return header, arrays, rebuilt, ce.total_bits + b_bits, details


def _tbn(layer: TbnLayer):
    header = {"method": "tbn", "p": layer.p, "q": layer.q, "n_alphas": int(layer.alphas.size)}
    arrays = {"tile": layer.tile_bits, "alphas": layer.alphas}
    return header, arrays, layer.rebuilt(), layer.bits, {"tile_bits": layer.q,
                                                         "n_alphas": int(layer.alphas.size)}


def _int8(q: Int8Weight):
    return ({"method": "int8"}, {"w": q.w_int, "scale": q.scale}, q.dequantize(),
            8 * q.w_int.size + 32 * q.scale.size, {})


def _pruned(w: np.ndarray, mask: np.ndarray, opts: PruneOptions):
    """Stored as an index (a bit per weight, or per group vector) plus the kept values (float32)."""
    if opts.structure == "element":
        index = mask.ravel()
    else:
        index = filter_rows(mask, opts.S)[::opts.group_size].any(axis=2).ravel()
    values = w[mask].astype(np.float32)
    rebuilt = np.zeros(w.shape)
    rebuilt[mask] = values
    header = {"method": "prune", "structure": opts.structure, "S": opts.S,
              "group_size": opts.group_size, "n_index_bits": int(index.size)}
    arrays = {"index": np.packbits(index), "values": values}
    return header, arrays, rebuilt, index.size + 32 * values.size, {
        "index_bits": int(index.size)}


def compress_layer(name: str, w, options: CompressOptions,
                   act_samples: np.ndarray | None = None) -> CompressedLayer:
    """Compress one (name, weight) pair; ``act_samples`` (its input activations) add an int8
    activation scale to the header and report."""
    start = time.perf_counter()
    original = check_weight(name, w)
    w = original
    if options.prune is not None:
        pruned = prune(w, options.prune.fraction, options.prune.structure, options.prune.S,
                       options.prune.group_size, name)
        w = pruned.weight
    method = options.method
    if method == "smartdeal" and not supports(w.shape, options.smartdeal.S) \
            and options.fallback == "int8":
        method = "int8"
    if method == "tbn" and not options.tbn.tiles(w.shape):
        method = "int8"
    if method == "smartdeal":
        result = _smartdeal(decompose(w, options.smartdeal, name), options.coding)
    elif method == "tbn":
        result = _tbn(tile_layer(w, options.tbn, name))
    elif method == "int8":
        result = _int8(quantize_weight(w, name))
    else:
        result = _pruned(w, pruned.mask, options.prune)
    header, arrays, rebuilt, bits, details = result
    if act_samples is not None:
        act_scale = calibrate_scale([act_samples], options.percentile, name)
        header["act_scale"] = details["act_scale"] = act_scale
    sq_err = float(np.sum((original - rebuilt) ** 2))
    sq_norm = float(np.sum(original ** 2))
    report = LayerReport(name=name, shape=tuple(original.shape), method=method, bits=int(bits),
                         rel_err=math.sqrt(sq_err / sq_norm) if sq_norm else 0.0,
                         w_sparsity=float(np.mean(rebuilt == 0)), sq_err=sq_err,
                         sq_norm=sq_norm, seconds=time.perf_counter() - start, details=details)
    return CompressedLayer(report, header, arrays, rebuilt)


def compress_model(weights: Iterable[tuple[str, np.ndarray]], options: CompressOptions,
                   calibration: Mapping[str, np.ndarray] | None = None,
                   before_layer: Callable[[str, np.ndarray], None] | None = None
                   ) -> CompressedModel:
    """Compress every layer in order; ``calibration`` maps every layer name to sample inputs;
    ``before_layer`` is called before each layer (progress display)."""
    weights = list(weights)
    names = [name for name, _ in weights]
    if not weights:
        raise SpecError("the model has no weights: allowed is at least one named weight array")
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise SpecError(f"layer name '{duplicate}' appears twice: allowed are unique names")
    if calibration is not None:
        unknown = sorted(set(calibration) - set(names))
        missing = [n for n in names if n not in calibration]
        if unknown or missing:
            raise SpecError("calibration samples do not match the model: "
                            + (f"no layer '{unknown[0]}'" if unknown
                               else f"no samples for layer '{missing[0]}'")
                            + ": allowed is one sample array per layer name")
    layers = []
    for name, w in weights:
        if before_layer is not None:
            before_layer(name, w)
        layers.append(compress_layer(name, w, options,
                                     None if calibration is None else calibration[name]))
    return CompressedModel(options, layers)


# -- files ---------------------------------------------------------------------------------------

def _open_npz(path: str | Path, what: str):
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SpecError(f"cannot read {what} '{path}': {exc}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise SpecError(f"{what} '{path}' is a single array: allowed is an .npz of named arrays")
    return data


def _array(data, key: str, path) -> np.ndarray:
    try:
        return data[key]
    except KeyError:
        raise ProgramError(f"compressed model '{path}' has no array '{key}'") from None
    except ValueError as exc:
        raise SpecError(f"'{path}': array '{key}' cannot be read: {exc}") from None


def load_arrays(path: str | Path, what: str = "model") -> list[tuple[str, np.ndarray]]:
    """Every array of an .npz, in file order, as (name, array); no pickled objects."""
    with _open_npz(path, what) as data:
        return [(name, _array(data, name, path)) for name in data.files]


def load_weights(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """A MODEL: an .npz of named weights (conv (K,C,R,S), FC (out,in)), or a compressed model
    written by ``CompressedModel.save`` (its rebuilt weights, e.g. to compress after pruning)."""
    arrays = load_arrays(path)
    if any(name == HEADER_KEY for name, _ in arrays):
        return load_compressed(path)
    if not arrays:
        raise SpecError(f"model '{path}' holds no arrays: allowed is one array per layer")
    return [(name, check_weight(name, w)) for name, w in arrays]


def _decode_entry(entry: dict, arrays: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
    """A stored layer decoded: its factors and ``w_rebuilt``, from the header entry and arrays."""
    shape = tuple(entry["shape"])
    method = entry["method"]
    if method == "smartdeal":
        lay = entry["layout"]
        streams = CeStreams.from_header(entry["ce"], arrays("ce_row_index"),
                                        arrays("ce_elem_index"), arrays("ce_codes"))
        layer = SmartDealLayer(
            name=entry["name"], layout=BlockLayout(shape, **lay),
            options=SmartDealOptions(S=lay["S"], exp_min=entry["exp_min"],
                                     exp_max=entry["exp_max"]),
            ce_codes=decode_ce(streams), b_int=arrays("b"), b_frac=arrays("b_frac"),
            clamped=0, iterations=0)
        return {"ce": layer.ce(), "b": layer.b_int, "b_scale": layer.b_scale(),
                "w_int": layer.w_int(), "w_scale": layer.w_scale(), "w_rebuilt": layer.rebuilt()}
    if method == "tbn":
        layer = TbnLayer(entry["name"], shape, entry["p"], entry["q"], arrays("tile"),
                         arrays("alphas"))
        return {"tile": layer.tile(), "alphas": layer.alphas, "w_rebuilt": layer.rebuilt()}
    if method == "int8":
        q = Int8Weight(arrays("w"), arrays("scale"))
        return {"w_int": q.w_int, "scale": q.scale, "w_rebuilt": q.dequantize()}
    if method == "prune":
        index = np.unpackbits(arrays("index"), count=entry["n_index_bits"]).astype(bool)
        if entry["structure"] == "vector":
            groups = index.reshape(-(-shape[0] // entry["group_size"]), -1)
            rows = np.repeat(groups, entry["group_size"], axis=0)[:shape[0]]
            index = np.repeat(rows, entry["S"], axis=1)[:, :math.prod(shape[1:])]
        mask = index.reshape(shape)
        rebuilt = np.zeros(shape)
        rebuilt[mask] = arrays("values")
        return {"mask": mask, "w_rebuilt": rebuilt}
    raise ProgramError(f"layer '{entry['name']}' has method '{method}': allowed is one of "
                       f"{', '.join(METHODS)}")


def load_compressed(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """(name, rebuilt weight) for every layer of a file written by ``CompressedModel.save``,
    decoded from the stored streams alone."""
    with _open_npz(path, "compressed model") as data:
        try:
            header = json.loads(str(_array(data, HEADER_KEY, path)))
        except json.JSONDecodeError as exc:
            raise ProgramError(f"compressed model '{path}' has a corrupt header: {exc}") from None
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise ProgramError(f"'{path}' is format {header.get('format')!r} version "
                               f"{header.get('version')!r}: allowed is {FORMAT!r} version "
                               f"{FORMAT_VERSION}")
        out = []
        for entry in header["layers"]:
            try:
                weight = _decode_entry(entry, lambda f: _array(data, f"{entry['key']}.{f}",
                                                               path))["w_rebuilt"]
            except (KeyError, TypeError, ValueError) as exc:
                raise ProgramError(f"compressed model '{path}': layer entry "
                                   f"{entry.get('name')!r} is malformed: {exc!r}") from None
            out.append((entry["name"], weight))
        return out
