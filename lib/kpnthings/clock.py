"""Wall-clock time for readings: Unix seconds (1970 epoch) as integers, or None when untrusted.

A board's RTC starts at its epoch after a power cut, so a reading taken before NTP has set the
clock has no absolute time: `now()` says None and the reading is stored without `t` (KPN stamps
its arrival). ESP32 firmware has counted from 2000, rp2 and the unix port from 1970: the offset is
read from `time.gmtime(0)`, never assumed. Floats are 32-bit on boards (~128 s resolution at
today's Unix time), so everything here is an integer.
"""

import sys
import time

from kpnthings.compat import const

_EPOCH_2000 = const(946684800)  # seconds from 1970-01-01 to 2000-01-01
MIN_VALID = 1704067200  # 2024-01-01: an RTC showing less was never set
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
    """Clock(trusted=None): trusted from the start on a host, after sync() on a board."""

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
        """Trust an RTC that kept plausible time (ESP32 after deep sleep). Returns trusted."""
        if self.unix_time() >= MIN_VALID:
            self.trusted = True
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
            self.last_error = "NTP answered a time before 2024"
            return self.trusted
        self.trusted = True
        self.syncs += 1
        self.last_error = None
        return True
