"""A Program: what a compiled model is on disk and in memory (docs/program-format.md).

    PROGRAM_DIR/
      manifest.json   layers, tensors, regions, quantization, the configuration and its hash
      image.bin       the DRAM image the accelerator starts from (commands, weights, inputs)
      image.hex       the same image for $readmemh, one dram_width-byte word per line
      commands.txt    a disassembly of the command stream (for people; never read back)

A program records the configuration it was compiled for; it refuses to run on another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tessera.config import ArchConfig, config_from_dict
from tessera.errors import ConfigError, ProgramError

FORMAT = "tessera-program"
VERSION = 1


@dataclass
class Program:
    manifest: dict[str, Any]
    image: np.ndarray  # uint8

    @property
    def config(self) -> ArchConfig:
        return config_from_dict(self.manifest["config"], source="program manifest")

    def check_config(self, cfg: ArchConfig) -> None:
        """Refuse a configuration other than the one the program was compiled for."""
        if cfg.config_hash != self.manifest["config_hash"] or cfg.arch != self.manifest["arch"]:
            raise ProgramError(
                f"program was compiled for {self.manifest['arch']} configuration "
                f"{self.manifest['config_hash']}, not for this {cfg.arch} configuration "
                f"{cfg.config_hash}: recompile it, or use --config with the program's config")

    def region(self, name: str) -> np.ndarray:
        r = self.manifest["regions"][name]
        return self.image[r["offset"]:r["offset"] + r["size"]]

    def save(self, directory: str | Path, disassembly: str | None = None) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "manifest.json").write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
        self.image.tofile(d / "image.bin")
        word = self.config.dram_width
        words = self.image.reshape(-1, word)[:, ::-1]  # little-endian words, MSB first in hex
        (d / "image.hex").write_text("".join(w.tobytes().hex() + "\n" for w in words))
        if disassembly is not None:
            (d / "commands.txt").write_text(disassembly)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "Program":
        d = Path(directory)
        try:
            manifest = json.loads((d / "manifest.json").read_text())
            image = np.fromfile(d / "image.bin", dtype=np.uint8)
        except FileNotFoundError as exc:
            raise ProgramError(f"'{d}' is not a program directory: {Path(exc.filename).name} "
                               "is missing") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProgramError(f"'{d / 'manifest.json'}' is corrupt: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ProgramError(f"'{d / 'manifest.json'}' is not a Tessera program manifest")
        if manifest.get("version") != VERSION:
            raise ProgramError(f"program format version {manifest.get('version')!r} is not "
                               f"supported: allowed is {VERSION}")
        for key in ("arch", "config", "config_hash", "image_size", "regions", "layers"):
            if key not in manifest:
                raise ProgramError(f"'{d / 'manifest.json'}' lacks the field '{key}'")
        if image.size != manifest["image_size"]:
            raise ProgramError(f"'{d / 'image.bin'}' holds {image.size} bytes but the manifest "
                               f"says {manifest['image_size']}: the program is corrupt")
        prog = cls(manifest, image)
        try:
            cfg = prog.config
        except ConfigError as exc:
            raise ProgramError(f"program manifest has an invalid configuration: {exc}") from None
        if cfg.config_hash != manifest["config_hash"]:
            raise ProgramError("program manifest's config_hash does not match its configuration: "
                               "the program is corrupt")
        return prog


def new_manifest(cfg: ArchConfig, **fields: Any) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "arch": cfg.arch, "config": cfg.to_dict(),
            "config_hash": cfg.config_hash, **fields}


def decode_command_stream(blob, dtype: np.dtype, ops: type, header_op: int,
                          last_flag: int) -> np.ndarray:
    """Steps of ``dtype`` from raw bytes, checking the framing every architecture shares: whole
    steps, a HEADER first, one LAST step at the end, only known ops."""
    raw = np.frombuffer(bytes(blob), dtype=np.uint8)
    if raw.size % dtype.itemsize:
        raise ProgramError(f"command stream is {raw.size} bytes: allowed is a multiple of "
                           f"{dtype.itemsize}")
    steps = raw.view(dtype)
    if steps.size == 0 or steps["op"][0] != header_op:
        raise ProgramError("command stream does not start with a HEADER step")
    last = np.flatnonzero(steps["flags"] & last_flag)
    if last.size != 1 or last[0] != steps.size - 1:
        raise ProgramError("command stream must have exactly one LAST step, at its end")
    known = np.isin(steps["op"], [int(o) for o in ops])
    if not known.all():
        raise ProgramError(f"command stream holds unknown op {int(steps['op'][~known][0])}: "
                           f"allowed ops are {', '.join(f'{o.value} ({o.name})' for o in ops)}")
    return steps
