"""What each architecture provides to the commands: compiler, simulators, golden model, RTL.

The CLI, the cross-check and the demo are written once against this table, so adding an
architecture means adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .config import ArchConfig
from .errors import ConfigError


@dataclass(frozen=True)
class Backend:
    #: (cfg, quantized layers, int8 input) -> Program
    compile: Callable
    #: Program -> SimReport, from the program's own command stream
    simulate_program: Callable
    #: (cfg, layer shapes) -> SimReport, from shapes alone
    simulate_shapes: Callable
    #: Program -> (layers, input) as the program's image holds them
    decode: Callable
    #: (Program, final memory image) -> every layer's output tensor
    read_outputs: Callable


def backend(cfg_or_arch: ArchConfig | str) -> Backend:
    arch = cfg_or_arch if isinstance(cfg_or_arch, str) else cfg_or_arch.arch
    if arch == "lcp":
        from .compiler.lcp.compile import compile_network, decode_network, read_outputs
        from .sim.lcp import simulate_program, simulate_shapes
        return Backend(compile_network, simulate_program, simulate_shapes, decode_network,
                       read_outputs)
    if arch == "smartdeal":
        from .compiler.sd.compile import compile_network, decode_network, read_outputs
        from .sim.smartdeal import simulate_program, simulate_shapes
        return Backend(compile_network, simulate_program, simulate_shapes, decode_network,
                       read_outputs)
    raise ConfigError(f"arch '{arch}' has no compiler back end: allowed is lcp, smartdeal")


def golden_outputs(program) -> list[np.ndarray]:
    """The golden model run on exactly what the program's image holds."""
    from .compiler.golden import run_network

    layers, x = backend(program.manifest["arch"]).decode(program)
    return run_network(layers, x, program.config.acc_width)
