"""Clock: 1970-epoch integers whatever the port's epoch; None until NTP on a board; no time
before the build's day believed, from NTP or from an RTC kept through a reset."""

from _support import raises
from kpnthings import clock
from kpnthings.clock import Clock

# A time after the build's day, as NTP would answer it now.
LATER = clock.MIN_VALID + 86400 * 30


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
    ntp = _FakeNtp(ft, sets_to=LATER - 946684800)
    assert c.sync(ntp) is True
    assert ntp.host == "ntp.example"
    assert ntp.timeout == 3
    assert c.now() == LATER
    assert type(c.now()) is int


def test_float_time_becomes_an_integer():
    ft = _FakeTime(1970, LATER + 0.75)
    assert Clock(trusted=True, time_module=ft).now() == LATER


def test_failed_or_implausible_sync_leaves_the_clock_untrusted():
    ft = _FakeTime(1970, 10)
    c = Clock(trusted=False, time_module=ft)
    assert c.sync(_FakeNtp(ft, error=OSError(110))) is False
    assert "OSError" in c.last_error
    assert c.now() is None
    assert c.sync(_FakeNtp(ft, sets_to=12345)) is False
    assert c.now() is None
    # An answer one second before the build's day is as wrong as 1970.
    assert c.sync(_FakeNtp(ft, sets_to=clock.MIN_VALID - 1)) is False
    assert "built" in c.last_error and c.now() is None
    ft.raw = LATER
    assert c.trust_rtc() == 2  # e.g. an ESP32 RTC that kept time through deep sleep
    assert c.now() == LATER
    assert c.sync(_FakeNtp(ft, error=OSError(110))) == 2  # stays trusted, on the RTC's word
    assert c.syncs == 0
    assert c.sync(_FakeNtp(ft, sets_to=LATER + 5)) is True  # NTP answered: its word now
    assert c.syncs == 1 and c.now() == LATER + 5
    assert c.trust_rtc() is True  # an RTC never takes over from NTP


def test_an_rtc_before_the_build_day_is_not_trusted():
    # An rp2 restarts its RTC at 2021-01-01 at every boot, an ESP32 at 2000 after a power cut;
    # a clock that shows one second before the day this firmware was built was never set.
    for epoch, raw in ((2000, 3600), (1970, 1609459200), (1970, clock.MIN_VALID - 1)):
        c = Clock(trusted=False, time_module=_FakeTime(epoch, raw))
        assert c.trust_rtc() is False
        assert c.now() is None
    c = Clock(trusted=False, time_module=_FakeTime(1970, clock.MIN_VALID))
    assert c.trust_rtc() == 2 and c.now() == clock.MIN_VALID


def test_min_valid_is_the_build_day_not_2024():
    assert clock.MIN_VALID >= 1796601600  # 2026-12-07, the day this rule was written
    assert clock.MIN_VALID % 86400 == 0  # midnight UTC of a day


def test_timeout_is_capped_below_the_watchdog_limit():
    assert Clock(trusted=True, timeout_s=60).timeout_s <= 5


class _Machine:
    """A machine module whose reset_cause() says what the test sets."""

    PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5

    def __init__(self, cause):
        self.cause = cause

    def reset_cause(self):
        return self.cause


def _board(name):
    """boards/<name>.py as kpnthings.wiring loads it (CPython needs the checkout on its path;
    the MicroPython runs have the board files on theirs)."""
    import sys

    from _support import data_path, is_micropython
    from kpnthings import wiring

    root = None if is_micropython() else data_path("../..")
    if root:
        sys.path.insert(0, root)
    try:
        return wiring.load_board(name)
    finally:
        if root:
            sys.path.remove(root)
            for loaded in [k for k in sys.modules if k == "boards" or k[:7] == "boards."]:
                del sys.modules[loaded]


def test_an_esp32_keeps_its_rtc_through_deep_sleep_watchdog_and_soft_reset_only():
    # Issue 18, item 1: where the RTC survived the reset, use it. An ESP32's RTC runs through
    # a deep sleep, a watchdog reset and machine.reset(); a power-on or the EN pin restarts it.
    # An rp2 restarts it at every boot: the Pico W board has no rtc_kept at all.
    import sys

    esp32 = _board("esp32")
    saved = sys.modules.get("machine")
    try:
        kept = []
        for cause in range(1, 6):
            sys.modules["machine"] = _Machine(cause)
            kept.append(esp32.rtc_kept())
        assert kept == [False, False, True, True, True], kept
    finally:
        if saved is None:
            sys.modules.pop("machine", None)
        else:
            sys.modules["machine"] = saved
    assert getattr(_board("pico_w"), "rtc_kept", None) is None
