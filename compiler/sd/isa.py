"""The SmartDeal accelerator's command formats (docs/smartdeal.md).

- A 128-byte *step* descriptor, run like the LCP's: its loads (input rows into the global buffer,
  a channel group's pass words, bases and parameters, then the next step) overlap one COMPUTE that
  runs every tile of a band of output rows for one group of dim_m output channels.
- A *pass word* in the weight buffer: the pass header, the index selector's choice for each line
  (which kernel row and input lane it runs), and the Ce codes of every (slice, line, tap).
- A *basis word*: the S x S int8 basis of every slice for one channel group.

NumPy dtypes and bit layouts here are the single definition; the RTL derives its offsets from them.
"""

from __future__ import annotations

import enum

import numpy as np

STEP_BYTES = 128

STEP_DTYPE = np.dtype([
    ("op", "u1"),               # Op
    ("flags", "u1"),            # Flag
    ("mode", "u1"),             # Mode of the COMPUTE
    ("stride", "u1"),           # output stride: rows step and column decimation
    ("taps", "u1"),             # steps per line per pass (kernel width, or S for pointwise)
    ("banks", "u1"),            # Bank bits: which bank of each buffer the COMPUTE reads
    ("raw", "u1"),              # 1: int8 weights (two pass words per pass), 0: Ce codes
    ("n_ch", "u1"),             # output channels of the group (slices in use; per cluster)
    ("ny", "<u2"),              # output rows in the band
    ("nseg", "<u2"),            # row segments of dim_f stride-1 columns
    ("passes", "<u2"),          # passes per tile
    ("gb_rows", "<u2"),         # stored input rows per plane held in the GB band
    ("gb_words", "<u2"),        # GB words per stored row
    ("out_w", "<u2"),           # valid output columns
    ("lane0", "<u2"),           # lane of the group's first output channel in its plane
    ("gb_dst", "<u2"),          # LOAD_GB: first GB word written (in the load bank)
    ("out_addr", "<u4"),        # DRAM address of output (row y0, column 0, first channel)
    ("out_row", "<u4"),         # bytes between output rows
    ("out_plane", "<u4"),       # bytes between output planes
    ("gb_addr", "<u4"),         # LOAD_GB: DRAM address of plane 0 of the band
    ("gb_beats", "<u4"),        # LOAD_GB: beats per plane
    ("gb_stride", "<u4"),       # LOAD_GB: bytes between planes
    ("gb_planes", "<u2"),       # LOAD_GB: planes (read requests)
    ("wb_words", "<u2"),        # LOAD_WB: pass words
    ("wb_addr", "<u4"),         # LOAD_WB: DRAM address
    ("bb_addr", "<u4"),         # LOAD_BB: DRAM address
    ("bb_words", "<u2"),        # LOAD_BB: basis words
    ("load_banks", "u1"),       # Bank bits: which bank each load writes
    ("pad0", "u1"),
    ("param_addr", "<u4"),      # LOAD_PARAM: DRAM address of n_ch x 8 bytes
    ("config_id", "<u4"),       # HEADER: configuration hash
    ("y0", "<u2"),              # COMPUTE: first output row of the band (for tools; unused by RTL)
    ("mg", "<u2"),              # COMPUTE: output-channel group (for tools; unused by RTL)
    ("out_addr1", "<u4"),       # CLUSTER: DRAM address of the second cluster's first channel
    ("lane1", "<u2"),           # CLUSTER: its lane in its plane
    ("param_words", "u1"),      # LOAD_PARAM: dim_m-channel parameter words (2 for CLUSTER)
    ("chunk", "<u2"),           # COMPUTE: chunk of the group's passes (for tools; unused by RTL)
    ("tx0", "<u2"),             # COMPUTE: first row segment (a one-tile COMPUTE of a band)
    ("ty0", "<u2"),             # COMPUTE: first output row within the GB band
    ("reserved", "V39"),
])
assert STEP_DTYPE.itemsize == STEP_BYTES


class Op(enum.IntEnum):
    NOP = 0
    COMPUTE = 1
    HEADER = 3


class Flag(enum.IntFlag):
    LOAD_GB = 1
    LOAD_WB = 2
    LOAD_BB = 4
    LOAD_PARAM = 8
    RELU = 16
    HOLD = 32       # COMPUTE: keep the sums in the MACs (no drain): the next chunk adds to them
    LAST = 128


class Mode(enum.IntEnum):
    CONV = 0        # lines run (input channel, kernel row) pairs; activations shift along MACs
    POINTWISE = 1   # lines run rows of S input channels at the same pixels (1x1 conv, FC)
    DEPTHWISE = 2   # slice m runs channel m, lines run its kernel rows
    CLUSTER = 3     # pointwise with the MACs in two clusters, one per rebuild engine, each on
                    # its own dim_m output channels (FC, squeeze-excite; two words per pass)


class Bank(enum.IntFlag):
    GB = 1
    WB = 2      # the weight, basis and parameter banks switch together (one channel group)


PARAM_BYTES = 8

# -- pass words -------------------------------------------------------------------------------
HEADER_BITS = 32          # plane u12 | switch u1 | bb_load u1 | pad u2 | bb_word u16
SEL_BITS = 16             # per line: valid u1 | row u3 | lane u12
CODE_BITS = 4             # per (slice, line, tap): sign u1 | exponent index u3


def pass_word_bits(dim_m: int, dim_c: int, S: int, beat_bytes: int) -> int:
    """Header, line selections and codes, padded to whole DRAM beats."""
    bits = HEADER_BITS + dim_c * SEL_BITS + dim_m * dim_c * S * CODE_BITS
    unit = 8 * beat_bytes
    return -(-bits // unit) * unit


def basis_word_bits(dim_m: int, S: int, beat_bytes: int) -> int:
    unit = 8 * beat_bytes
    return -(-(dim_m * S * S * 8) // unit) * unit


def pack_header(plane, switch, bb_load, bb_word) -> np.ndarray:
    plane, switch, bb_load, bb_word = (np.asarray(a, np.uint64) for a in
                                       (plane, switch, bb_load, bb_word))
    return plane | (switch << 12) | (bb_load << 13) | (bb_word << 16)


def pack_sel(valid, row, lane) -> np.ndarray:
    valid, row, lane = (np.asarray(a, np.uint64) for a in (valid, row, lane))
    return valid | (row << 1) | (lane << 4)


def encode_code(ce_codes: np.ndarray) -> np.ndarray:
    """4-bit hardware codes from compiler codes (+-k -> sign | k-1); zeros are not encodable."""
    c = np.asarray(ce_codes, np.int64)
    return (np.where(c < 0, 8, 0) | (np.abs(c) - 1)).astype(np.uint8)


def decode_code(nibbles: np.ndarray) -> np.ndarray:
    n = np.asarray(nibbles, np.int64)
    return np.where(n & 8, -1, 1) * ((n & 7) + 1)


def pack_bits(fields: list[tuple[np.ndarray, int]], total_bits: int) -> np.ndarray:
    """Pack (values (..., n), width) fields LSB-first into little-endian bytes of total_bits."""
    lead = np.asarray(fields[0][0]).shape[:-1]
    parts = []
    for values, width in fields:
        v = np.asarray(values, np.uint64)
        bits = (v[..., None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)
        parts.append(bits.reshape(*lead, -1).astype(np.uint8))
    used = sum(p.shape[-1] for p in parts)
    assert used <= total_bits, (used, total_bits)
    parts.append(np.zeros((*lead, total_bits - used), np.uint8))
    return np.packbits(np.concatenate(parts, axis=-1), axis=-1, bitorder="little")


def unpack_field(words: np.ndarray, offset: int, width: int, count: int) -> np.ndarray:
    """(..., count) values of ``width`` bits starting at bit ``offset`` (LSB-first)."""
    bits = np.unpackbits(words, axis=-1, bitorder="little")
    sel = bits[..., offset:offset + width * count].reshape(*bits.shape[:-1], count, width)
    return (sel.astype(np.uint64) << np.arange(width, dtype=np.uint64)).sum(axis=-1)


def decode_steps(blob: bytes | np.ndarray) -> np.ndarray:
    """Steps from raw bytes, checking the framing (a HEADER first, LAST only at the end)."""
    from ..program import decode_command_stream

    return decode_command_stream(blob, STEP_DTYPE, Op, int(Op.HEADER), int(Flag.LAST))


def disassemble(steps: np.ndarray) -> str:
    lines = []
    for i, s in enumerate(steps):
        op, fl = Op(int(s["op"])), Flag(int(s["flags"]))
        parts = [f"{i:6d} {op.name:<7}"]
        if op == Op.COMPUTE:
            parts.append(f"{Mode(int(s['mode'])).name.lower()} group {s['mg']} rows {s['y0']}+"
                         f"{s['ny']} x {s['nseg']} seg, "
                         f"{s['passes']} passes/tile, taps {s['taps']}, stride {s['stride']}"
                         + (" raw" if s["raw"] else "") + (" relu" if fl & Flag.RELU else "")
                         + (f" chunk {s['chunk']} hold" if fl & Flag.HOLD else
                            f" chunk {s['chunk']}" if s["chunk"] else "")
                         + f" -> 0x{s['out_addr']:x}")
        elif op == Op.HEADER:
            parts.append(f"config {s['config_id']:08x}")
        if fl & Flag.LOAD_GB:
            parts.append(f"| GB 0x{s['gb_addr']:x} {s['gb_planes']}x{s['gb_beats']}b")
        if fl & Flag.LOAD_WB:
            parts.append(f"| WB 0x{s['wb_addr']:x} {s['wb_words']}w")
        if fl & Flag.LOAD_BB:
            parts.append(f"| BB 0x{s['bb_addr']:x} {s['bb_words']}w")
        if fl & Flag.LOAD_PARAM:
            parts.append(f"| PARAM 0x{s['param_addr']:x} {s['param_words']}w")
        if fl & Flag.LAST:
            parts.append("| LAST")
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"
