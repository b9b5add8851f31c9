"""Tessera: accelerators for compressed neural networks, generated and predicted from one configuration."""

__version__ = "0.1.0"
