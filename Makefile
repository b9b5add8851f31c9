# Tessera: `make demo` runs the main job, `make test` runs every test tier this machine can run.
# Both bootstrap everything they need: system tools (apt, when run as root), a virtual
# environment in .venv, and the pinned Python dependencies.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: all bootstrap system-tools demo test test-unit test-rtl bench bench-asic clean

all: test

system-tools:
	@scripts/ensure-system-tools.sh

$(STAMP): pyproject.toml scripts/ensure-system-tools.sh
	@scripts/ensure-system-tools.sh
	@echo "== creating $(VENV) and installing tessera with its test dependencies"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

bootstrap: $(STAMP)

demo: $(STAMP)
	AMARANTH_USE_YOSYS=builtin $(BIN)/tessera demo

test: $(STAMP)
	AMARANTH_USE_YOSYS=builtin $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup

test-unit: $(STAMP)
	AMARANTH_USE_YOSYS=builtin $(BIN)/python -m pytest -n $(JOBS) -m "not rtl and not synth"

test-rtl: $(STAMP)
	AMARANTH_USE_YOSYS=builtin $(BIN)/python -m pytest -n $(JOBS) -m rtl

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sim.py
	$(BIN)/python benchmarks/bench_systolic.py
	$(BIN)/python benchmarks/bench_smartdeal.py
	$(BIN)/python benchmarks/bench_sd_vs_lcp.py

bench-asic: $(STAMP)
	AMARANTH_USE_YOSYS=builtin $(BIN)/python benchmarks/bench_asic.py
	AMARANTH_USE_YOSYS=builtin $(BIN)/python benchmarks/bench_asic.py --preset smartdeal-paper

clean:
	rm -rf build sim_build .pytest_cache
