"""Retry delays: exponential backoff with jitter for transient failures, a long fixed wait for
authorisation failures (the README's response table (Reliability)).

"Equal jitter": the n-th delay lies in [c/2, c] with c = min(cap, base * 2**n). Half of it is
random so a fleet that lost the same server does not come back in lock step; the other half keeps
the growth visible, so a log (or a test) can see the backoff working. Integers only.
"""


def _default_rand(n):
    """An integer in [0, n). Lazy import: a board only pays for `random` when it backs off."""
    if n <= 1:
        return 0
    import random

    return random.getrandbits(30) % n


class Backoff:
    """Exponential backoff: next_delay() grows from base_ms to cap_ms; reset() after a success."""

    def __init__(self, base_ms=1000, cap_ms=60000, rand=None):
        if base_ms <= 0 or cap_ms < base_ms:
            raise ValueError("backoff needs 0 < base_ms <= cap_ms, got %r, %r" % (base_ms, cap_ms))
        self.base_ms = int(base_ms)
        self.cap_ms = int(cap_ms)
        self._rand = rand or _default_rand
        self.attempt = 0  # failures since the last reset

    def ceiling_ms(self):
        """The upper bound of the next delay."""
        c = self.base_ms
        for _ in range(self.attempt):
            c *= 2
            if c >= self.cap_ms:
                return self.cap_ms
        return c

    def next_delay(self):
        """The delay to wait, in ms, before the next try; each call counts one more failure."""
        c = self.ceiling_ms()
        self.attempt += 1
        half = c // 2
        return c - half + self._rand(half + 1)

    def reset(self):
        self.attempt = 0


class FixedBackoff:
    """A long, fixed wait (with a little jitter) for 401/403/404: retrying soon cannot help, but
    the secret or the registration may be fixed in the Portal at any time, so keep trying."""

    def __init__(self, delay_ms=300000, jitter_ms=None, rand=None):
        if delay_ms <= 0:
            raise ValueError("delay_ms must be positive, got %r" % (delay_ms,))
        self.delay_ms = int(delay_ms)
        self.jitter_ms = self.delay_ms // 10 if jitter_ms is None else int(jitter_ms)
        self._rand = rand or _default_rand
        self.attempt = 0

    def next_delay(self):
        self.attempt += 1
        return self.delay_ms + self._rand(self.jitter_ms + 1)

    def reset(self):
        self.attempt = 0
