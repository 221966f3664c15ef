"""Deep sleep helper: used only where machine.deepsleep exists; wake-up detected by reset cause."""

from kpnthings import deepsleep


class _Esp32:
    DEEPSLEEP_RESET = 4
    PWRON_RESET = 1

    def __init__(self, cause=1):
        self.cause = cause
        self.slept = []

    def reset_cause(self):
        return self.cause

    def deepsleep(self, ms):
        self.slept.append(ms)


class _NoDeepSleep:
    def reset_cause(self):
        return 1


def test_sleeps_through_machine_after_the_before_hook():
    m = _Esp32()
    calls = []
    assert deepsleep.sleep_ms(60000, machine_module=m, before=lambda: calls.append(m.slept[:]))
    assert m.slept == [60000]
    assert calls == [[]]  # the hook ran before the sleep


def test_short_sleeps_and_ports_without_deep_sleep_fall_back():
    m = _Esp32()
    assert deepsleep.sleep_ms(200, machine_module=m) is False
    assert m.slept == []
    assert deepsleep.sleep_ms(60000, machine_module=_NoDeepSleep()) is False
    assert deepsleep.supported() is False  # the unix port and CPython are not an ESP32


def test_wake_up_is_told_apart_from_power_on():
    assert deepsleep.woke_from_deep_sleep(_Esp32(cause=4)) is True
    assert deepsleep.woke_from_deep_sleep(_Esp32(cause=1)) is False
    assert deepsleep.woke_from_deep_sleep(_NoDeepSleep()) is False
