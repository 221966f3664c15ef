"""Common ESP32 dev boards (DevKitC, WROOM/WROVER): pin map, on-board LED, MCU temperature."""

# GPIO 6-11 drive the SPI flash and 20, 24, 28-31 do not exist; 34-39 are input only. What each
# pin cannot do, and why (UART0, strapping, no pulls...), is in esp32_pins.py, read at boot only.
PINS = set(range(0, 6)) | set(range(12, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40))
OUTPUT_PINS = PINS - set(range(34, 40))
ADC_PINS = set(range(32, 40))  # ADC1 only: ADC2 cannot be read while Wi-Fi is on

# The blue LED on GPIO2 that most dev boards carry.
ACTUATORS = {"led": {"type": "digital", "pin": 2, "active_low": False}}

HAS_WIFI = True
# The RTC starts at 2000-01-01 after a power cut: only NTP makes the time worth sending, unless
# the RTC kept running through the reset that started this boot (rtc_kept).
CLOCK_TRUSTED = False


def rtc_kept():
    """True when this boot's reset kept the RTC running: a wake-up from deep sleep, the
    watchdog, or machine.reset() (a soft reset to the chip). A power-on or the EN pin restarts
    it at 2000; kpnthings.wiring also checks the time against the build's day."""
    import machine

    return machine.reset_cause() in (
        machine.DEEPSLEEP_RESET,
        machine.WDT_RESET,
        machine.SOFT_RESET,
    )


def pin_rules():
    """The chip's pin rules (esp32_pins.py) for the config check at boot, handed over without
    staying registered: once the check is done they are garbage, so the loop never holds them."""
    import sys

    try:
        package = __import__("boards.esp32_pins")
        rules = package.esp32_pins
        del package.esp32_pins
    except ImportError:  # a flat layout, as host tests put the board files on the path
        rules = __import__("esp32_pins")
    for name in ("boards.esp32_pins", "esp32_pins"):
        sys.modules.pop(name, None)
    return rules


def read_sensors():
    """The MCU's own temperature, the one sensor every ESP32 has; [] where the port lacks it."""
    import esp32

    read = getattr(esp32, "mcu_temperature", None)  # S2, S3, C3, C6: calibrated, in Celsius
    if read is not None:
        return [("mcuTemperature", read(), "Cel")]
    read = getattr(esp32, "raw_temperature", None)  # classic ESP32: Fahrenheit, uncalibrated
    if read is not None:
        # 128 (53.3 C) is the sensor's known invalid answer, whatever the temperature: read
        # again (about 0.1 ms each), and send nothing rather than a false 53.3 C.
        for _ in range(3):
            raw = read()
            if raw != 128:
                return [("mcuTemperature", round((raw - 32) / 1.8, 1), "Cel")]
    return []


def signal(outcome, led=None):
    """A refused or unknown device blinks the config's `led` actuator (kpnthings.status_led),
    the on-board LED unless the config moved it; without one, nothing blinks."""
    from kpnthings import status_led

    status_led.show_on(led, outcome)
