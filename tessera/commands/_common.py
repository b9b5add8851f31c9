"""Helpers shared by several subcommands."""

from __future__ import annotations

import json
from pathlib import Path

from ..compiler.layers import LayerShape, parse_spec


def layer_shapes(specs: list[str]) -> list[LayerShape]:
    """Parse repeated --layer SPECs into a sequential network, naming layers by position."""
    return [parse_spec(spec, name=f"{spec.split(':', 1)[0].strip().lower()}{i}")
            for i, spec in enumerate(specs)]


def write_json(path: str | Path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
