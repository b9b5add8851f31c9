"""ASIC flow: OpenROAD-flow-scripts design directories and yosys-based estimates."""
