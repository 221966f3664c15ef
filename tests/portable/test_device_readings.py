"""Readings the device cannot send: one too large for any pack, one the outbox refuses, a full
flash, one refused when it is taken (NaN, a bad name), and a stored one the pack writer refuses:
each dead-lettered or dropped alone, with a log line, never wedging the queue (issue 17 #3)."""

import os

from _device_support import NOW, Board, MemOutbox, Result, make, values

from _support import Skip


def test_reading_too_large_for_any_pack_is_dead_lettered_not_stuck():
    try:
        import kpnthings.batch  # noqa: F401
    except ImportError:
        raise Skip("needs kpnthings.batch") from None
    box = MemOutbox()
    box.append({"n": "note", "vs": "x" * 300})
    dev, tr, _, logs, _ = make(outbox=box)
    dev.max_body = 250
    dev.cycle()
    assert [r["n"] for r in box.dead] == ["note"]
    assert "[kpn] reading note larger than max_body: dead-lettered" in logs
    assert len(box) == 0 and len(tr.bodies) >= 1


class FlakyOutbox(MemOutbox):
    full = False

    def extend(self, records):
        if self.full:
            raise OSError(28)  # ENOSPC: flash full
        refused = []
        for rec in records:
            if rec["n"] == "counter":  # what OutboxError is
                refused.append((rec, ValueError("record counter is invalid")))
            else:
                self.append(rec)
        return refused


def test_a_full_flash_costs_the_store_not_the_send():
    box = FlakyOutbox()
    box.full = True
    dev, tr, _, logs, _ = make(outbox=box)
    dev.cycle()
    sent = values(tr.pack(0))
    assert sent["temperature"] == 21.5 and sent["door"] is True and sent["counter"] == 7
    failed = [line for line in logs if line.startswith("[kpn] outbox append failed (")]
    assert len(failed) == 1 and failed[0].endswith(": 3 readings not stored"), logs
    assert len(box) == 0


def test_a_reading_the_outbox_refuses_is_dropped_and_logged_the_others_go():
    box = FlakyOutbox()
    dev, tr, _, logs, _ = make(outbox=box)
    dev.cycle()
    sent = values(tr.pack(0))
    assert sent["temperature"] == 21.5 and sent["door"] is True
    assert "counter" not in sent
    assert "[kpn] reading counter dropped: record counter is invalid" in logs
    assert dev.refused == 1
    assert len(box) == 0


def test_a_cycle_stores_its_readings_in_one_write():
    # Issue 17, finding 6: on LittleFS each write to a file costs about one block erase.
    box = MemOutbox()
    dev, _, _, _, _ = make(Result(None, "retry", None, "refused"), outbox=box)
    dev.cycle()  # three readings, one send that fails: all three stay queued
    dev.cycle()  # backing off: stored without a send
    assert len(box) == 6
    assert box.writes == 2


class BadReadings(Board):
    def read_sensors(self):
        inf = float("inf")
        return [
            ("temperature", float("nan"), "Cel"),
            ("pressure", inf, "Pa"),
            ("depth", -inf, "m"),
            ("bad name!", 1, None),
            ("", 2, None),
            ("_hidden", 3, None),
            ("counter", 7, None),
        ]


def test_a_reading_that_cannot_be_sent_is_refused_when_taken_and_the_rest_go():
    # Issue 17 #3: a NaN (a driver, a float32 overflow) or a bad name was stored, then every
    # pack build raised and nothing went up for hours.
    from kpnthings.device import reading_record

    for name, value in (("t", float("nan")), ("t", float("inf")), ("a b", 1), ("", 1), ("-x", 1)):
        try:
            reading_record(name, value)
        except ValueError:
            continue
        raise AssertionError("accepted %r = %r" % (name, value))
    assert reading_record("a-b:c.d/e_f", 1.5) == {"n": "a-b:c.d/e_f", "v": 1.5}
    dev, tr, _, logs, _ = make(board=BadReadings())
    dev.cycle()
    dev.cycle()
    assert [r["n"] for r in tr.pack(1) if "n" in r] == ["counter"]
    assert len([x for x in logs if x.startswith("[kpn] reading skipped")]) == 12
    assert dev.refused == 12 and "[kpn] reading skipped (12 since boot): " in logs[-2], logs


def test_a_stored_reading_the_writer_refuses_is_dead_lettered_alone():
    # Issue 17 #3, second half: a record already on flash (an older firmware stored it) that
    # the writer refuses costs itself only; the readings before and after it are sent.
    from kpnthings.compat import ticks_ms
    from kpnthings.outbox import Outbox

    where = "/tmp/kpn-test-refused-%d" % ticks_ms()
    box = Outbox(where, max_bytes=16384)
    try:
        for i in range(5):
            box.append({"n": "early", "v": i, "t": NOW - 600 + i})
        box.append({"n": "broken", "v": float("nan"), "t": NOW - 300})
        box.append({"n": "late", "v": 1, "t": NOW - 200})
        dev, tr, _, logs, _ = make(outbox=box)
        dev.cycle()
        sent = [[r.get("n") for r in tr.pack(i)] for i in range(len(tr.bodies))]
        names = [n for pack in sent for n in pack if n]
        assert names.count("early") == 5 and names.count("late") == 1, sent
        assert "broken" not in names
        assert names[-3:] == ["temperature", "door", "counter"]  # this cycle's readings too
        assert len(box) == 0 and box.dead_count == 1
        assert any(x.startswith("[kpn] stored reading refused") for x in logs), logs
    finally:
        for name in os.listdir(where):
            os.remove(where + "/" + name)
        os.rmdir(where)
