"""Readings belong to the device that took them (issue 19, item 1): the outbox folder names its
owner, and a folder another identity filled is moved aside at boot and reported, never sent
under the new identity. If the config still holds that identity (previous_identities), its
readings go out under it at boot (kpnthings.outbox_handover), bounded, and what is left waits
for the next boot; if not, they are counted in the new device's droppedReadings."""

import os

from _support import AcceptingKpn, KeptModules
from kpnthings import wiring
from kpnthings.compat import ticks_diff, ticks_ms

A = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"
B = "1c8f9d4f-6b3e-4d2f-8a7b-3e4f5a6b7c8d"
SECRET_A = "Ak3m9Qw2Zp7Rt5Ux8Vb1Nc4Hd6Jf0Lg2Sy"
SECRET_B = "Bq4n0Rx3Aq8Su6Vy9Wc2Od5Ie7Kg1Mh3Tz"


def _rm(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        os.remove(path + "/" + name)
    os.rmdir(path)


def _open(where, uuid, logs):
    return wiring.make_outbox({"dvnuuid": uuid, "outbox_dir": where}, logs.append)


def test_a_new_identity_never_sends_the_readings_another_one_queued():
    where = "/tmp/kpn-test-owner-%d" % ticks_ms()
    aside = where + "-" + A[:8]
    logs = []
    try:
        box = _open(where, A, logs)
        box.extend([{"n": "t", "v": i} for i in range(3)])
        assert logs == []
        assert len(_open(where, A, logs)) == 3 and logs == []  # the same device: its queue
        box = _open(where, B, logs)  # a new identity deployed over the old outbox
        assert len(box) == 0
        assert logs == [
            "[boot] outbox: 3 readings of device %s moved aside to %s; this device (%s) never"
            " sends them, and counts them in droppedReadings" % (A, aside, B)
        ], logs
        # Counted where the device reports what it lost: its next accepted uplink carries them.
        assert box.dropped == 3
        assert _open(where, B, logs).dropped == 3  # persisted, and counted once only
        assert len(logs) == 1, logs
        assert "owner" in os.listdir(aside) and len(os.listdir(where)) >= 1
        with open(aside + "/owner") as f:
            assert f.read() == A
        with open(where + "/owner") as f:
            assert f.read() == B
    finally:
        _rm(where)
        _rm(aside)


def test_an_outbox_from_before_owners_is_taken_over_as_it_is():
    from kpnthings.outbox import Outbox

    where = "/tmp/kpn-test-owner-old-%d" % ticks_ms()
    logs = []
    try:
        Outbox(where).append({"n": "t", "v": 1})  # an older firmware wrote no owner
        box = _open(where, A, logs)
        assert len(box) == 1 and logs == []
        with open(where + "/owner") as f:
            assert f.read() == A
    finally:
        _rm(where)


def test_a_second_move_aside_gets_a_folder_of_its_own():
    where = "/tmp/kpn-test-owner-twice-%d" % ticks_ms()
    logs = []
    try:
        _open(where, A, logs).append({"n": "t", "v": 1})
        _open(where, B, logs)
        _open(where, A, logs).append({"n": "t", "v": 2})
        _open(where, B, logs)
        assert len(logs) == 3, logs  # A's, B's (empty) and A's again, each moved aside
        assert logs[2].endswith(
            "%s-%s-2; this device (%s) never sends them, and counts them in droppedReadings"
            % (where, A[:8], B)
        )
    finally:
        _rm(where)
        for suffix in ("-" + A[:8], "-" + B[:8], "-%s-2" % A[:8]):
            _rm(where + suffix)


# -- an earlier identity the config still holds: its readings go out under it -----------------


class _Kpn(AcceptingKpn):
    """The uplink outbox_handover makes for an earlier identity, faked: accepts every pack."""

    def __init__(self, made):
        AcceptingKpn.__init__(self)
        self.made = made
        self.closed = False

    def close(self):
        self.closed = True


def _cfg(where, uuid, olds=(), **more):
    cfg = {
        "dvnuuid": uuid,
        "secret": SECRET_B,
        "outbox_dir": where,
        "url": "http://127.0.0.1:9",  # nothing listens there: refused at once
        "timeout_s": 2,
        "tls_insecure": False,
        "ca_file": None,
        "transport": "http",
    }
    if olds:
        cfg["previous_identities"] = [{"dvnuuid": A, "secret": SECRET_A}]
    cfg.update(more)
    return cfg


def _fake_uplinks(kpns):
    """outbox_handover with its uplink faked: each one made is appended to `kpns`."""
    from kpnthings import outbox_handover

    def make(cfg, uuid, secret, transport):
        kpns.append(_Kpn((uuid, secret, transport)))
        return kpns[-1]

    outbox_handover._client = make
    return outbox_handover


def _queue(where, uuid, n, logs):
    box = wiring.make_outbox(_cfg(where, uuid), logs.append)
    box.extend([{"n": "t", "u": "Cel", "v": i, "t": 1700000000 + i} for i in range(n)])
    return box


def _cleanup(where):
    _rm(where)
    for suffix in ("-" + A[:8], "-" + A[:8] + "-2", "-" + B[:8]):
        _rm(where + suffix)


def test_an_earlier_identity_the_config_holds_sends_its_own_readings_at_boot():
    where = "/tmp/kpn-test-handover-%d" % ticks_ms()
    aside = where + "-" + A[:8]
    logs = []
    kpns = []
    try:
        with KeptModules():
            _queue(where, A, 3, logs)
            _fake_uplinks(kpns)
            marker = object()
            box = wiring.make_outbox(_cfg(where, B, olds=True), logs.append, marker)
        assert len(box) == 0 and box.dropped == 0  # sent, not lost: nothing to count
        [kpn] = kpns
        assert kpn.made == (A, SECRET_A, marker) and kpn.closed  # A's secret, B's server
        [pack] = kpn.packs
        assert pack[0]["bn"] == "urn:dev:DVNUUID:%s:" % A and pack[0]["bt"] == 1700000000
        assert [r["v"] for r in pack] == [0, 1, 2]
        assert logs[0] == (
            "[boot] outbox: 3 readings of device %s moved aside to %s, to go out under that"
            " identity (previous_identities)" % (A, aside)
        ), logs
        assert logs[1] == "[boot] %s: sending 3 readings under device %s (previous_identities)" % (
            aside,
            A,
        )
        assert logs[2].startswith("[kpn] uplink 0: 3 readings + 0 states"), logs
        assert logs[3] == "[boot] %s: every reading of device %s sent; folder removed" % (
            aside,
            A,
        )
        assert len(logs) == 4, logs
        assert A[:8] not in " ".join(os.listdir(where.rsplit("/", 1)[0]))  # the folder is gone
        with open(where + "/owner") as f:
            assert f.read() == B
    finally:
        _cleanup(where)


def test_a_dead_network_keeps_them_for_the_next_boot_without_holding_this_one():
    where = "/tmp/kpn-test-handover-dead-%d" % ticks_ms()
    aside = where + "-" + A[:8]
    logs = []
    try:
        with KeptModules():
            _queue(where, A, 3, logs)
            start = ticks_ms()
            box = wiring.make_outbox(_cfg(where, B, olds=True), logs.append)  # a real Client
            took = ticks_diff(ticks_ms(), start)
        assert box is not None and len(box) == 0 and box.dropped == 0
        assert took < 5000, took
        assert logs[-1].startswith(
            "[boot] %s: 3 readings of device %s wait for a later boot (last answer: retry"
            % (aside, A)
        ), logs
        from kpnthings.outbox import Outbox

        assert len(Outbox(aside)) == 3  # kept whole
        # The next boot, with the network back, sends them; the first one took none.
        kpns = []
        with KeptModules():
            _fake_uplinks(kpns)
            wiring.make_outbox(_cfg(where, B, olds=True), logs.append)
        assert [r["v"] for r in kpns[0].packs[0]] == [0, 1, 2]
        assert logs[-1].endswith("sent; folder removed"), logs
    finally:
        _cleanup(where)


def test_without_a_network_nothing_is_tried_and_nothing_is_lost():
    where = "/tmp/kpn-test-handover-down-%d" % ticks_ms()
    aside = where + "-" + A[:8]
    logs = []
    kpns = []
    try:
        with KeptModules():
            _queue(where, A, 2, logs)
            _fake_uplinks(kpns)
            wiring.make_outbox(
                _cfg(where, B, olds=True), logs.append, None, None, lambda: False
            )  # link_ready: Wi-Fi is down
        assert kpns == []
        said = "[boot] %s: 2 readings of device %s wait for a later boot (no network link)"
        assert logs[-1] == said % (aside, A), logs
    finally:
        _cleanup(where)


def test_a_long_backlog_goes_in_many_packs_within_the_boots_time():
    where = "/tmp/kpn-test-handover-long-%d" % ticks_ms()
    logs = []
    kpns = []
    fed = []
    try:
        with KeptModules():
            _queue(where, A, 60, logs)
            _fake_uplinks(kpns)
            # 256-byte bodies: far more packs than one cycle sends (flush's 4 at most)
            cfg = _cfg(where, B, olds=True, max_body=256)
            wiring.make_outbox(cfg, logs.append, None, lambda: fed.append(1))
        packs = kpns[0].packs
        assert len(packs) > 4, len(packs)
        assert [r["v"] for p in packs for r in p] == list(range(60))  # each once, in order
        assert all(p[0]["bn"] == "urn:dev:DVNUUID:%s:" % A for p in packs)
        assert len(fed) >= len(packs) // 4, (len(fed), len(packs))  # the watchdog was fed
        # With its time for this boot spent, nothing goes and everything waits.
        kpns[:] = []
        _queue(where, A, 2, logs)  # A again: the folder is moved aside once more
        with KeptModules():
            handover = _fake_uplinks(kpns)
            send = handover.send
            handover.send = lambda *args: send(*args, timeout_ms=0)
            wiring.make_outbox(_cfg(where, B, olds=True), logs.append)
        assert kpns == [] and logs[-1].endswith("(this boot's time for them is up)"), logs
    finally:
        _cleanup(where)


def test_over_mqtt_an_earlier_identity_is_only_moved_aside_and_counted():
    # Another identity is another MQTT session: the readings are never sent, only counted.
    where = "/tmp/kpn-test-handover-mqtt-%d" % ticks_ms()
    logs = []
    kpns = []
    try:
        with KeptModules():
            _queue(where, A, 2, logs)
            _fake_uplinks(kpns)
            box = wiring.make_outbox(_cfg(where, B, olds=True, transport="mqtt"), logs.append)
        assert kpns == [] and box.dropped == 2
        assert logs[-1].endswith("never sends them, and counts them in droppedReadings"), logs
    finally:
        _cleanup(where)
