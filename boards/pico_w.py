"""Raspberry Pi Pico W (RP2040 + CYW43): pin map, the "LED" pin, ADC4 temperature sensor."""

# GP23-25 and GP29 belong to the wireless chip on the Pico W; "LED" is the CYW43's LED pin.
PINS = set(range(0, 23)) | {26, 27, 28, "LED"}
OUTPUT_PINS = PINS
ADC_PINS = {26, 27, 28}

ACTUATORS = {"led": {"type": "digital", "pin": "LED", "active_low": False}}

HAS_WIFI = True
WDT_MAX_MS = 8300  # the RP2040's watchdog counter cannot wait longer (kpnthings.watchdog caps it)
# The RP2040 RTC starts at 2021-01-01 at every boot (machine.deepsleep() is a light sleep and a
# reset): only NTP makes the time worth sending, and this board has no rtc_kept().
CLOCK_TRUSTED = False


def read_sensors():
    """The RP2040's internal temperature sensor on ADC channel 4 (RP2040 datasheet 4.9.5)."""
    import machine

    volts = machine.ADC(4).read_u16() * 3.3 / 65535
    return [("mcuTemperature", round(27 - (volts - 0.706) / 0.001721, 1), "Cel")]


def signal(outcome, led=None):
    """A refused or unknown device blinks the config's `led` actuator (kpnthings.status_led),
    the on-board LED unless the config moved it; without one, nothing blinks."""
    from kpnthings import status_led

    status_led.show_on(led, outcome)
