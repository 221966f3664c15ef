"""Backoff: exponential growth with equal jitter up to a cap; the long fixed wait; reset."""

from _support import raises
from kpnthings.backoff import Backoff, FixedBackoff


def _low(n):
    return 0


def _high(n):
    return n - 1


def test_delays_double_up_to_the_cap_within_the_jitter_band():
    b = Backoff(1000, 30000, rand=_high)
    assert [b.next_delay() for _ in range(7)] == [1000, 2000, 4000, 8000, 16000, 30000, 30000]
    b = Backoff(1000, 30000, rand=_low)
    assert [b.next_delay() for _ in range(7)] == [500, 1000, 2000, 4000, 8000, 15000, 15000]


def test_default_jitter_stays_in_band_and_varies():
    b = Backoff(1000, 64000)
    seen = set()
    for attempt in range(12):
        c = min(64000, 1000 * 2**attempt)
        d = b.next_delay()
        assert type(d) is int
        assert c - c // 2 <= d <= c, (attempt, d)
        seen.add(d)
    assert len(seen) > 6


def test_reset_starts_over_and_attempt_counts_failures():
    b = Backoff(100, 10000, rand=_high)
    for _ in range(5):
        b.next_delay()
    assert b.attempt == 5
    b.reset()
    assert b.attempt == 0
    assert b.next_delay() == 100


def test_many_attempts_do_not_overflow():
    b = Backoff(1000, 3600000, rand=_high)
    for _ in range(1000):
        d = b.next_delay()
    assert d == 3600000


def test_fixed_backoff_is_long_and_jittered():
    f = FixedBackoff(300000, rand=_high)
    assert f.next_delay() == 330000
    f = FixedBackoff(300000, jitter_ms=0)
    assert [f.next_delay() for _ in range(3)] == [300000, 300000, 300000]
    assert f.attempt == 3
    f.reset()
    assert f.attempt == 0


def test_bad_parameters_are_refused():
    raises(ValueError, Backoff, 0, 10)
    raises(ValueError, Backoff, 100, 10)
    raises(ValueError, FixedBackoff, 0)
