# kpnthings-micropython: every entry point bootstraps .venv from pyproject.toml by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

BOARD  ?= esp32
PORT   ?=
CONFIG ?= device.json
CA     ?=

# Optional runtimes for the heap figures (see README, Benchmarks): 32-bit MicroPython 1.28 unix
# ports built with ../shared/tools/micropython32/build.sh, and the emulated RP2040's folder.
MICROPYTHON32       ?=
MICROPYTHON32_STOCK ?=
RP2EMU              ?=

.PHONY: help test lint pytest demo bench deploy format clean

help:
	@echo "make demo    run the firmware on a simulated board against the local KPN Things emulator"
	@echo "make test    lint, then every test under CPython, MicroPython (.py) and MicroPython (.mpy)"
	@echo "make lint    ruff + type check of lib/, firmware/, boards/ against the ESP32 and rp2 stubs"
	@echo "make bench   benchmarks (heap, flash, wire bytes, CPU) against micropython-senml"
	@echo "             [MICROPYTHON32=... MICROPYTHON32_STOCK=...] [RP2EMU=...] for the 32-bit figures"
	@echo "make deploy  BOARD=esp32|pico_w PORT=/dev/ttyUSB0 CONFIG=device.json [CA=kpn-ca.der] [DRY_RUN=1] [TOOL=ampy] [ROMFS=auto|yes|no]"

# The venv, the host package (editable) and its dev tools; the MicroPython stubs go into
# separate folders because the ESP32 and rp2 stubs define the same modules differently.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --upgrade --target $(VENV)/stubs/esp32 micropython-esp32-stubs
	$(BIN)/pip install --quiet --upgrade --target $(VENV)/stubs/rp2 micropython-rp2-stubs
	touch $@

test: lint pytest

pytest: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check lib firmware boards tools tests bench
	$(BIN)/pyright -p lint/pyright-esp32.json
	$(BIN)/pyright -p lint/pyright-rp2.json

format: $(STAMP)
	$(BIN)/ruff format lib firmware boards tools tests bench
	$(BIN)/ruff check --fix .

# DEMO_CONFIG=examples/sensors.json merges extra keys (a sensors list, say) into the demo config.
demo: $(STAMP)
	$(BIN)/python -m kpnthings_tools.demo $(if $(DEMO_CONFIG),--config $(DEMO_CONFIG))

bench: $(STAMP)
	MICROPYTHON32="$(MICROPYTHON32)" MICROPYTHON32_STOCK="$(MICROPYTHON32_STOCK)" RP2EMU="$(RP2EMU)" \
	  $(BIN)/python -m kpnthings_tools.bench

deploy: $(STAMP)
	$(BIN)/kpnthings deploy --board $(BOARD) --port "$(PORT)" --config $(CONFIG) $(if $(CA),--ca $(CA)) $(if $(DRY_RUN),--dry-run) $(if $(TOOL),--tool $(TOOL)) $(if $(ROMFS),--romfs $(ROMFS))

clean:
	rm -rf build .pytest_cache .hypothesis
