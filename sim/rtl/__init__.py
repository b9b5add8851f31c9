"""Running generated Verilog under cocotb: the DRAM model, the bench, and the build/run driver."""
