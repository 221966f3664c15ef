# ruff: noqa: F821 - metadata() and package() are provided by the manifest loader (manifestfile.py)
# Freezes the kpnthings library into a custom MicroPython firmware build (micropython-lib style).
#
# From a board manifest of your own, after the port's default manifest:
#     include("$(PORT_DIR)/boards/manifest.py")
#     include("/path/to/kpnthings-micropython/manifest.py")
# then build, e.g. for ESP32:
#     make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/your_manifest.py
# docs/boards/esp32.md and docs/boards/pico_w.md give the full steps. The version below must
# match lib/kpnthings/__init__.py and pyproject.toml (tests/host/test_package.py checks it).
metadata(
    description="Connect MicroPython boards to KPN Things: SenML over HTTPS, signed by token.",
    version="0.1.0",
)

package("kpnthings", base_path="lib")
