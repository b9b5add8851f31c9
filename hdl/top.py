"""The generatable blocks of each architecture, by configuration."""

from __future__ import annotations

from typing import Callable

from tessera.config import ArchConfig
from tessera.errors import ConfigError


def blocks_for(cfg: ArchConfig) -> dict[str, Callable[[], object]]:
    """Block name -> a factory of that Amaranth component; "core" is the whole accelerator."""
    if cfg.arch == "lcp":
        from amaranth.utils import ceil_log2

        from .lcp.array import PRODUCT_BITS, AdderTree, Cell, LcpArray
        from tessera.compiler.lcp.isa import PARAM_BYTES, STEP_BYTES

        from .dma import ReadDma
        from .lcp.core import ComputeUnit, LcpCore, StoreUnit
        from .lcp.ppu import PostProcessor
        lat = 1 + ceil_log2(cfg.rows)
        return {
            "core": lambda: LcpCore(cfg),
            "array": lambda: LcpArray(cfg),
            "cell": Cell,
            "adder_tree": lambda: AdderTree(cfg.rows, PRODUCT_BITS),
            "ppu": lambda: PostProcessor(cfg.rows, cfg.acc_width),
            "load_unit": lambda: ReadDma(cfg.dram_width, [
                ("w", cfg.cols), ("act", cfg.rows), ("param", cfg.cols * PARAM_BYTES),
                ("step", STEP_BYTES)]),
            "compute_unit": lambda: ComputeUnit(cfg, lat, PRODUCT_BITS + ceil_log2(cfg.rows)),
            "store_unit": lambda: StoreUnit(cfg),
        }
    if cfg.arch == "smartdeal":
        from .sd.core import IndexSelector, SdCore
        from .sd.line import PeLine, RebuildEngines
        from .sd.mac import BoothMac
        return {
            "core": lambda: SdCore(cfg),
            "index_selector": lambda: IndexSelector(cfg),
            "pe_line": lambda: PeLine(cfg),
            "rebuild_engines": lambda: RebuildEngines(cfg),
            "mac": lambda: BoothMac(cfg.rebuilt_bits, cfg.acc_width),
        }
    raise ConfigError(f"arch '{cfg.arch}' has no RTL: allowed is lcp, smartdeal")


def module_name(cfg: ArchConfig, block: str) -> str:
    return f"{cfg.arch}_{block}"


def core_for(cfg: ArchConfig):
    """(component, Verilog module name) of the accelerator core ``cfg`` describes."""
    return blocks_for(cfg)["core"](), module_name(cfg, "core")


def verilog_for(cfg: ArchConfig, block: str = "core") -> tuple[str, str, object]:
    """(module name, deterministic Verilog text, component) of one block."""
    from amaranth.back import verilog

    blocks = blocks_for(cfg)
    if block not in blocks:
        raise ConfigError(f"--block '{block}' is unknown for arch '{cfg.arch}': allowed is one of "
                          f"{', '.join(blocks)}")
    component = blocks[block]()
    name = module_name(cfg, block)
    text = verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)
    return name, text, component
