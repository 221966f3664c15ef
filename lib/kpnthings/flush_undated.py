"""Readings the clock did not date: the wait for NTP before they are sent, and the record that
says how a pack's times were obtained (docs/resilience.md, "Time quality"). kpnthings.flush
loads this only while the clock is not set, or for a pack with readings it did not date, and
drops it after.

Its two functions are named as flush and Device name theirs: names the board has interned
already, so a flush that never loads this module interns only its name for it.
"""

from kpnthings.flush import build


def _holding(dev, n, readings):
    """While the wait for NTP lasts (config undated_wait_s, 120 s from the first cycle that
    finds the network up): store the cycle's readings, say so, and return the ms left (0: the
    wait is over, the readings go undated)."""
    if dev._hold_until is None:
        from kpnthings.compat import ticks_add, ticks_ms

        wait = dev.config.get("undated_wait_s") or 120
        dev._hold_until = ticks_add(ticks_ms(), wait * 1000)
    wait = dev._holding()  # at the end, no longer "no clock yet": they go undated
    if wait:
        dev._store(readings)
        dev._info(
            "[kpn] uplink %d: waiting for NTP to date the readings, at most %d s more;"
            " %d readings queued" % (n, (wait + 999) // 1000, len(dev.outbox))
        )
    return wait


def _describe(dev, queued, extra, body, num, d):
    """(body, num): the pack written for the first `num` readings of `queued` and `extra`,
    with one more record, last: `{"n":"undatedReadings","v":N}` in a pack without times (KPN
    stamps its N readings with their arrival), else `{"n":"timeQuality","v":Q}`, the weakest
    of its times: 2 an RTC's (kept through a reset, not set by NTP in that boot), 1 dated from
    ticks (taken before NTP set the clock). Fewer readings may fit beside it. `d` is
    `queued.dating`: the first index of a reading without a time, dated from ticks, with an
    RTC's time."""
    if d[0]:
        note = {"n": "timeQuality", "v": 2 if d[2] < num else 1}  # flush: never 0 here
    else:
        note = {"n": "undatedReadings", "v": num}  # a pack never mixes: all of them are
    body, more = build(dev, queued, extra + [note])
    if not more:  # a max_body too small for a reading beside it: the pack goes without it
        return build(dev, queued, extra)
    if d[0]:
        # Q has one digit whatever it says, so the same readings fit if it changes: the one
        # that made it 2 may not fit beside it (0: those that did are all NTP's).
        q = 2 if d[2] < more else 1 if d[1] < more else 0
        if q == note["v"]:
            return body, more
        note["v"] = q
        return build(dev, queued, extra + [note])
    # The count says `num`, and `more` readings fit beside it: `more` goes over the end of
    # the pack ('..."v":<num>}]'), no longer, so the pack still fits and says what it holds.
    # The note has no unit (the pack has no bu) and no time (the pack has none): the end is
    # exactly that.
    tail = b"%d}]" % more
    end = len(body) - len(b"%d}]" % num)
    buf = dev._body
    buf[end : end + len(tail)] = tail
    return memoryview(buf)[: end + len(tail)], more
