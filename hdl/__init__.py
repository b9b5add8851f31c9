"""Amaranth hardware: every accelerator block, parameterized by an ArchConfig."""
