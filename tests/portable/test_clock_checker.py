"""kpnthings.clock.clock_checker: NTP asked while the link is up, again after a failure (sooner
while the clock is not set), and again every resync_ms once it is."""

from kpnthings.clock import clock_checker


class Clock:
    def __init__(self, answers):
        self.trusted = False
        self.last_error = "no answer"
        self.answers = list(answers)
        self.syncs = 0

    def sync(self):
        # As kpnthings.clock.Clock: syncs counts successes; a failure keeps a trusted clock.
        self.calls = getattr(self, "calls", 0) + 1
        ok = self.answers.pop(0) if self.answers else False
        if ok:
            self.syncs += 1
            self.trusted = True  # NTP's word, also over an RTC's (trusted == 2)
        return self.trusted


class Link:
    state = "up"


def test_clock_checker_tries_ntp_while_the_link_is_up_then_trusts_it():
    clock, link, fed = Clock([False, True]), Link(), []
    trusted = clock_checker(clock, link, lambda: fed.append(1), retry_ms=0)
    assert trusted() is False
    assert trusted() is True
    assert trusted() is True
    assert clock.calls == 2 and clock.syncs == 1  # once set, NTP is not asked again
    assert len(fed) == 4  # the watchdog is fed before each NTP wait, and after it


def test_clock_checker_waits_retry_ms_between_attempts_and_skips_a_down_link():
    clock, link = Clock([False, True]), Link()
    trusted = clock_checker(clock, link, None, retry_ms=3600000)
    assert trusted() is False
    assert trusted() is False  # within retry_ms: no second attempt
    assert clock.calls == 1
    link.state = "down"
    clock2 = Clock([True])
    assert clock_checker(clock2, link, None, retry_ms=0)() is False
    assert clock2.syncs == 0
    assert clock_checker(clock2, None, None)() is False  # no Wi-Fi at all (unix board)


def test_clock_checker_syncs_again_after_resync_ms_and_a_failure_keeps_the_clock():
    # Issue 18, item 4: after the first NTP success the clock was never set again, so over
    # months every bt drifted by minutes.
    from kpnthings import compat

    now = [0]
    saved = compat.ticks_ms
    compat.ticks_ms = lambda: now[0]
    try:
        clock, link = Clock([True, False, True]), Link()
        trusted = clock_checker(clock, link, None, retry_ms=600000, resync_ms=12 * 3600000)
        assert trusted() is True and clock.calls == 1
        now[0] += 12 * 3600000 - 1
        assert trusted() is True and clock.calls == 1  # not yet
        now[0] += 2
        assert trusted() is True and clock.calls == 2  # asked again; it failed: still trusted
        assert trusted() is True and clock.calls == 2  # the next try waits retry_ms
        now[0] += 600000
        assert trusted() is True and clock.calls == 3 and clock.syncs == 2
        now[0] += 600000
        assert trusted() is True and clock.calls == 3  # set again: resync_ms from here
    finally:
        compat.ticks_ms = saved


def _driven_ticks():
    from kpnthings import compat

    now = [0]
    saved = compat.ticks_ms
    compat.ticks_ms = lambda: now[0]
    return now, saved


def test_clock_checker_retries_sooner_while_the_clock_is_not_set():
    # Issue 18, item 1: readings are held for undated_wait_s (120 s) after boot so that a
    # short NTP delay still dates them; an NTP attempt only every 10 minutes never would.
    from kpnthings import compat

    now, saved = _driven_ticks()
    try:
        clock, link = Clock([False] * 9 + [True]), Link()
        trusted = clock_checker(clock, link, None, retry_ms=600000)
        attempts = []
        for _ in range(3000):  # one call a second for 50 minutes
            calls = getattr(clock, "calls", 0)
            trusted()
            if getattr(clock, "calls", 0) != calls:
                attempts.append(now[0] // 1000)
            now[0] += 1000
        gaps = [attempts[i + 1] - attempts[i] for i in range(len(attempts) - 1)]
        assert gaps[:7] == [10, 20, 40, 80, 160, 320, 600], gaps  # then retry_ms, 600 s
        assert len(attempts) == 10 and trusted() is True  # the 10th attempt set the clock
    finally:
        compat.ticks_ms = saved


def test_clock_checker_asks_ntp_at_once_over_an_rtc_clock():
    # A clock an RTC kept through the reset (trusted == 2) is believed, and NTP sets it at
    # the first chance, whatever resync_ms says; a failure keeps it and waits retry_ms.
    from kpnthings import compat

    now, saved = _driven_ticks()
    try:
        clock, link = Clock([False, True]), Link()
        clock.trusted = 2
        trusted = clock_checker(clock, link, None, retry_ms=600000, resync_ms=0)
        assert trusted() == 2 and clock.calls == 1  # asked at once; failed: the RTC goes on
        now[0] += 599000
        assert trusted() == 2 and clock.calls == 1
        now[0] += 1000
        assert trusted() is True and clock.calls == 2 and clock.syncs == 1
        now[0] += 86400000
        assert trusted() is True and clock.calls == 2  # resync_ms 0: never again
    finally:
        compat.ticks_ms = saved
