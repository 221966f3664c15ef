"""The local KPN Things emulator: what it stores and lists (messages and the downlink queue across
a restart, paging, devices and their names, duplicates, how each message's times were obtained).
Its other subjects have their own files: test_emulator_rules.py (the response rules in order),
test_emulator_downlinks.py, test_emulator_http.py (framing, limits, TLS) and
test_emulator_secrecy.py (secrets and the API token). Fixtures: conftest.py."""

import json

from _emulator_support import OTHER_SECRET, OTHER_UUID, SECRET, UUID, Api, last_message, pack

from kpnthings import auth
from kpnthings_tools import emulator as emu_mod
from kpnthings_tools.emulator import Emulator

# -- storage ---------------------------------------------------------------------------------


def test_messages_and_queue_survive_a_restart(tmp_path):
    db = tmp_path / "persist.sqlite3"
    with Emulator(db, {UUID: SECRET}, log=lambda line: None).serve() as srv:
        client = Api(srv)
        assert client.uplink(pack())[0] == 200
        assert client.uplink(pack(), token="0" * 64)[0] == 401
        assert client.queue(UUID, b'[{"n":"led","vb":false}]')[0] == 201
        before = client.get("/api/devices/%s/messages" % UUID)
        client.close()
    with Emulator(db, {UUID: SECRET}, log=lambda line: None).serve() as srv:
        client = Api(srv)
        assert client.get("/api/devices/%s/messages" % UUID) == before
        assert [m["status"] for m in before] == [200, 401]
        status, data = client.uplink(pack())
        assert (status, json.loads(data)[0]["vb"]) == (200, False)
        client.close()
    # Secrets are never stored.
    assert SECRET.encode() not in db.read_bytes()


def test_since_and_limit_page_the_log(api):
    for _ in range(4):
        api.uplink(pack())
    everything = api.get("/api/devices/%s/messages" % UUID)
    ids = [m["id"] for m in everything]
    assert ids == sorted(ids) and len(ids) == 4
    assert [m["id"] for m in api.get("/api/devices/%s/messages?limit=2" % UUID)] == ids[2:]
    newer = api.get("/api/devices/%s/messages?since=%d" % (UUID, ids[1]))
    assert [m["id"] for m in newer] == ids[2:]


def test_byte_values_are_listed_as_base64url(api):
    api.uplink(pack(records='{"n":"raw","vd":"aG9paG9pAA"}'))
    record = last_message(api, UUID)["records"][0]
    assert record["vd"] == "aG9paG9pAA"


def test_devices_listing_shows_state_but_no_secret(api):
    api.uplink(pack(), token="0" * 64)
    devices = api.get("/api/devices")
    assert [d["dvnuuid"] for d in devices] == sorted([UUID, OTHER_UUID])
    mine = next(d for d in devices if d["dvnuuid"] == UUID)
    assert mine["last_outcome"] == "unauthorized" and mine["last_token_check"] == "mismatch"
    assert mine["last_seen"] is not None and mine["messages"] == 1
    other = next(d for d in devices if d["dvnuuid"] == OTHER_UUID)
    assert other["last_seen"] is None and other["messages"] == 0
    for device in devices:
        assert "secret" not in device


def test_devices_carry_their_names(tmp_path):
    emu = Emulator(
        tmp_path / "emu.sqlite3",
        [(UUID, SECRET, "kitchen"), (OTHER_UUID, OTHER_SECRET)],
        log=lambda line: None,
    )
    with emu.serve("127.0.0.1", 0) as srv:
        api = Api(srv)
        names = {d["dvnuuid"]: d["name"] for d in api.get("/api/devices")}
        assert names == {UUID: "kitchen", OTHER_UUID: None}
        assert api.get("/api/devices/%s" % UUID)["name"] == "kitchen"
        api.close()


# -- duplicates and time sources ------------------------------------------------------------


def test_duplicates_are_detected_counted_and_logged(api, logs):
    # Issue 18, item 3: delivery is at least once; a pack sent again (a crash between the
    # send and its ack) holds records already stored, same device, name and time.
    timed = pack(records='{"n":"t","v":1},{"n":"h","t":60,"v":2}')
    assert api.uplink(timed)[0] == 200
    assert last_message(api)["duplicates"] == 0
    assert api.uplink(timed)[0] == 200
    assert last_message(api)["duplicates"] == 2
    assert any("holds 2 records already stored" in line for line in logs), logs
    # Untimed records take the arrival time: never counted as duplicates of each other.
    untimed = ('[{"bn":"urn:dev:DVNUUID:%s:","n":"t","v":1}]' % UUID).encode()
    assert api.uplink(untimed)[0] == 200
    assert api.uplink(untimed)[0] == 200
    assert last_message(api)["duplicates"] == 0
    # Another device's records of the same name and time are its own.
    other = pack(OTHER_UUID, '{"n":"t","v":1},{"n":"h","t":60,"v":2}')
    assert api.uplink(other, secret=OTHER_SECRET)[0] == 200
    assert last_message(api)["duplicates"] == 0


def test_a_duplicate_sent_in_the_second_its_reading_was_taken_is_counted(tmp_path):
    # The common case: a reading taken at T, sent at once, its answer lost, sent again on a new
    # connection a few ms later. Both arrive in second T; the device dated the records itself,
    # so they are the same readings. (Counted 0 while a record whose time was the arrival
    # second was taken for an undated one.)
    emu = Emulator(tmp_path / "emu.sqlite3", {UUID: SECRET}, log=lambda line: None)
    body = pack(records='{"n":"t","v":1},{"n":"h","t":0,"v":2}')
    token = auth.message_token(body, SECRET)
    assert emu.ingest(body, token, now=1700000000.1)[2]["duplicates"] == 0
    assert emu.ingest(body, token, now=1700000000.4)[2]["duplicates"] == 2
    # Undated records, and records dated relative to "now", take the arrival time: never
    # counted, even when they arrive in the second some device-dated record carries.
    rel = ('[{"bn":"urn:dev:DVNUUID:%s:","n":"t","t":-1,"v":1},{"n":"u","v":1}]' % UUID).encode()
    token = auth.message_token(rel, SECRET)
    for now in (1700000001.2, 1700000001.5, 1700000000.3):
        assert emu.ingest(rel, token, now=now)[2]["duplicates"] == 0
    assert emu_mod.device_dated(body) == [True, True]
    assert emu_mod.device_dated(rel) == [False, False]


def test_how_each_messages_times_were_obtained_is_listed_per_message_and_device(api, tmp_path):
    # Issue 18, item 5: the firmware ends a pack whose times are not all NTP's with
    # timeQuality (1: dated from ticks, 2: an RTC's) and a pack without times with
    # undatedReadings N. The emulator says so per message and per device.
    untimed = '[{"bn":"urn:dev:DVNUUID:%s:","n":"t","v":1},{"n":"t","v":2},%s]'
    sent = [
        (pack(records='{"n":"t","v":1}'), "ntp", 0),
        (pack(records='{"n":"t","v":1},{"n":"timeQuality","v":1}'), "ticks", 0),
        (pack(records='{"n":"t","v":1,"t":9},{"n":"timeQuality","v":2,"t":9}'), "rtc", 0),
        ((untimed % (UUID, '{"n":"undatedReadings","v":2}')).encode(), "none", 2),
        ((untimed % (UUID, '{"n":"undatedReadings","v":2}')).encode(), "none", 2),
    ]
    for body, source, undated in sent:
        assert api.uplink(body)[0] == 200
        message = last_message(api, UUID)
        assert (message["time_source"], message["undated"]) == (source, undated), message
        device = api.get("/api/devices/" + UUID)
        assert device["time_source"] == source
    assert api.get("/api/devices/" + UUID)["undated_readings"] == 4
    assert api.uplink(pack(), token="0" * 64)[0] == 401  # refused: nothing to say
    assert last_message(api, UUID)["time_source"] is None
    other = api.get("/api/devices/" + OTHER_UUID)
    assert other["time_source"] is None and other["undated_readings"] == 0
    # Read from the pack as sent: its own bn, an unknown quality, a note of another device.
    bn = "urn:dev:DVNUUID:x:"
    notes = emu_mod.time_notes
    assert notes(bn, b'[{"bn":"urn:dev:DVNUUID:x:","n":"a","v":1}]') == ("none", 0)
    assert notes(bn, b'[{"bn":"urn:dev:DVNUUID:x:","bt":5,"n":"timeQuality","v":7}]') == (
        "unknown",
        0,
    )
    assert notes(bn, b'[{"bn":"urn:dev:DVNUUID:y:","bt":5,"n":"timeQuality","v":2}]')[0] == "ntp"
