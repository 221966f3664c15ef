"""After a send that failed: the backoff wait, the refused device's signal, and the dead-link
recovery (a fresh association, then a reset). kpnthings.flush loads this only after a send KPN
did not accept or refuse as malformed, and for the reset of reset_after_h (flush.reset), and
drops it after.
"""

from kpnthings.client import RETRY
from kpnthings.compat import const

# Defaults of the dead-link recovery (config link_drop_after, reset_after_drops; 0: never).
_LINK_DROP_AFTER = const(3)
_RESET_AFTER_DROPS = const(5)


def backoff(dev, result):
    """Backoff bookkeeping after a send that failed (retry, unauthorized, unknown device)."""
    from kpnthings.compat import ticks_add, ticks_ms

    outcome = result.outcome
    if outcome == RETRY and result.status is None:
        _no_answer(dev)  # nothing answered: DNS, TCP, TLS or the reply
    else:
        dev._silent = 0  # an answer of any kind: the link carries
    if outcome == RETRY:
        delay = dev._retry.next_delay()
    else:  # unauthorized, unknown device: only a fix in the Portal helps
        delay = dev._auth_wait.next_delay()
        dev._error(
            "[kpn] KPN Things refused the device (%s): check its DvnUUID and secret in the"
            " Portal; readings are kept, next try in %d s" % (outcome, delay // 1000)
        )
        if dev.signal is not None:
            try:
                dev.signal(outcome)
            except Exception as e:  # a broken LED must not stop the device
                dev._warn("[kpn] signal failed: %s" % (e,))
    dev._hold_until = ticks_add(ticks_ms(), delay)
    dev._held_by = outcome


def _no_answer(dev):
    """Another uplink without an answer while the link says it is up (a CYW43 can report
    LINK_UP after losing its association): every link_drop_after in a row, a fresh
    association; after reset_after_drops of those, a reset. Any answer ends the run: the link
    carries, and whatever is wrong a reconnect would not mend."""
    dev._silent += 1
    after = dev.config.get("link_drop_after", _LINK_DROP_AFTER)
    if not after or dev.link_drop is None or dev._silent % after:
        return
    drops = dev._silent // after
    limit = dev.config.get("reset_after_drops", _RESET_AFTER_DROPS)
    if limit and drops >= limit:
        reset(dev, "%d Wi-Fi reconnects brought no uplink back" % (drops - 1))
        return
    dev._warn("[kpn] %d uplinks got no answer while Wi-Fi is up: reconnecting" % after)
    try:
        dev.link_drop()
    except Exception as e:  # a driver that cannot even disconnect: the next poll sees it
        dev._warn("[kpn] Wi-Fi drop failed: %s" % (e,))


def reset(dev, why):
    """Restart the board: the last resort of a device nobody can reach. Every reading is on
    flash in the outbox, so the next boot sends it."""
    dev._error("[kpn] resetting the board: %s; the outbox keeps every reading" % why)
    restart = dev.reset
    if restart is None:
        import machine

        restart = getattr(machine, "reset", None)
    dev._silent = 0
    from kpnthings.compat import ticks_ms

    dev._accepted_at = ticks_ms()  # where a port cannot reset, count again from now
    if restart is None:
        dev._warn("[kpn] this port cannot reset: going on")
        return
    restart()
