"""A pack whose stored readings the writer refuses: kpnthings.flush loads this only then.

One bad record on flash (a NaN stored by an older firmware, a name KPN refuses) must cost
itself, not the queue (issue 17 #3).
"""

from kpnthings.flush import build


class _Oldest:
    """The first `k` readings of a Queued view: what the pack writer reads (len, index)."""

    def __init__(self, queued, k):
        self._q = queued
        self._k = k

    def __len__(self):
        return self._k

    def __getitem__(self, i):
        if i >= self._k:
            raise IndexError(i)
        return self._q[i]


def around(dev, box, queued, extra, error):
    """(body, used) for the oldest readings before the one the writer refused, or (None, 0)
    after dead-lettering the oldest reading when it is the refused one: one bad record (a NaN
    stored by an older firmware, a name KPN refuses) costs itself, not the queue. The run of
    good readings is found by halving: a few builds, not one per reading."""
    good, bad = 0, len(queued)
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            build(dev, _Oldest(queued, mid), extra)
            good = mid
        except ValueError:
            bad = mid
    if good == 0:
        if len(queued):
            try:
                build(dev, _Oldest(queued, 1), ())
            except ValueError:
                box.dead_letter(1)
                dev._warn("[kpn] stored reading refused (%s): dead-lettered" % (error,))
                return None, 0
        raise error  # the extra records are refused, not a stored one
    return build(dev, _Oldest(queued, good), extra)
