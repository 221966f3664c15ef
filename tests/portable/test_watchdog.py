"""Watchdog: arms machine.WDT only when configured; feeds counted; no-op otherwise."""

from _support import raises
from kpnthings.watchdog import Watchdog


class _FakeMachine:
    class WDT:
        made = []

        def __init__(self, timeout):
            self.timeout = timeout
            self.feeds = 0
            _FakeMachine.WDT.made.append(self)

        def feed(self):
            self.feeds += 1


class _NoWdtMachine:
    pass


def test_unconfigured_watchdog_is_a_no_op():
    w = Watchdog(None)
    assert not w.enabled
    w.feed()
    assert w.feeds == 1
    assert w.ms_left() is None


def test_configured_watchdog_arms_and_feeds_the_hardware():
    w = Watchdog(8000, machine_module=_FakeMachine)
    assert w.enabled
    hw = _FakeMachine.WDT.made[-1]
    assert hw.timeout == 8000
    w.feed()
    w.feed()
    assert hw.feeds == 2
    assert 0 < w.ms_left() <= 8000


def test_port_without_wdt_degrades_to_no_op():
    w = Watchdog(5000, machine_module=_NoWdtMachine)
    assert not w.enabled
    w.feed()


def test_too_short_timeout_is_refused():
    raises(ValueError, Watchdog, 200, machine_module=_FakeMachine)
