"""The top-level accelerator core of each architecture, by configuration."""

from __future__ import annotations

from tessera.config import ArchConfig
from tessera.errors import ConfigError


def core_for(cfg: ArchConfig):
    """(component, Verilog module name) of the accelerator core ``cfg`` describes."""
    if cfg.arch == "lcp":
        from .lcp.core import LcpCore
        return LcpCore(cfg), "lcp_core"
    raise ConfigError(f"arch '{cfg.arch}' has no RTL core: allowed is lcp")
