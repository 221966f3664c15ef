"""Clock: 1970-epoch integers whatever the port's epoch; None until NTP on a board."""

from _support import raises
from kpnthings import clock
from kpnthings.clock import Clock


class _FakeTime:
    """A port whose RTC counts from `epoch_year` and currently reads `raw`."""

    def __init__(self, epoch_year, raw):
        self.epoch_year = epoch_year
        self.raw = raw

    def gmtime(self, secs):
        return (self.epoch_year, 1, 1, 0, 0, 0, 5, 1)

    def time(self):
        return self.raw


class _FakeNtp:
    def __init__(self, fake_time, sets_to=None, error=None):
        self.fake_time = fake_time
        self.sets_to = sets_to
        self.error = error
        self.host = None
        self.timeout = None

    def settime(self):
        if self.error:
            raise self.error
        self.fake_time.raw = self.sets_to


def test_epoch_offset_normalises_2000_and_1970():
    assert clock.epoch_offset(_FakeTime(1970, 0).gmtime) == 0
    assert clock.epoch_offset(_FakeTime(2000, 0).gmtime) == 946684800
    raises(ValueError, clock.epoch_offset, _FakeTime(1980, 0).gmtime)
    assert clock.epoch_offset() in (0, 946684800)


def test_host_clock_is_trusted_and_integer():
    c = Clock()
    t = c.now()
    assert type(t) is int
    assert t > clock.MIN_VALID


def test_board_clock_is_untrusted_until_ntp_then_1970_based():
    ft = _FakeTime(2000, 5)  # ESP32 after a power cut: 5 s past its epoch
    c = Clock(trusted=False, host="ntp.example", timeout_s=3, time_module=ft)
    assert c.now() is None
    ntp = _FakeNtp(ft, sets_to=1760000000 - 946684800)
    assert c.sync(ntp) is True
    assert ntp.host == "ntp.example"
    assert ntp.timeout == 3
    assert c.now() == 1760000000
    assert type(c.now()) is int


def test_float_time_becomes_an_integer():
    ft = _FakeTime(1970, 1760000000.75)
    assert Clock(trusted=True, time_module=ft).now() == 1760000000


def test_failed_or_implausible_sync_leaves_the_clock_untrusted():
    ft = _FakeTime(1970, 10)
    c = Clock(trusted=False, time_module=ft)
    assert c.sync(_FakeNtp(ft, error=OSError(110))) is False
    assert "OSError" in c.last_error
    assert c.now() is None
    assert c.sync(_FakeNtp(ft, sets_to=12345)) is False
    assert c.now() is None
    ft.raw = 1760000000
    assert c.trust_rtc() is True  # e.g. an ESP32 RTC that kept time through deep sleep
    assert c.now() == 1760000000
    assert c.sync(_FakeNtp(ft, error=OSError(110))) is True  # stays trusted


def test_untrusted_rtc_before_2024_is_not_trusted():
    ft = _FakeTime(2000, 3600)
    c = Clock(trusted=False, time_module=ft)
    assert c.trust_rtc() is False
    assert c.now() is None


def test_timeout_is_capped_below_the_watchdog_limit():
    assert Clock(trusted=True, timeout_s=60).timeout_s <= 5
