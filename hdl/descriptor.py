"""Command descriptors as Amaranth layouts, derived from the compiler's NumPy dtypes."""

import numpy as np
from amaranth import signed, unsigned
from amaranth.lib import data

__all__ = ["struct_layout"]


def struct_layout(dtype: np.dtype) -> data.StructLayout:
    """A StructLayout whose fields sit at the dtype's byte offsets (little-endian)."""
    fields = {}
    for name in dtype.names:
        dt = dtype.fields[name][0]
        fields[name] = (signed if dt.kind == "i" else unsigned)(8 * dt.itemsize)
    layout = data.StructLayout(fields)
    for name in dtype.names:
        assert layout[name].offset == 8 * dtype.fields[name][1], name
    return layout
