"""Compiler: layers and models in, Programs (manifest + memory image + command stream) out."""
