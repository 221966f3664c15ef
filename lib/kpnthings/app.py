"""The firmware itself: firmware/main.py only calls main() here, so it ships as .mpy.

Compiling a long main.py on the board costs tens of KB of heap at every boot; this module is
loaded as bytecode instead. Everything that is needed only once (config checks, building the
transport, the board and the outbox) lives in kpnthings.wiring and is unloaded before the loop
starts; what stays here is what the loop keeps calling.
"""

import sys

from kpnthings.compat import const

# ticks between NTP attempts while the clock is not set (or a re-sync failed)
NTP_RETRY_MS = 600000
# ticks between NTP syncs once the clock is set (config ntp_resync_h)
_NTP_RESYNC_MS = const(12 * 3600000)


def log(line):
    print(line)


def clock_checker(clock, link, feed, retry_ms=NTP_RETRY_MS, resync_ms=None):
    """A callable saying whether readings may carry a time (clock.Clock.trusted: 2 while only
    an RTC kept through a reset vouches for it). Until NTP has answered once it retries, only
    while the link is up, so a board that booted without a network still gets its clock set
    later: 10 s after a failure, the wait doubling up to retry_ms, so that a short NTP outage
    still dates the readings held for it (config undated_wait_s). A clock the RTC kept is set by
    NTP at the first chance. Once set, NTP is asked again every resync_ms (0: never; None: 12 h),
    since an RTC drifts by minutes over months; a failed re-sync keeps the clock trusted and is
    tried again after retry_ms."""
    from kpnthings.compat import ticks_diff, ticks_ms

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


def main():
    """Boot from config.json (see kpnthings.wiring), then run the device loop."""
    from kpnthings import unload, wiring

    try:
        device, transport = wiring.boot(log)
    except wiring.BootFailed:
        sys.exit(1)
    finally:
        # and collect, before the loop's objects. This frame's own name for the module goes
        # too: it would keep wiring, all its code, alive through the whole loop (4 KB at rest).
        del wiring
        unload("wiring", "config", "downlink_spec", "mqtt_config")
    device.prepare()
    cfg = device.config
    try:
        device.run(cycles=cfg["cycles"], interval_s=cfg["interval_s"])
    finally:
        close = getattr(transport, "close", None)
        if close is not None:
            close()
    log("[boot] done after %d cycles" % device.cycles_done)
