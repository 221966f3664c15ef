"""The few helpers that differ between MicroPython and CPython, in one place: time, const."""

import time

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython. MicroPython's compiler folds `_NAME = const(1)` away: the name
    # is never stored, so it costs no interned string on the board.

    def const(x):
        return x


try:
    ticks_ms = time.ticks_ms  # type: ignore[attr-defined]
    ticks_diff = time.ticks_diff  # type: ignore[attr-defined]
    ticks_add = time.ticks_add  # type: ignore[attr-defined]
    sleep_ms = time.sleep_ms  # type: ignore[attr-defined]
except AttributeError:  # CPython: monotonic milliseconds, no wrap-around to handle

    def ticks_ms():
        return int(time.monotonic() * 1000)  # type: ignore[attr-defined]

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b

    def sleep_ms(ms):
        time.sleep(ms / 1000)
