"""Packs refused for one bad reading: kpnthings.flush loads this only then.

One bad record must cost itself, not the readings around it: a record on flash the pack writer
refuses (a NaN stored by an older firmware: `around`, issue 17 #3), or a pack KPN answers with
400 (a name or value it will not store: `isolate`, issue 18 item 2).
"""

from kpnthings.client import ACCEPTED, MALFORMED
from kpnthings.flush import _apply, _report, build

# Requests one flush may spend on splitting refused packs (config split_requests).
SPLIT_REQUESTS = 16


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


def isolate(dev, n, used, extra):
    """KPN refused (400) the pack of the `used` oldest readings and the `extra` records: send
    the readings again in halves, so that only those it refuses reach the dead-letter store.
    When the pack had extra records (actuator states, droppedReadings) the readings go once
    alone first: the refused record may be an extra, which the next cycle makes anew. A bad
    reading costs about 2 log2(used) requests, and a flush at most split_requests; what is left
    when they are spent, or when an answer is neither a 400 nor a 200, waits for the next
    cycle, which starts from the queue's head again. Returns the last Result."""
    budget = [dev.config.get("split_requests", SPLIT_REQUESTS)]
    last = [None]
    if not extra or _send(dev, n, used, budget, last) == MALFORMED:
        _settle(dev, n, used, budget, last)
    return last[0]


def _settle(dev, n, k, budget, last):
    """The oldest k readings hold at least one that KPN refuses; False: stop for now."""
    if k == 1:
        dev.outbox.dead_letter(1)
        dev._warn("[kpn] 1 reading refused by KPN: moved to the dead-letter store")
        return True
    half = k // 2
    outcome = _send(dev, n, half, budget, last)
    if outcome == ACCEPTED:
        return _settle(dev, n, k - half, budget, last)  # so the refused one is in the rest
    if outcome != MALFORMED or not _settle(dev, n, half, budget, last):
        return False
    outcome = _send(dev, n, k - half, budget, last)  # the rest: refused or not, unknown
    if outcome == MALFORMED:
        return _settle(dev, n, k - half, budget, last)
    return outcome == ACCEPTED


def _send(dev, n, k, budget, last):
    """Send the oldest k readings alone: the outcome, or None with no requests left."""
    if budget[0] <= 0:
        dev._warn("[kpn] split_requests spent on refused packs: the rest waits")
        return None
    budget[0] -= 1
    queued = dev.outbox.queued()
    try:
        body, used = build(dev, _Oldest(queued, k), ())
    finally:
        queued.close()
    result = last[0] = dev.transport.send(body)
    _report(dev, n, used, 0, len(body), result)
    if result.outcome == ACCEPTED:
        dev.outbox.ack(used)
        _apply(dev, result, False)  # these halves carry no downlink answer
    return result.outcome
