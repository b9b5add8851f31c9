"""The board-side half of the PYNQ flow: register map, register protocol and the pynq driver.

Everything in this package runs on the board as well as here, so it needs only the Python
standard library and NumPy (PYNQ images for the PYNQ-Z1 ship Python 3.10, older than Tessera
needs): ``tessera fpga`` copies the package next to the bitstream as ``tessera_pynq``.
"""
