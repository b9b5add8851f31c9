"""`tessera presets`: list the named configurations, or show one resolved configuration."""

from __future__ import annotations

from ..console import make_console
from rich.table import Table

from ..cli import add_config_options, config_from_args
from ..config import ARCHS, PRESETS


def register(sub) -> None:
    p = sub.add_parser("presets", help="list presets, or print a resolved configuration",
                       description="Without options, list every preset. With --arch/--preset/"
                                   "--config/--set, print that configuration (its fields, their "
                                   "allowed values and its hash) or write it with --format.")
    add_config_options(p)
    p.add_argument("--format", choices=["table", "json", "toml"], default="table",
                   help="output format for a resolved configuration (default: table)")
    p.set_defaults(func=run)


def run(args) -> int:
    console = make_console()
    if not (args.arch or args.preset or args.config or args.sets):
        t = Table(title="Tessera presets")
        for col in ("preset", "arch", "hash", "description"):
            t.add_column(col)
        for p in PRESETS.values():
            t.add_row(p.name, p.arch, p.build().config_hash, p.description)
        console.print(t)
        return 0
    cfg = config_from_args(args)
    if args.format == "json":
        print(cfg.to_json(), end="")
    elif args.format == "toml":
        print(cfg.to_toml(), end="")
    else:
        t = Table(title=f"{cfg.arch} configuration {cfg.config_hash}")
        for col in ("field", "value", "allowed", "meaning"):
            t.add_column(col)
        for name, allowed, _default, help_text in ARCHS[cfg.arch].field_help():
            t.add_row(name, str(getattr(cfg, name)), allowed, help_text)
        console.print(t)
    return 0
