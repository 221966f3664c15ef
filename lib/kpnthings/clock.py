"""Wall-clock time for readings: Unix seconds (1970 epoch) as integers, or None when untrusted.

A board's RTC starts at its epoch after a power cut, so a reading taken before NTP has set the
clock has no absolute time: `now()` says None and the reading is stored without `t`, with its
ticks, to be dated once the clock is set (kpnthings.outbox_read). ESP32 firmware has counted from
2000, rp2 and the unix port from 1970: the offset is read from `time.gmtime(0)`, never assumed.
Floats are 32-bit on boards (~128 s resolution at today's Unix time), so everything here is an
integer.

No clock is believed before MIN_VALID, the day this firmware was built: an NTP answer before it
is wrong, and an RTC showing less was never set (an rp2 restarts its RTC at 2021-01-01 at every
boot, an ESP32 at 2000 after a power cut). kpnthings_tools.build writes the build's day into the
compiled module; the value below is the floor for a board that runs these sources as they are.
"""

import sys
import time

from kpnthings.compat import const

_EPOCH_2000 = const(946684800)  # seconds from 1970-01-01 to 2000-01-01
MIN_VALID = 1796601600  # 2026-12-07: the build's day (kpnthings_tools.build writes it)
_HOSTED = ("linux", "darwin", "win32", "cygwin")  # unix port and CPython: the OS keeps time


def epoch_offset(gmtime=None):
    """Seconds to add to this port's time.time() to get Unix time."""
    year = (gmtime or time.gmtime)(0)[0]
    if year == 1970:
        return 0
    if year == 2000:
        return _EPOCH_2000
    raise ValueError("unsupported epoch: time.gmtime(0) is in %d" % year)


class Clock:
    """Clock(trusted=None): trusted from the start on a host, after sync() on a board.

    `trusted` is False, True (set by NTP, or a host's clock, which its OS keeps), or 2: an RTC
    that kept its time through the reset that started this boot (trust_rtc), until NTP sets it.
    Readings then carry the RTC's time and their ticks (kpnthings.device), and the packs say so
    (docs/resilience.md, "Time quality").
    """

    def __init__(self, trusted=None, host="pool.ntp.org", timeout_s=2, time_module=None):
        self._time = time_module or time
        self._offset = epoch_offset(self._time.gmtime)
        if trusted is None:
            trusted = sys.platform in _HOSTED
        self.trusted = bool(trusted)
        self.host = host
        # ntptime waits this long for the UDP answer; keep it well below the watchdog's limit.
        self.timeout_s = min(int(timeout_s), 5)
        self.last_error = None
        self.syncs = 0

    def unix_time(self):
        """The RTC as Unix seconds, trusted or not."""
        return int(self._time.time()) + self._offset

    def now(self):
        """Unix seconds as an int, or None while the clock cannot be trusted."""
        if not self.trusted:
            return None
        return self.unix_time()

    def trust_rtc(self):
        """Trust an RTC that the board says kept its time through the reset (an ESP32 after a
        deep sleep, a watchdog or a soft reset: boards/esp32.py rtc_kept), if it shows a time
        at or after MIN_VALID. Returns trusted: 2 when the RTC is believed."""
        if not self.trusted and self.unix_time() >= MIN_VALID:
            self.trusted = 2
        return self.trusted

    def sync(self, ntp_module=None):
        """Set the RTC by NTP. Returns True when the clock is trusted afterwards; never raises.

        A failed sync keeps an already trusted clock trusted: its drift is small next to the
        cost of stamping readings with nothing.
        """
        try:
            if ntp_module is None:
                import ntptime as ntp_module
            ntp_module.host = self.host
            ntp_module.timeout = self.timeout_s
            ntp_module.settime()
        except Exception as e:  # OSError, timeouts, no ntptime on this port, bad reply
            self.last_error = "%s: %s" % (type(e).__name__, e)
            return self.trusted
        if self.unix_time() < MIN_VALID:
            self.last_error = "NTP answered a time before this firmware was built"
            return self.trusted
        self.trusted = True
        self.syncs += 1
        self.last_error = None
        return True
