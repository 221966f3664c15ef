"""One cycle's uplink: the pack written from the outbox (or from the cycle's readings), sent,
acknowledged or dead-lettered, its downlink applied, and the backoff that follows.

kpnthings.device loads this when a cycle sends, and unloads it with the pack writer when the
device rests before a long wait (Device.rest): between cycles a device only reads and stores.
The state all this works on stays on the Device: its body buffer, its backoff, its log, and the
answer to the last downlink.

The answer (docs/downlinks.md): after a downlink is applied, every pack carries one record
`{"n":"downlink","vs":"led=applied; relay=refused: unknown actuator"}` (a downlink the board
could not read: "refused: <why>"; at most a quarter of max_body and 200 characters, the
answers beyond counted: "and 3 more") until KPN answers a pack that carried it, as accepted or
malformed. It is held in RAM only (Device._answer), so a reset loses an answer not yet sent.
"""

# The outcomes come from kpnthings.client, which makes the Results (kpnthings.device names
# the same strings for users): the sending imports nothing back from the loop that loads it.
from kpnthings.client import ACCEPTED, MALFORMED, RETRY
from kpnthings.compat import const

# Backlog packs sent per cycle after an accepted one, so a long outage drains over a few cycles
# instead of blocking one cycle (and the watchdog) for minutes.
_MAX_PACKS_PER_CYCLE = const(4)


def send(dev, n, readings):
    """Send the cycle's readings, through the outbox if the device has one: the last
    transport Result, or None when there was nothing to send, or while they wait for NTP."""
    if dev._held_by == "no clock yet":
        # Readings taken before the clock is set wait for NTP (Device.__init__, config
        # undated_wait_s) from the first cycle that finds the network up, when NTP can answer.
        if dev._trusted():  # set: they go now, dated
            dev._hold_until = dev._held_by = None
        else:
            from kpnthings import flush_undated, unload

            try:
                wait = flush_undated._holding(dev, n, readings)
            finally:
                unload("flush_undated")  # loaded while the clock is not set only
            if wait:
                return None
    if dev.outbox is None:
        result = _send_direct(dev, n, readings)
    else:
        result = _send_outbox(dev, n, readings)
    if result is not None:
        _after(dev, result)
    return result


def build(dev, records, extra=()):
    """(body, readings used): the pack for the oldest `records`, then the `extra` records,
    written by kpnthings.batch into the device's one body buffer (a memoryview of it, valid
    until the next build). Allocated once, the buffer makes a flush cost the same heap for
    one pack or a backlog of thousands.
    """
    buf = dev._body
    if buf is None or len(buf) != dev.max_body:  # not prepared, or max_body changed
        prepare(dev)
        buf = dev._body
    end, used = dev._write_pack(buf, dev.base_name, records, extra)
    return memoryview(buf)[:end], used


def prepare(dev):
    """Load the pack writer and allocate the body buffer now. kpnthings.app calls this
    right after the boot's own modules are gone and collected: the heap is then at its
    emptiest, and these need contiguous blocks (1 KB of buffer, a few hundred bytes of
    bytecode) that a heap fragmented by cycles may lack. Without it, the first build does
    it."""
    from kpnthings.batch import write_pack

    dev._write_pack = write_pack
    dev._body = None  # the old buffer is garbage before the new one is made
    dev._body = bytearray(dev.max_body)


def _after(dev, result):
    """Backoff bookkeeping after a send, by response class; after a failure, in
    kpnthings.flush_failed, loaded for it."""
    outcome = result.outcome
    if outcome != ACCEPTED:
        dev.error = outcome  # health's lastError (docs/health.md)
    if outcome == ACCEPTED or outcome == MALFORMED:
        if outcome == ACCEPTED:
            from kpnthings.compat import ticks_ms

            dev._accepted_at = ticks_ms()
            # A new version on trial reached KPN: trust it (docs/updates.md). The attribute is
            # set by kpnthings.update_boot only then: a Device without it holds no field for it.
            if getattr(dev, "update", None):
                from kpnthings import unload, update_boot

                try:
                    update_boot.ack(dev)
                finally:
                    unload("update_boot")
        dev._silent = 0  # an answer of any kind: the link carries
        # The server answered sensibly: the path works, so no reason to wait.
        dev._retry.reset()
        dev._auth_wait.reset()
        return
    from kpnthings import flush_failed, unload

    try:
        flush_failed.backoff(dev, result)
    finally:
        unload("flush_failed")  # loaded for this failure only


def reset(dev, why):
    """Restart the board (kpnthings.flush_failed.reset): kpnthings.device's reset_after_h."""
    from kpnthings import flush_failed, unload

    try:
        flush_failed.reset(dev, why)
    finally:
        unload("flush_failed")


def _send_direct(dev, n, readings):
    states = dev.state_records()
    due = health(dev, n, states)
    said = dev._answer
    extra = states + [{"n": "downlink", "vs": said}] if said else states
    if not readings and not extra:
        dev._info("[kpn] uplink %d: nothing to send" % n)
        return None
    body, _ = build(dev, readings, extra)
    if said and not len(body):  # not even the extra records fit: the answer goes
        dev._answer = None
        dev._warn("[kpn] downlink answer dropped: no room in max_body")
        body, _ = build(dev, readings, states)
    if _watchdog_too_close(dev, len(readings)):
        return None
    result = dev.transport.send(body)
    _report(dev, n, len(readings), len(states), len(body), result)
    if due and result.outcome == ACCEPTED:
        dev.health = n
    _apply(dev, result)
    return result


def health(dev, n, states):
    """True, with the health records added to `states`, when they fall due: config health_every
    cycles after the last set KPN accepted, and in the first pack of a boot (docs/health.md).
    kpnthings.health makes them, loaded for them only."""
    every = dev.config.get("health_every")
    last = getattr(dev, "health", 0)
    if not every or (last > 0 and n - last < every):
        return False
    from kpnthings import unload

    try:  # named as the module, one name for both; a heap too full for it costs the set only
        from kpnthings import health

        states.extend(health.records(dev, n))
    except Exception as e:  # a port that answers oddly costs the health set, not the uplink
        dev._warn("[kpn] health records failed: %s: %s" % (type(e).__name__, e))
        return False
    finally:
        unload("health")
    return True


def _send_outbox(dev, n, readings):
    # A reading the flash could not take is tried once, in this cycle's first pack.
    box = dev.outbox
    if box is None:
        return None
    unsaved = dev._store(readings)
    result = None
    trusted = dev._trusted()
    now = dev.now() if trusted else None
    now = None if now is None else int(now)
    anchor = getattr(box, "dating", None)
    if now is not None and (anchor is None or (anchor[3] == 2 and trusted != 2)):
        # Readings taken before the clock was set get their true time, from one anchor kept
        # for the boot: worked out afresh for each pack, the clock's whole seconds and the
        # ticks' rounding gave a pack sent again times a second off its first copy's. An
        # anchor an RTC gave (2) gives way once, to NTP's (1), when it answers.
        from kpnthings.compat import ticks_ms

        box.dating = (dev._boot, now, ticks_ms(), 2 if trusted == 2 else 1)
    for _ in range(_MAX_PACKS_PER_CYCLE):
        states = dev.state_records()
        dropped = box.dropped
        if dropped:
            states.append({"n": "droppedReadings", "v": dropped})
        due = health(dev, n, states)
        said = dev._answer
        if said:
            states.append({"n": "downlink", "vs": said})  # last: the one to drop for room
        extra = unsaved + states
        unsaved = []
        if not len(box) and not extra:
            break
        # Read from flash one reading at a time as the pack is written: a backlog of
        # thousands costs the heap of one pack.
        queued = box.queued()
        try:
            whole = True  # the pack is written from the head of the queue as it is
            try:
                body, used = build(dev, queued, extra)
            except ValueError as e:  # a stored reading the writer refuses: never a wedge
                from kpnthings import flush_refused, unload

                try:
                    body, used = flush_refused.around(dev, box, queued, extra, e)
                finally:
                    unload("flush_refused")  # rare: loaded for this pack only
                if body is None:
                    continue
                whole = False
            if said and not len(body):  # not even the extra records fit: the answer goes
                dev._answer = None
                dev._warn("[kpn] downlink answer dropped: no room in max_body")
                extra.pop()
                states.pop()
                said = None
                body, used = build(dev, queued, extra)
            if len(box) and used == 0:
                oldest = queued[0]
                if build(dev, (oldest,), ())[1] == 0:
                    # The oldest reading does not fit in max_body even alone: it can never
                    # be sent, and would block the queue forever.
                    box.dead_letter(1)
                    dev._warn("[kpn] reading %s larger than max_body: dead-lettered" % oldest["n"])
                    continue
                body, used = build(dev, queued, extra)  # the pack the probe overwrote
            for again in (False, True):
                if states and used and used < len(box):
                    # State records and counters describe now: they go only in the pack with
                    # the newest readings, whose time they take (batch.write_pack), never an
                    # older one.
                    extra = extra[: len(extra) - len(states)]
                    states = ()
                    dropped = due = 0
                    said = None  # the answer waits too
                    body, used = build(dev, queued, extra)
                elif again:
                    break
                if not whole or not used:
                    break
                # How the pack's times were obtained, in one more record. It may leave room
                # for fewer readings, and then the states wait for the next pack (again).
                body, used = _describe(dev, queued, extra, body, used)
        finally:
            queued.close()
        if not len(body) or _watchdog_too_close(dev, used):
            break
        # The pack is written: its extra records go before the send and its answer, the cycle's
        # peak (the next pack makes them anew). Writing a health set leaves garbage amid the
        # heap: collected now, the send's blocks find room (2.5 KB less for a full cycle).
        k, extra, states = len(states), bool(extra), None
        if due:
            import gc

            gc.collect()
        result = dev.transport.send(body)
        _report(dev, n, used, k, len(body), result)
        if result.outcome == ACCEPTED:
            box.ack(used)
            if dropped:
                box.clear_dropped(dropped)
            if due:
                dev.health = n  # the next set falls due health_every cycles from now
            _apply(dev, result, bool(said))
        elif result.outcome == MALFORMED and used > 1:
            # One refused reading must not take the others with it: find it by halves.
            from kpnthings import flush_refused, unload

            if said:
                dev._answer = None  # refused with the pack it was in, never sent again
            try:
                result = flush_refused.isolate(dev, n, used, extra) or result
            finally:
                unload("flush_refused")
            break
        elif result.outcome == MALFORMED:
            dev._answer = None  # refused with the pack it was in, never sent again
            box.dead_letter(used)
            dev._warn("[kpn] %d readings moved to the dead-letter store" % used)
        else:
            break  # keep everything for a later cycle
        if not len(box) or used == 0:
            break
        if dev.feed is not None:
            dev.feed()  # a pack handled is progress; the next one gets a whole timeout
    return result


def _describe(dev, queued, extra, body, num):
    """(body, num): the pack written for the first `num` readings of `queued` and `extra`,
    with one more record, last, if its readings' times did not all come from a clock NTP had
    set (kpnthings.flush_undated, loaded only then)."""
    # The first index of a reading without a time, dated from ticks, with an RTC's time (an
    # outbox whose view keeps none, as a test's, gets no notes).
    d = getattr(queued, "dating", None)
    if d is None or (d[0] and not (d[2] < num or d[1] < num)):
        return body, num
    from kpnthings import flush_undated, unload

    try:
        return flush_undated._describe(dev, queued, extra, body, num, d)
    finally:
        unload("flush_undated")


def _watchdog_too_close(dev, readings):
    """True (and logged) when a send might outlast the watchdog: less than one timeout_s is
    left before it fires. The readings wait for the next cycle, which starts fed."""
    ms_left = getattr(dev.feed, "ms_left", None)
    if ms_left is None:
        return False
    left = ms_left()
    if left is None or left >= dev.config.get("timeout_s", 5) * 1000:
        return False
    dev._warn("[kpn] %d readings wait: %d ms left before the watchdog" % (readings, left))
    return True


def _report(dev, n, readings, states, size, result):
    detail = ""
    if result.error:
        detail = " (%s)" % result.error
    # "-> 200 accepted", "-> no answer retry (timed out)", or over MQTT, which has no status,
    # "-> accepted". Built without short format strings: each would be an interned name for good.
    outcome = result.outcome
    status = result.status
    if status is not None:
        outcome = str(status) + " " + outcome
    elif outcome == RETRY:  # nothing answered: DNS, TCP, TLS, a timeout (as _after says)
        outcome = "no answer %s" % outcome
    say = dev._info if result.outcome == ACCEPTED else dev._warn
    say(
        "[kpn] uplink %d: %d readings + %d states, %d bytes -> %s%s"
        % (n, readings, states, size, outcome, detail)
    )


def _apply(dev, result, carried=True):
    """After an uplink KPN accepted (or the direct path's every send): the answer that pack
    carried (if `carried`) is gone, and a downlink in the response is applied, its answer kept
    for the next pack (kpnthings.flush_answer, loaded only then)."""
    outcome = result.outcome
    if carried and (outcome == ACCEPTED or outcome == MALFORMED):
        dev._answer = None  # it was in the pack just answered
    if outcome != ACCEPTED:
        return
    error = result.error
    if (result.downlink and dev.actuators is not None) or (
        error and error.startswith("downlink refused: ")
    ):
        from kpnthings import flush_answer, unload

        try:
            flush_answer.apply(dev, result)
        finally:
            unload("flush_answer")  # loaded for this downlink only
