"""Deep sleep between cycles (ESP32): the board powers down and boots again on wake-up.

Nothing in RAM survives, which is why the outbox lives on flash: readings queued before the
sleep are sent after it. The ESP32's RTC keeps counting through deep sleep, so after a wake-up
a clock that NTP had set can be trusted again (clock.Clock.trust_rtc) without a new sync.
The RP2040 has no deep sleep that keeps the RTC, so this is off there and the loop just sleeps.
"""

import sys

MIN_MS = 1000  # shorter sleeps cost more in boot time than they save


def supported(machine_module=None):
    """True on a port whose machine.deepsleep wakes the board by timer (ESP32)."""
    if sys.platform != "esp32" and machine_module is None:
        return False
    if machine_module is None:
        import machine as machine_module
    return hasattr(machine_module, "deepsleep")


def woke_from_deep_sleep(machine_module=None):
    """True when this boot is a wake-up from deep sleep (not a power-on or a crash)."""
    try:
        if machine_module is None:
            import machine as machine_module
        cause = machine_module.reset_cause()
    except (ImportError, AttributeError):
        return False
    return cause == getattr(machine_module, "DEEPSLEEP_RESET", object())


def sleep_ms(ms, machine_module=None, before=None):
    """Deep sleep for `ms` if the port supports it; returns False (and does nothing) if not.

    `before` runs first (turn Wi-Fi off, park the actuators). On a board this call does not
    return: the next cycle starts at boot, with the outbox read back from flash.
    """
    ms = int(ms)
    if ms < MIN_MS or not supported(machine_module):
        return False
    if machine_module is None:
        import machine as machine_module
    if before is not None:
        before()
    machine_module.deepsleep(ms)
    return True  # only a stand-in machine module returns
