"""FPGA boards: platforms, AXI wrappers, Vivado scripts and host drivers."""
