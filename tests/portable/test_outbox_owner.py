"""Readings belong to the device that took them (issue 19, item 1): the outbox folder names its
owner, and a folder another identity filled is moved aside at boot, counted and reported,
never sent under the new identity."""

import os

from kpnthings import wiring
from kpnthings.compat import ticks_ms

A = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"
B = "1c8f9d4f-6b3e-4d2f-8a7b-3e4f5a6b7c8d"


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
            " sends them" % (A, aside, B)
        ], logs
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
        assert logs[2].endswith("%s-%s-2; this device (%s) never sends them" % (where, A[:8], B))
    finally:
        _rm(where)
        for suffix in ("-" + A[:8], "-" + B[:8], "-%s-2" % A[:8]):
            _rm(where + suffix)
