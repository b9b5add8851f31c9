"""Cycle simulators and energy accounting, exact against the RTL under the DRAM contract."""
