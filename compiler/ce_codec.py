"""Lossless bit streams for SmartDeal's Ce codes (smartdeal.md Appendix B).

Ce is given as its integer codes (``SmartDealLayer.ce_codes``): an int array (K, n_slices, m, S)
holding 0 for a zero coefficient and +-k (1 <= k <= n_exp) for +-2**(exp_min + k - 1). It is
stored as up to three plain bit streams, each in C order of that array:

- ``row_index``: one bit per *group row* (1 = kept), only when a ``group_size`` is given: the rows
  of ``group_size`` consecutive output channels at the same (slice, row) share one bit, which is
  the per-row index the accelerator's index selector uses to skip rows in lockstep
  (``row_mask``). A group row is kept when any of its coefficients is non-zero.
- ``elem_index``: one bit per coefficient of the kept rows (of every row without a row index),
  1 = non-zero; left out when none of those coefficients is zero.
- ``codes``: one code per non-zero coefficient, either ``fixed`` (a sign bit, 1 = negative, then
  k - 1 in exp_bits = bit_length(n_exp - 1) bits) or ``huffman`` (the canonical Huffman code of
  symbol 2*(k - 1) + sign; the table is the code length of every symbol, length_bits each).

Bit order everywhere: values are written most significant bit first, and stream bit t is bit
7 - t % 8 of byte t // 8 (``np.packbits`` order); the last byte is zero-padded.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from tessera.errors import CompileError, ProgramError

CODINGS = ("fixed", "huffman")
_CHUNK = 1 << 18          # codes per step of the bit writer (bounds its temporary memory)


def exp_bits(n_exp: int) -> int:
    """Bits of a fixed-width exponent field."""
    return (n_exp - 1).bit_length()


def length_bits(n_symbols: int) -> int:
    """Bits per entry of a Huffman table: a code length of up to n_symbols - 1."""
    return max(1, (n_symbols - 1).bit_length())


def row_mask(ce_codes: np.ndarray, group_size: int) -> np.ndarray:
    """(groups, n_slices, m) bool: which group rows hold a non-zero coefficient."""
    nonzero = np.asarray(ce_codes).any(axis=-1)
    K = nonzero.shape[0]
    groups = -(-K // group_size)
    padded = np.zeros((groups * group_size, *nonzero.shape[1:]), bool)
    padded[:K] = nonzero
    return padded.reshape(groups, group_size, *nonzero.shape[1:]).any(axis=1)


def _expand_rows(rows: np.ndarray, group_size: int, shape: tuple[int, ...]) -> np.ndarray:
    """Group-row mask -> per-coefficient mask of ``shape`` (K, n_slices, m, S)."""
    per_filter = np.repeat(rows, group_size, axis=0)[:shape[0]]
    return np.broadcast_to(per_filter[..., None], shape)


def huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Code length per symbol (0 when unused) of a Huffman code; ties merge the lowest ids first,
    so the code is a deterministic function of the counts."""
    counts = np.asarray(counts, np.int64)
    lengths = np.zeros(counts.size, np.int64)
    used = [int(s) for s in np.flatnonzero(counts)]
    if len(used) == 1:
        lengths[used[0]] = 1
    heap = [(int(counts[s]), s, [s]) for s in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        c1, t1, s1 = heapq.heappop(heap)
        c2, t2, s2 = heapq.heappop(heap)
        lengths[s1 + s2] += 1
        heapq.heappush(heap, (c1 + c2, min(t1, t2), s1 + s2))
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical Huffman codes: by (length, symbol), each code is the previous one plus one,
    shifted left when the length grows."""
    lengths = np.asarray(lengths, np.int64)
    codes = np.zeros(lengths.size, np.int64)
    code, previous = 0, 0
    for symbol in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[symbol]) - previous
        codes[symbol] = code
        previous = int(lengths[symbol])
        code += 1
    return codes


def _write(values: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, int]:
    """Concatenate values[i] in lengths[i] bits (1..31), MSB first; returns (packed bytes, bit
    count). Each code is left-aligned in a big-endian 32-bit word, unpacked to bits, and the
    first lengths[i] bits of each word are kept (in chunks, to bound temporary memory)."""
    width = int(lengths.max(initial=0))
    positions = np.arange(width)
    pieces = [np.zeros(0, np.uint8)]
    for start in range(0, values.size, _CHUNK):
        length = lengths[start:start + _CHUNK].astype(np.uint32)
        words = (values[start:start + _CHUNK].astype(np.uint32) << (32 - length)).astype(">u4")
        bits = np.unpackbits(words.view(np.uint8).reshape(-1, 4), axis=1)[:, :width]
        pieces.append(bits[positions < length[:, None]])
    bits = np.concatenate(pieces)
    return np.packbits(bits), bits.size


def _read_bits(packed: np.ndarray, n_bits: int, what: str) -> np.ndarray:
    packed = np.asarray(packed, np.uint8)
    if packed.ndim != 1 or packed.size != -(-n_bits // 8):
        raise ProgramError(f"Ce {what} stream has {packed.size} bytes: allowed is "
                           f"{-(-n_bits // 8)} for {n_bits} bits")
    return np.unpackbits(packed, count=n_bits)


@dataclass(frozen=True)
class CeStreams:
    """One layer's encoded Ce: the three streams and what is needed to read them back."""
    shape: tuple[int, ...]
    n_exp: int
    coding: str
    group_size: int                  # 0: no row index
    row_index: np.ndarray
    n_row_bits: int
    elem_index: np.ndarray
    n_elem_bits: int
    codes: np.ndarray
    n_code_bits: int
    n_nonzero: int
    huffman_lengths: tuple[int, ...]  # per symbol 2*(k-1) + sign; empty for fixed

    @property
    def table_bits(self) -> int:
        n = len(self.huffman_lengths)
        return n * length_bits(n) if n else 0

    @property
    def index_bits(self) -> int:
        return self.n_row_bits + self.n_elem_bits

    @property
    def total_bits(self) -> int:
        """Every stored bit: indexes, codes and the Huffman table."""
        return self.index_bits + self.n_code_bits + self.table_bits

    def header(self) -> dict:
        """The fields (JSON-ready) that, with the three byte arrays, reproduce the codes."""
        return {"shape": list(self.shape), "n_exp": self.n_exp, "coding": self.coding,
                "group_size": self.group_size, "n_row_bits": self.n_row_bits,
                "n_elem_bits": self.n_elem_bits, "n_code_bits": self.n_code_bits,
                "n_nonzero": self.n_nonzero, "huffman_lengths": list(self.huffman_lengths)}

    @classmethod
    def from_header(cls, header: dict, row_index, elem_index, codes) -> "CeStreams":
        try:
            return cls(shape=tuple(int(d) for d in header["shape"]), n_exp=int(header["n_exp"]),
                       coding=str(header["coding"]), group_size=int(header["group_size"]),
                       row_index=np.asarray(row_index, np.uint8),
                       n_row_bits=int(header["n_row_bits"]),
                       elem_index=np.asarray(elem_index, np.uint8),
                       n_elem_bits=int(header["n_elem_bits"]),
                       codes=np.asarray(codes, np.uint8), n_code_bits=int(header["n_code_bits"]),
                       n_nonzero=int(header["n_nonzero"]),
                       huffman_lengths=tuple(int(n) for n in header["huffman_lengths"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProgramError(f"Ce stream header is malformed: {exc!r}") from None


def encode_ce(ce_codes: np.ndarray, n_exp: int, coding: str = "fixed",
              group_size: int | None = None) -> CeStreams:
    """Encode Ce codes (see the module docstring); ``group_size`` adds the group-row index."""
    codes = np.asarray(ce_codes)
    if coding not in CODINGS:
        raise CompileError(f"Ce coding '{coding}' is unknown: allowed is one of "
                           f"{', '.join(CODINGS)}")
    if not (isinstance(n_exp, int) and 1 <= n_exp <= 16):
        raise CompileError(f"n_exp = {n_exp!r} is invalid: allowed is an integer from 1 to 16")
    if group_size is not None and not (isinstance(group_size, int) and group_size >= 1):
        raise CompileError(f"group_size = {group_size!r} is invalid: allowed is a positive "
                           "integer or None")
    if codes.ndim != 4 or codes.dtype.kind not in "iu":
        raise CompileError(f"Ce codes must be a 4-D integer array (K, n_slices, m, S), got "
                           f"{codes.dtype} {codes.shape}")
    if codes.size and np.abs(codes.astype(np.int64)).max() > n_exp:
        raise CompileError(f"Ce code {int(np.abs(codes.astype(np.int64)).max())} is out of "
                           f"range: allowed is |code| <= n_exp = {n_exp}")
    nonzero = codes != 0
    if group_size is None:
        rows = np.zeros(0, bool)
        candidates = np.ones(codes.shape, bool)
    else:
        rows = row_mask(codes, group_size)
        candidates = _expand_rows(rows, group_size, codes.shape)
    elems = nonzero[candidates]
    if elems.all():
        elems = np.zeros(0, bool)

    values = codes[nonzero].astype(np.int64)
    sign = (values < 0).astype(np.int64)
    offset = np.abs(values) - 1
    if coding == "fixed":
        width = 1 + exp_bits(n_exp)
        packed, n_code_bits = _write((sign << exp_bits(n_exp)) | offset,
                                     np.full(values.size, width, np.int64))
        table: tuple[int, ...] = ()
    else:
        symbols = 2 * offset + sign
        lengths = huffman_lengths(np.bincount(symbols, minlength=2 * n_exp))
        packed, n_code_bits = _write(canonical_codes(lengths)[symbols], lengths[symbols])
        table = tuple(int(n) for n in lengths)
    return CeStreams(shape=tuple(codes.shape), n_exp=n_exp, coding=coding,
                     group_size=group_size or 0,
                     row_index=np.packbits(rows.ravel()), n_row_bits=rows.size,
                     elem_index=np.packbits(elems), n_elem_bits=elems.size,
                     codes=packed, n_code_bits=n_code_bits, n_nonzero=int(values.size),
                     huffman_lengths=table)


def _decode_fixed(bits: np.ndarray, n: int, n_exp: int) -> np.ndarray:
    width = 1 + exp_bits(n_exp)
    if bits.size != n * width:
        raise ProgramError(f"Ce code stream has {bits.size} bits: allowed is {n * width} for "
                           f"{n} fixed-width codes")
    value = bits.reshape(n, width).astype(np.int64) @ (1 << np.arange(width - 1, -1, -1))
    offset = value & ((1 << exp_bits(n_exp)) - 1)
    if np.any(offset >= n_exp):
        raise ProgramError(f"Ce code stream holds exponent offset {int(offset.max())}: allowed "
                           f"is below n_exp = {n_exp}")
    return np.where(value >> exp_bits(n_exp), -(offset + 1), offset + 1)


def _decode_huffman(bits: np.ndarray, n: int, lengths: np.ndarray) -> np.ndarray:
    """Canonical Huffman decoding without a loop per symbol: decode a code at every bit position
    (a loop over code lengths), then find the chain 0 -> 0 + len -> ... by pointer doubling."""
    total = bits.size
    if n == 0:
        if total:
            raise ProgramError(f"Ce code stream has {total} bits for 0 codes: allowed is 0")
        return np.zeros(0, np.int64)
    max_len = int(lengths.max(initial=0))
    if max_len == 0:
        raise ProgramError("Ce Huffman table is empty but codes are stored")
    padded = np.concatenate([bits, np.zeros(max_len, np.uint8)]).astype(np.int64)
    window = np.zeros(total, np.int64)
    for k in range(max_len):
        window |= padded[k:k + total] << (max_len - 1 - k)
    codes = canonical_codes(lengths)
    symbol_at = np.full(total, -1, np.int64)
    length_at = np.zeros(total, np.int64)
    for length in range(1, max_len + 1):
        symbols = np.flatnonzero(lengths == length)
        if symbols.size == 0:
            continue
        first = codes[symbols].min()           # canonical: consecutive codes by symbol order
        prefix = window >> (max_len - length)
        hit = (length_at == 0) & (prefix >= first) & (prefix < first + symbols.size)
        symbol_at[hit] = symbols[prefix[hit] - first]
        length_at[hit] = length
    end, bad = total, total + 1
    step = np.empty(total + 2, np.int64)
    step[:total] = np.arange(total) + length_at
    step[:total][(length_at == 0) | (step[:total] > total)] = bad
    step[end], step[bad] = end, bad
    starts, jump = np.zeros(1, np.int64), step
    while starts.size < n:
        starts = np.concatenate([starts, jump[starts]])
        jump = jump[jump]
    starts = starts[:n]
    if starts.max() >= total or step[starts[-1]] != end:
        raise ProgramError(f"Ce Huffman stream of {total} bits does not hold exactly {n} codes")
    return symbol_at[starts]


def decode_ce(streams: CeStreams) -> np.ndarray:
    """The exact int8 codes that ``encode_ce`` was given."""
    shape, n_exp = streams.shape, streams.n_exp
    if len(shape) != 4 or not 1 <= n_exp <= 16 or streams.coding not in CODINGS:
        raise ProgramError(f"Ce streams describe shape {shape}, n_exp {n_exp}, coding "
                           f"'{streams.coding}': allowed is a 4-D shape, n_exp 1..16 and one of "
                           f"{', '.join(CODINGS)}")
    if streams.group_size:
        K, rest = shape[0], shape[1:3]
        groups = -(-K // streams.group_size)
        want = groups * int(np.prod(rest))
        if streams.n_row_bits != want:
            raise ProgramError(f"Ce row index has {streams.n_row_bits} bits: allowed is {want}")
        rows = _read_bits(streams.row_index, want, "row index").astype(bool)
        candidates = _expand_rows(rows.reshape(groups, *rest), streams.group_size, shape)
    else:
        candidates = np.ones(shape, bool)
    n_candidates = int(candidates.sum())
    if streams.n_elem_bits:
        if streams.n_elem_bits != n_candidates:
            raise ProgramError(f"Ce element index has {streams.n_elem_bits} bits: allowed is "
                               f"{n_candidates}")
        nonzero = np.zeros(shape, bool)
        nonzero[candidates] = _read_bits(streams.elem_index, n_candidates, "element index")
    else:
        nonzero = candidates.copy()
    n = int(nonzero.sum())
    if n != streams.n_nonzero:
        raise ProgramError(f"Ce indexes mark {n} non-zeros but the header says "
                           f"{streams.n_nonzero}")
    bits = _read_bits(streams.codes, streams.n_code_bits, "code")
    if streams.coding == "fixed":
        values = _decode_fixed(bits, n, n_exp)
    else:
        lengths = np.asarray(streams.huffman_lengths, np.int64)
        if lengths.size != 2 * n_exp or np.any((lengths < 0) | (lengths >= max(2, lengths.size))):
            raise ProgramError(f"Ce Huffman table {list(lengths)} is invalid: allowed is "
                               f"{2 * n_exp} lengths from 0 to {max(1, 2 * n_exp - 1)}")
        symbols = _decode_huffman(bits, n, lengths)
        values = np.where(symbols & 1, -(symbols // 2 + 1), symbols // 2 + 1)
    codes = np.zeros(shape, np.int8)
    codes[nonzero] = values
    return codes
