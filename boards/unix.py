"""Simulated board for the MicroPython unix port and CPython: fake pins, plausible sensors."""

PINS = set(range(0, 40)) | {"LED"}
OUTPUT_PINS = PINS
ADC_PINS = set(range(32, 40))

ACTUATORS = {
    "led": {"type": "digital", "pin": "LED", "active_low": False},
    "fan": {"type": "pwm", "pin": 5, "freq": 1000, "min": 0, "max": 100},
}

HAS_WIFI = False
# The host's clock is kept by NTP already.
CLOCK_TRUSTED = True

# Random walk state: readings drift a little from cycle to cycle, like a room would.
_state = [21.5, 45.0, 3.70]


def read_sensors():
    # Simulated readings, not cryptography: the plain PRNG is what is wanted.
    import random

    t, h, b = _state
    t = min(30.0, max(15.0, t + random.uniform(-0.3, 0.3)))  # noqa: S311
    h = min(70.0, max(30.0, h + random.uniform(-1.0, 1.0)))  # noqa: S311
    b = min(4.2, max(3.3, b - random.uniform(0.0, 0.005)))  # noqa: S311
    _state[0], _state[1], _state[2] = t, h, b
    return [
        ("temperature", round(t, 1), "Cel"),
        ("humidity", round(h, 1), "%RH"),
        ("batteryVoltage", round(b, 2), "V"),
    ]


def signal(outcome, led=None):
    """The simulated board has no LED to spare: it says which pattern a real board blinks."""
    from kpnthings import status_led

    n = status_led.FLASHES.get(outcome)
    if n:
        print("[led] %d flashes: %s" % (n, outcome))


def sensor_machine(entries):
    """The sensors config.json lists, simulated behind their pins (tests/fakes/simbus.py), so
    the real drivers run on the host down to the bus and pin level."""
    import simbus  # type: ignore  # on MICROPYPATH with the other fakes (tests/fakes)

    from kpnthings import compat

    return simbus.world_for(entries, compat).machine()
