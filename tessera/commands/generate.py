"""`tessera generate`: the Verilog of an accelerator (or one of its blocks) and its config."""

from __future__ import annotations

import json
from pathlib import Path

from ..console import make_console

from ..cli import add_config_options, config_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "generate", help="write the Verilog of an accelerator and its configuration",
        description="Generate deterministic Verilog for the configured accelerator (or one of its "
                    "blocks with --block) into DIR, with config.json and ports.json (every port "
                    "with its Verilog name, direction and width). The core exposes the config "
                    "hash in its read-only config_id port.")
    add_config_options(p)
    p.add_argument("-o", "--output", metavar="DIR", default="build/generate",
                   help="output directory (default: build/generate)")
    p.add_argument("--block", default="core",
                   help="block to generate alone, e.g. core, array, cell, adder_tree, ppu, "
                        "load_unit, compute_unit, store_unit (default: core)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..hdl.top import verilog_for

    cfg = config_from_args(args)
    console = make_console(stderr=True)
    with console.status(f"generating {cfg.arch} {args.block} Verilog ({cfg.config_hash})"):
        name, text, component = verilog_for(cfg, args.block)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.v").write_text(text)
    (out / "config.json").write_text(cfg.to_json())
    (out / "ports.json").write_text(json.dumps(component.metadata.as_json(), indent=2,
                                               sort_keys=True) + "\n")
    console.print(f"wrote {out / (name + '.v')} ({len(text.splitlines()):,} lines), "
                  f"config.json and ports.json; config hash {cfg.config_hash}")
    return 0
