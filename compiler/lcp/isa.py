"""The LCP controller's command format: one 64-byte *step* descriptor per step.

A step runs its loads (DRAM -> weight shadow registers, activation buffer, post-processing
parameters, then the next step's descriptor) concurrently with at most one execution (COMPUTE one
weight block over a tile, or STORE a finished tile through the post-processing unit). The step ends
when both are done; that barrier is what makes double buffering safe and timing additive
(docs/lcp.md). The NumPy dtype below is the single definition: the compiler writes it, the
simulators read it, and the RTL derives its field offsets from it.
"""

from __future__ import annotations

import enum

import numpy as np

STEP_BYTES = 64

STEP_DTYPE = np.dtype([
    ("op", "u1"),                # Op
    ("flags", "u1"),             # Flag bits
    ("stride", "u1"),            # COMPUTE: convolution stride
    ("planes", "u1"),            # STORE: output planes (groups of `rows` channels) to write
    ("th", "<u2"),               # tile height in conv output pixels (before pooling)
    ("tw", "<u2"),               # tile width
    ("oy_off", "<i2"),           # COMPUTE: input row of output row 0, relative to the ABUF region
    ("ox_off", "<i2"),           # COMPUTE: input column of output column 0, relative
    ("bh", "<u2"),               # COMPUTE: rows of the valid input region held in the ABUF
    ("bw", "<u2"),               # COMPUTE: columns of that region (its pitch, in entries)
    ("abuf_start", "<i4"),       # COMPUTE: ABUF address of input (oy_off, ox_off), may be < 0
    ("act_abuf_base", "<u2"),    # LOAD_ACT: first ABUF entry written
    ("act_rows", "<u2"),         # LOAD_ACT: read requests (input rows)
    ("act_row_beats", "<u4"),    # LOAD_ACT: beats per request
    ("act_addr", "<u4"),         # LOAD_ACT: DRAM byte address of the first request
    ("act_row_stride", "<u4"),   # LOAD_ACT: bytes between requests
    ("w_addr", "<u4"),           # LOAD_W: DRAM address of a rows x cols weight block
    ("param_addr", "<u4"),       # LOAD_PARAM: DRAM address of cols x 8 bytes of channel params
    ("out_addr", "<u4"),         # STORE: DRAM address of plane 0, output pixel (0, 0)
    ("out_row_stride", "<u4"),   # STORE: bytes between output rows
    ("out_plane_stride", "<u4"), # STORE: bytes between planes
    ("config_id", "<u4"),        # HEADER: the configuration hash the program was compiled for
    ("row_step", "<u4"),         # COMPUTE: ABUF address step per output row (stride * bw)
])
assert STEP_DTYPE.itemsize == STEP_BYTES


class Op(enum.IntEnum):
    NOP = 0       # loads only
    COMPUTE = 1   # stream one weight block over a tile, accumulate
    STORE = 2     # post-process a tile and write it to DRAM
    HEADER = 3    # first step: loads only, and the configuration check


class Flag(enum.IntFlag):
    LOAD_W = 1
    LOAD_ACT = 2
    LOAD_PARAM = 4
    ACC_CLEAR = 8     # COMPUTE: write instead of accumulate (first block of a tile)
    RELU = 16         # STORE
    POOL = 32         # STORE: 2x2 max pooling
    LAST = 128        # no step follows: the program ends when this one is done


#: Bytes per output channel of the post-processing parameters: bias i32, mult u16, shift u8, pad.
PARAM_BYTES = 8


def decode_steps(blob: bytes | np.ndarray) -> np.ndarray:
    """Steps from raw bytes, checking the framing (a HEADER first, LAST only at the end)."""
    from ..program import decode_command_stream

    return decode_command_stream(blob, STEP_DTYPE, Op, int(Op.HEADER), int(Flag.LAST))


def disassemble(steps: np.ndarray) -> str:
    """One readable line per step, for `tessera compile` output and debugging."""
    lines = []
    for i, s in enumerate(steps):
        op, fl = Op(int(s["op"])), Flag(int(s["flags"]))
        parts = [f"{i:6d} {op.name:<7}"]
        if op == Op.COMPUTE:
            parts.append(f"tile {s['th']}x{s['tw']} st{s['stride']} in[{s['oy_off']},{s['ox_off']}]"
                         f" of {s['bh']}x{s['bw']} @abuf {s['abuf_start']}"
                         + (" clear" if fl & Flag.ACC_CLEAR else ""))
        elif op == Op.STORE:
            parts.append(f"tile {s['th']}x{s['tw']} planes {s['planes']} -> 0x{s['out_addr']:x}"
                         + (" relu" if fl & Flag.RELU else "") + (" pool" if fl & Flag.POOL else ""))
        elif op == Op.HEADER:
            parts.append(f"config {s['config_id']:08x}")
        if fl & Flag.LOAD_W:
            parts.append(f"| W 0x{s['w_addr']:x}")
        if fl & Flag.LOAD_ACT:
            parts.append(f"| ACT 0x{s['act_addr']:x} {s['act_rows']}x{s['act_row_beats']}b "
                         f"-> abuf {s['act_abuf_base']}")
        if fl & Flag.LOAD_PARAM:
            parts.append(f"| PARAM 0x{s['param_addr']:x}")
        if fl & Flag.LAST:
            parts.append("| LAST")
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"
