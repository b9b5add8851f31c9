"""Consoles for tables and progress: full width on a terminal, 132 columns in logs and pipes."""

from __future__ import annotations

import sys

from rich.console import Console

LOG_WIDTH = 132


def make_console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else LOG_WIDTH)
