"""The readings an earlier identity queued, sent under that identity at boot (issue 19, item 1).

A new config over an old outbox moves the old folder aside (kpnthings.outbox_owner). When
config.json still holds that identity in previous_identities, that module loads this one at
boot, only then, for the folders such identities own, and unloads it before the loop: a board
without one never holds or interns any of it.

Each folder goes out as the device's own outbox does, through kpnthings.flush (the same packs,
acks, dead letters and halving of a refused pack), for a Device made for this purpose with the
old identity's base name and a kpnthings.client.Client signing with its secret, to the server
of `transport` (whose looked-up address it shares). Bounded: at most `timeout_ms` (30 s) for
all folders together, stopping at the first pack that is neither accepted nor refused as
malformed (a dead network costs one request's timeout_s), each request within timeout_s and the
watchdog fed between packs. What is left waits in its folder for the next boot; a folder whose
readings and drop count are all delivered is removed.

Every name in this file is interned for good once it is loaded, and a board has room for a few
more only: one function, parameters and attributes named as elsewhere in the firmware, and no
string constant of 10 characters or fewer that the firmware does not hold already.
"""


def send(cfg, entries, log, transport=None, feed=None, link_ready=None, timeout_ms=30000):
    """Send each folder of `entries`, [(folder, dvnuuid)], under the identity that owns it (its
    secret from cfg["previous_identities"]), within `timeout_ms` for them all."""
    import os

    from kpnthings import flush
    from kpnthings.compat import ticks_diff, ticks_ms
    from kpnthings.device import ACCEPTED, MALFORMED, Device
    from kpnthings.outbox import Outbox

    start = ticks_ms()
    secrets = {}
    for old in cfg["previous_identities"]:
        secrets[old["dvnuuid"]] = old["secret"]
    for where, uuid in entries:
        box = Outbox(where, cfg.get("outbox_max_bytes"), cfg.get("dead_max_bytes"))
        why = None
        if len(box) or box.dropped:
            if link_ready is not None and not link_ready():
                why = "no network link"
            elif ticks_diff(ticks_ms(), start) >= timeout_ms:
                why = "this boot's time for them is up"
            else:
                log(
                    "[boot] %s: sending %d readings under device %s (previous_identities)"
                    % (where, len(box), uuid)
                )
                client = _client(cfg, uuid, secrets[uuid], transport)
                # No board and no actuators: the packs hold the stored readings (and the
                # folder's own droppedReadings), under the old identity's base name; no health
                # records, which are this board's under its own (docs/health.md).
                dev = Device(
                    dict(cfg, dvnuuid=uuid, health_every=0),
                    None,
                    client,
                    None,
                    outbox=box,
                    log=log,
                    feed=feed,
                )
                try:
                    while len(box) or box.dropped:
                        if ticks_diff(ticks_ms(), start) >= timeout_ms:
                            why = "this boot's time for them is up"
                            break
                        if feed is not None:
                            feed()  # each pack's request then has the watchdog's whole timeout
                        before = len(box) + box.dropped
                        result = flush._send_outbox(dev, 0, [])  # a few packs, as one cycle
                        if result is None:  # too close to the watchdog, or no room in max_body
                            why = "nothing could be sent"
                            break
                        if result.outcome != ACCEPTED and result.outcome != MALFORMED:
                            error = result.error
                            why = "last answer: %s%s" % (
                                result.outcome,
                                " (%s)" % error if error else "",
                            )
                            break
                        if len(box) + box.dropped >= before:
                            why = "the last packs took none of them"
                            break
                finally:
                    client.close()
                    dev.rest()  # the pack writer and its buffer go; the loop loads its own
        if why is not None:
            log(
                "[boot] %s: %d readings of device %s wait for a later boot (%s)"
                % (where, len(box), uuid, why)
            )
            continue
        dead = box.dead_count
        box = None
        for name in os.listdir(where):
            os.remove(where + "/" + name)
        os.rmdir(where)
        log(
            "[boot] %s: every reading of device %s sent; folder removed%s"
            % (where, uuid, " with its %d dead letters" % dead if dead else "")
        )


def _client(cfg, dvnuuid, secret, transport):
    """The uplink for an earlier identity (tests replace it)."""
    from kpnthings.client import Client
    from kpnthings.wiring import _ca_paths

    return Client(
        dvnuuid,
        secret,
        cfg["url"],
        timeout=cfg["timeout_s"],
        cadata=_ca_paths(cfg),
        insecure=cfg["tls_insecure"],
        addresses=getattr(transport, "addresses", None),
    )
