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
    #: (cfg, layer shapes) -> SimReport, from shapes alone
    simulate_shapes: Callable
    #: (cfg, SCALE-Sim topology layers) -> SimReport
    simulate_topology: Callable
    #: (cfg, quantized layers, int8 input) -> Program; None for a simulator-only baseline
    compile: Callable | None = None
    #: Program -> SimReport, from the program's own command stream
    simulate_program: Callable | None = None
    #: Program -> (layers, input) as the program's image holds them
    decode: Callable | None = None
    #: (Program, final memory image) -> every layer's output tensor
    read_outputs: Callable | None = None


def _via_shapes(simulate_shapes):
    def simulate_topology(cfg, layers):
        from .compiler.layers import topology_shapes
        return simulate_shapes(cfg, topology_shapes(layers))
    return simulate_topology


def backend(cfg_or_arch: ArchConfig | str, need_compiler: bool = False) -> Backend:
    """The architecture's entries; ``need_compiler`` refuses a simulator-only baseline."""
    arch = cfg_or_arch if isinstance(cfg_or_arch, str) else cfg_or_arch.arch
    if arch == "systolic":
        if need_compiler:
            raise ConfigError("arch 'systolic' is a simulator-only baseline (SCALE-Sim's model): "
                              "it has no compiler or RTL; allowed here are lcp, smartdeal")
        from .compiler.topology import from_layer_shape
        from .sim.systolic import simulate_topology
        return Backend(lambda cfg, shapes: simulate_topology(
            cfg, [from_layer_shape(s) for s in shapes]), simulate_topology)
    if arch == "lcp":
        from .compiler.lcp.compile import compile_network, decode_network, read_outputs
        from .sim.lcp import simulate_program, simulate_shapes
        return Backend(simulate_shapes, _via_shapes(simulate_shapes), compile_network,
                       simulate_program, decode_network, read_outputs)
    if arch == "smartdeal":
        from .compiler.sd.compile import compile_network, decode_network, read_outputs
        from .sim.smartdeal import simulate_program, simulate_shapes
        return Backend(simulate_shapes, _via_shapes(simulate_shapes), compile_network,
                       simulate_program, decode_network, read_outputs)
    raise ConfigError(f"arch '{arch}' has no back end: allowed is lcp, smartdeal, systolic")


def golden_outputs(program) -> list[np.ndarray]:
    """The golden model run on exactly what the program's image holds."""
    from .compiler.golden import run_network

    layers, x = backend(program.manifest["arch"]).decode(program)
    return run_network(layers, x, program.config.acc_width)
