"""The hardware watchdog, fed by the loop's progress; a no-op when not configured.

mqtt_as's lesson: feed on progress (each step of the loop that returned), not only after a
successful send, or a long outage resets a healthy board. The RP2040 cannot wait longer than
about 8.3 s, so the timeout is capped there and every blocking step must stay below it.
"""

import sys

from kpnthings.compat import const

_RP2_MAX_MS = const(8300)


class Watchdog:
    """Watchdog(timeout_ms) arms machine.WDT; Watchdog(None) or 0 gives a no-op feeder.

    The object is the device's feed callable: `watchdog()` feeds it, and `ms_left()` tells the
    flush whether one more send can end before the watchdog fires."""

    def __init__(self, timeout_ms=None, machine_module=None):
        self.timeout_ms = 0
        self._wdt = None
        self._fed_at = 0
        self.feeds = 0
        if not timeout_ms:
            return
        timeout_ms = int(timeout_ms)
        if timeout_ms < 1000:
            raise ValueError("watchdog timeout_ms must be at least 1000, got %d" % timeout_ms)
        if sys.platform == "rp2" and timeout_ms > _RP2_MAX_MS:
            timeout_ms = _RP2_MAX_MS  # the hardware limit; a larger value raises on rp2
        if machine_module is None:
            import machine as machine_module
        wdt_class = getattr(machine_module, "WDT", None)
        if wdt_class is None:
            return  # the unix port's machine has no WDT: nothing to arm
        # Once armed it cannot be stopped; arming is the last step of a successful boot.
        self._wdt = wdt_class(timeout=timeout_ms)
        self.timeout_ms = timeout_ms
        from kpnthings.compat import ticks_ms  # looked up at each call: tests drive the clock

        self._fed_at = ticks_ms()

    @property
    def enabled(self):
        return self._wdt is not None

    def ms_left(self):
        """ms before the watchdog fires unless fed (negative: overdue), or None if off."""
        if self._wdt is None:
            return None
        from kpnthings.compat import ticks_diff, ticks_ms

        return self.timeout_ms - ticks_diff(ticks_ms(), self._fed_at)

    def feed(self):
        """Call after each step of the loop that made progress (or returned within its deadline)."""
        self.feeds += 1
        if self._wdt is not None:
            self._wdt.feed()
            from kpnthings.compat import ticks_ms

            self._fed_at = ticks_ms()

    __call__ = feed
