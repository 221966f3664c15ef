"""Wi-Fi supervision in the mqtt_as style: bounded connects, backoff, trust after stability.

`poll()` never blocks: it advances a small state machine and says whether the link can be used.
A link counts as usable only after it has stayed up for `stable_ms` (a flapping access point
otherwise wins every race). After a failed connect the next attempt waits for the backoff; a
link lost after it was trusted is left to the driver's own reconnect for connect_timeout_ms
first (the device polls the link between the 1 s slices of its idle wait, so that is seconds).
`wait(timeout_ms)` polls until the link is trusted or the deadline passes, feeding the watchdog
as it goes. `drop()` lets the caller force a fresh association when the network looks dead
although the interface claims to be up (mqtt_as detects failure by timeouts, not by
`isconnected()`).
"""

from kpnthings.backoff import Backoff
from kpnthings.compat import sleep_ms, ticks_add, ticks_diff, ticks_ms

DOWN = "down"
CONNECTING = "connecting"
SETTLING = "settling"  # up, but not yet for stable_ms
UP = "up"


class WiFi:
    def __init__(
        self,
        ssid,
        password,
        wlan=None,
        connect_timeout_ms=7000,
        stable_ms=3000,
        backoff=None,
        ticks=ticks_ms,
        sleep=sleep_ms,
        fail_states=None,
    ):
        if not ssid:
            raise ValueError("wifi_ssid must not be empty")
        if wlan is None or fail_states is None:
            try:
                import network
            except ImportError:
                if wlan is None:
                    raise
                network = None
            if wlan is None:
                wlan = network.WLAN(network.STA_IF)
            if fail_states is None:
                # A refused password or a missing access point ends the attempt at once (ESP32
                # and Pico W report them through status()) instead of waiting for the timeout.
                names = ("STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND", "STAT_CONNECT_FAIL")
                fail_states = tuple(getattr(network, k) for k in names if hasattr(network, k))
        self._fail_states = fail_states
        self._wlan = wlan
        self.last_status = None  # the driver's status at the last failed attempt
        self.last_error = None  # what the driver raised last, if it raised
        self._ssid = ssid
        self._password = password
        self.connect_timeout_ms = connect_timeout_ms
        self.stable_ms = stable_ms
        self.backoff = backoff or Backoff(2000, 120000)
        self._ticks = ticks
        self._sleep = sleep
        self.state = DOWN
        self._since = ticks()
        self._next_try = self._since  # the first attempt is immediate
        self.losses = 0  # times a trusted link went down
        self.failures = 0  # connect attempts that timed out or were refused

    def _go_down(self, now):
        try:
            self._wlan.disconnect()
        except Exception:  # noqa: S110 - a driver that cannot even disconnect is down already
            pass
        self.state = DOWN
        self._since = now
        self._next_try = ticks_add(now, self.backoff.next_delay())

    def poll(self):
        """Advance the state machine once; True when the link is trusted. Never blocks, never
        raises: a driver that raises (a CYW43 that failed to start answers EPERM to every call,
        MicroPython #11247, #14408) counts as a failed attempt and is tried again after the
        backoff, while the readings wait in the outbox."""
        now = self._ticks()
        try:
            return self._step(now)
        except Exception as e:
            self.failures += 1
            self.last_error = "%s: %s" % (type(e).__name__, e)
            self._go_down(now)
            return False

    def _step(self, now):
        if self.state == DOWN:
            if ticks_diff(now, self._next_try) >= 0:
                self._wlan.active(True)
                # The password goes to the driver only; it is never logged.
                self._wlan.connect(self._ssid, self._password)
                self.state = CONNECTING
                self._since = now
            return False
        connected = self._wlan.isconnected()
        if self.state == CONNECTING:
            if connected:
                self.state = SETTLING
                self._since = now
            elif ticks_diff(now, self._since) >= self.connect_timeout_ms or self._refused():
                self.failures += 1
                self._go_down(now)
            return False
        if not connected:
            if self.state == SETTLING:  # never trusted: a flapping access point backs off
                self._go_down(now)
                return False
            self.losses += 1
            # Lost: give the driver connect_timeout_ms to associate again by itself, as the
            # ESP32's does; a disconnect() now would cancel that. Past it, a fresh attempt.
            self.state = CONNECTING
            self._since = now
            return False
        if self.state == SETTLING and ticks_diff(now, self._since) >= self.stable_ms:
            self.state = UP
            self.backoff.reset()
        return self.state == UP

    def wait(self, timeout_ms, feed=None, step_ms=100):
        """Poll until the link is trusted or timeout_ms passes; True if trusted."""
        deadline = ticks_add(self._ticks(), timeout_ms)
        while True:
            if self.poll():
                return True
            if feed is not None:
                feed()
            left = ticks_diff(deadline, self._ticks())
            if left <= 0:
                return False
            self._sleep(min(step_ms, left))

    def _refused(self):
        if not self._fail_states:
            return False
        try:
            status = self._wlan.status()
        except (OSError, AttributeError, TypeError):
            return False
        self.last_status = status
        return status in self._fail_states

    def drop(self):
        """Treat the link as failed (e.g. repeated network timeouts): reconnect after backoff."""
        if self.state == UP:
            self.losses += 1
        self._go_down(self._ticks())

    def ip(self):
        try:
            return self._wlan.ifconfig()[0]
        except (OSError, AttributeError, IndexError):
            return None
