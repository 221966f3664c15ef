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
# ticks between NTP attempts while the clock is not set (or a re-sync failed)
NTP_RETRY_MS = 600000
# ticks between NTP syncs once the clock is set (config ntp_resync_h)
_NTP_RESYNC_MS = const(12 * 3600000)


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


def clock_checker(clock, link, feed, retry_ms=None, resync_ms=None, log=print):
    """A callable saying whether readings may carry a time (Clock.trusted: 2 while only
    an RTC kept through a reset vouches for it). Until NTP has answered once it retries, only
    while the link is up, so a board that booted without a network still gets its clock set
    later: 10 s after a failure, the wait doubling up to retry_ms, so that a short NTP outage
    still dates the readings held for it (config undated_wait_s). A clock the RTC kept is set by
    NTP at the first chance. Once set, NTP is asked again every resync_ms (0: never; None: 12 h),
    since an RTC drifts by minutes over months; a failed re-sync keeps the clock trusted and is
    tried again after retry_ms."""
    from kpnthings.compat import ticks_diff, ticks_ms

    if retry_ms is None:
        retry_ms = NTP_RETRY_MS  # read now: a host test's board may have shortened it
    if resync_ms is None:
        resync_ms = _NTP_RESYNC_MS
    last = []  # ticks of the last NTP attempt and the wait before the next, once there was one
    synced = [ticks_ms(), clock.syncs]  # ticks of the last success, and the count then

    def trusted():
        if link is None or link.state != "up":
            return clock.trusted
        now = ticks_ms()
        if clock.trusted is True and (not resync_ms or ticks_diff(now, synced[0]) < resync_ms):
            return True
        if last and ticks_diff(now, last[0]) < last[1]:
            return clock.trusted
        if feed is not None:
            feed()  # NTP waits up to its own timeout, well below the watchdog's
        clock.sync()
        # The wait before the next attempt: 10 s, 20 s, ... up to retry_ms while the clock is
        # not set; retry_ms once it is.
        if clock.trusted:
            wait = retry_ms
        elif last:
            wait = min(retry_ms, 2 * last[1])
        else:
            wait = min(retry_ms, 10000)
        last[:] = [now, wait]
        if clock.syncs != synced[1]:
            synced[:] = [now, clock.syncs]
            log("[clock] set by NTP")
        elif clock.trusted:
            log("[clock] NTP failed (%s): the clock goes on as it is" % clock.last_error)
        else:
            log(
                "[clock] not set (%s): readings wait for it or go without a time" % clock.last_error
            )
        if feed is not None:
            feed()  # and the cycle's sends get the watchdog's whole timeout after it
        return clock.trusted

    return trusted
