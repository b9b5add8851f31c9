"""The ``tessera`` command line.

Subcommands live in ``tessera.commands``, one module each. A user mistake raises TesseraError,
which is printed as one line (``tessera: error: ...``) with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .config import ARCHS, PRESETS, resolve_config
from .errors import TesseraError

#: Subcommand modules, in the order `tessera --help` lists them.
COMMANDS = ["presets", "generate", "compile", "simulate", "crosscheck", "demo", "zoo", "compress",
            "fpga", "asic", "reproduce", "run", "split", "traffic"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        self.exit(2, f"tessera: error: {message}\n")


def add_config_options(parser: argparse.ArgumentParser, *, arch_required: bool = False) -> None:
    """--arch/--preset/--config/--set: how every command picks its ArchConfig."""
    g = parser.add_argument_group("configuration")
    g.add_argument("--arch", choices=sorted(ARCHS), required=arch_required,
                   help="accelerator architecture")
    g.add_argument("--preset", metavar="NAME",
                   help=f"named configuration ({', '.join(PRESETS)}); default: the arch's test preset")
    g.add_argument("--config", metavar="FILE", help="configuration file (.json or .toml)")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="sets",
                   help="override one field, e.g. --set rows=8 (repeatable); see `tessera presets`")


def config_from_args(args: argparse.Namespace):
    return resolve_config(args.arch, args.preset, args.config, args.sets)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tessera",
        description="Generate accelerators for compressed neural networks, compile models for them, "
                    "and predict their cycles and energy exactly.",
        epilog="Run `tessera COMMAND --help` for the options of each command.")
    parser.add_argument("--version", action="version",
                        version=f"tessera {importlib.import_module('tessera').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"tessera.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TesseraError as exc:
        print(f"tessera: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tessera: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
