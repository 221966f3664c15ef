"""ESP32 pin rules for the config checks: which pins cannot do which job, and why.

Read at boot only (kpnthings.wiring loads this module for the config check and drops it), and
by the host's check (kpnthings_tools.config_check). The texts live here rather than in
boards/esp32.py because the board module stays in the heap for good: there they would hold
about 800 B of it on a 32-bit port. What each sensor type does with its pin is
kpnthings.sensors.schema's to say (pin_problem); this file only knows the chip. Sources: ESP32
datasheet, sections 2.2 (pin list) and 2.4 (strapping pins); ESP32-WROVER-E datasheet (pin list).
"""

# No output driver and no pull resistors: analog inputs and plain digital inputs only.
INPUT_ONLY = NO_PULL = set(range(34, 40))

# Pins no sensor or actuator may use; the check quotes the reason.
AVOID = {
    1: "UART0 TX, where the REPL and the boot log go out",
    3: "UART0 RX, where the REPL (and so mpremote and deploy) reads",
}
AVOID.update((pin, "GPIO6-11 drive the SPI flash") for pin in range(6, 12))

# Strapping pins, read once at reset: pin -> (the pull that stops the boot, why).
STRAPPING = {
    0: ("down", "strapping pin: held low at reset, the chip waits in its serial bootloader"),
    12: ("up", "MTDI strapping: pulled high selects 1.8 V flash, the board does not boot"),
}

# Pins that work on some modules only. Nothing at boot can tell the module, so these are
# warnings on the host, never refusals (docs/boards/esp32.md).
WARN = {
    16: "on WROVER modules it is the PSRAM's chip select, not brought out (free on WROOM)",
    17: "on WROVER modules it is the PSRAM's clock, not brought out (free on WROOM)",
}
