"""Stand-in for the ESP32's RTC memory, for tests/fakes/machine.py: RTC().memory() is kept
through resets and deep sleep, and cleared at power-on.

With KPN_FAKE_RTC naming a file it outlives the process too, as it outlives a reset on a board:
every write lands in the file (its first byte: the reset cause the next boot reports), sleep()
marks it so that the next process (the next boot) sees DEEPSLEEP_RESET, and any other end
leaves HARD_RESET for the next boot. No file: a power-on.
"""

import time

_DEEPSLEEP_RESET = 4  # as machine's
_HARD_RESET = 2
_memory = [b""]


def _file():
    import os

    getenv = getattr(os, "getenv", None)
    return getenv("KPN_FAKE_RTC") if getenv is not None else None


def _save(cause):
    path = _file()
    if path:
        with open(path, "wb") as f:
            f.write(bytes([cause]) + _memory[0])


_cause = []


def reset_cause(cause):
    """The reset cause this boot reports (`cause`, machine's, after a power-on), read from the
    file at the first call; RTC memory with it."""
    if not _cause:
        _cause.append(cause)
        try:
            with open(_file(), "rb") as f:
                data = f.read()
        except (OSError, TypeError):
            data = b""  # a power-on
        if data:
            _memory[0] = data[1:]
            _cause[0] = data[0]
            _save(_HARD_RESET)  # unless this boot ends in deepsleep() too
    return _cause[0]


def sleep(ms):
    """machine.deepsleep's: with a file, the next boot is a wake, after the time asked."""
    if _file():
        _save(_DEEPSLEEP_RESET)
        time.sleep(ms / 1000)


class RTC:
    def memory(self, data=None):
        if data is None:
            return _memory[0]
        if len(data) > 2048:  # the ESP32's RTC user memory
            raise ValueError("buffer too long")
        _memory[0] = bytes(data)
        _save(_HARD_RESET)
        return None
