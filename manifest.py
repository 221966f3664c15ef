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
#
# This one freezes every component. For less, require just the components you use instead:
#     add_library("kpnthings", "/path/to/kpnthings-micropython/packages")
#     require("https", library="kpnthings")  # and core, which it requires
#     require("sensors-dht", library="kpnthings")  # and sensors-core
# (MicroPython 1.23 or later). Each packages/<component>/manifest.py freezes its component and
# requires the ones it needs, as micropython-lib's aioble-<part> manifests do; they are written
# from the table in tools/kpnthings_tools/components.py.
metadata(
    description="Connect MicroPython boards to KPN Things: SenML over HTTPS, signed by token.",
    version="0.1.0",
)

package("kpnthings", base_path="lib")
