"""Blink patterns on the board's LED, for what a field device must show without a serial cable.

A refused device (401/403: wrong secret) flashes 3 times, an unknown one (404: not registered)
4 times, at every retry. The LED is the config's `led` actuator, so its level is put back
afterwards; a config without one blinks nothing, so a pin given to a sensor is never driven.
"""

FLASHES = {"unauthorized": 3, "unknown device": 4}
ON_MS = 120
OFF_MS = 180


def show(pin_id, outcome, active_low=False):
    """Flash the pattern for `outcome` on pin `pin_id`; about a second, well below a watchdog."""
    import machine

    from kpnthings.compat import sleep_ms

    n = FLASHES.get(outcome)
    if not n:
        return
    pin = machine.Pin(pin_id, machine.Pin.OUT)
    was = pin.value()
    on = 0 if active_low else 1
    for _ in range(n):
        pin.value(on)
        sleep_ms(ON_MS)
        pin.value(1 - on)
        sleep_ms(OFF_MS)
    pin.value(was)


def show_on(led, outcome):
    """Flash the pattern on the `led` actuator's pin (its validated entry), or do nothing
    when the config has no digital `led`."""
    if led is None or led.get("type") != "digital":
        return
    show(led["pin"], outcome, led.get("active_low", False))
