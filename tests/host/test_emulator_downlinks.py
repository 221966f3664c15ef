"""The emulator's downlinks: queued, delivered once each in order, even to concurrent uplinks, and
the device's answer to each command read back from a later uplink (issue 19)."""

import json

import pytest
from _emulator_support import OTHER_UUID, STRANGER, UUID, Api, last_message, pack

from kpnthings_tools import emulator as emu_mod

# -- downlinks -------------------------------------------------------------------------------


def test_queued_downlink_is_delivered_once(api):
    status, data = api.queue(UUID, b'[{"n":"led","vb":true}]')
    assert status == 201
    entry = json.loads(data)
    assert entry["state"] == "queued" and entry["delivered_at"] is None

    # A rejected uplink does not consume the downlink.
    assert api.uplink(pack(), token="0" * 64)[0] == 401

    status, data = api.uplink(pack())
    assert status == 200
    downlink = json.loads(data)
    assert downlink == [{"bn": "urn:dev:DVNUUID:%s:" % UUID, "n": "led", "vb": True}]
    assert data == json.dumps(downlink, separators=(",", ":")).encode()

    assert api.uplink(pack()) == (200, b"")
    queue = api.get("/api/devices/%s/downlinks" % UUID)
    assert [d["state"] for d in queue] == ["delivered"]
    assert queue[0]["delivered_at"] is not None
    delivering = [m for m in api.get("/api/devices/%s/messages" % UUID) if m["downlink_id"]]
    assert len(delivering) == 1
    assert delivering[0]["id"] == queue[0]["message_id"]
    assert json.loads(delivering[0]["response_body"]) == downlink


def test_downlinks_go_out_one_per_uplink_in_order(api):
    for value in ("1", "0"):
        assert api.queue(UUID, ('[{"n":"led","v":%s}]' % value).encode())[0] == 201
    assert api.queue(OTHER_UUID, b'[{"n":"led","v":1}]')[0] == 201
    first = json.loads(api.uplink(pack())[1])
    second = json.loads(api.uplink(pack())[1])
    assert (first[0]["v"], second[0]["v"]) == (1, 0)
    assert api.uplink(pack()) == (200, b"")
    # The other device's downlink is still waiting for it.
    assert api.get("/api/devices/%s" % OTHER_UUID)["queued_downlinks"] == 1


def test_downlink_with_own_base_name_is_kept(api):
    body = ('[{"bn":"urn:dev:DVNUUID:%s:","n":"pwm","v":0.5}]' % UUID).encode()
    assert api.queue(UUID, body)[0] == 201
    assert api.uplink(pack())[1] == body


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"n":"led","vb":true}',
        b'[{"n":"led","v":"on"}]',
        ('[{"bn":"urn:dev:DVNUUID:%s:","n":"led","vb":true}]' % OTHER_UUID).encode(),
    ],
)
def test_invalid_downlink_is_refused(api, body):
    status, _ = api.queue(UUID, body)
    assert status == 400
    assert api.get("/api/devices/%s/downlinks" % UUID) == []


def test_downlink_for_unknown_device_is_404(api):
    assert api.queue(STRANGER, b'[{"n":"led","vb":true}]')[0] == 404


def test_python_api_can_queue_a_malformed_downlink_on_purpose(server, api):
    server.emulator.queue_downlink(UUID, b'[{"n":', validate=False)
    assert api.uplink(pack()) == (200, b'[{"n":')


def test_concurrent_uplinks_each_downlink_goes_out_once(server):
    import threading

    for i in range(5):
        server.emulator.queue_downlink(UUID, ('[{"n":"led","v":%d}]' % (i % 2)).encode())
    delivered, failures = [], []

    def device():
        client = Api(server)
        try:
            for _ in range(5):
                status, data = client.uplink(pack())
                if status != 200:
                    failures.append(status)
                elif data:
                    delivered.append(data)
        finally:
            client.close()

    threads = [threading.Thread(target=device) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert len(delivered) == 5
    queue = server.emulator.downlinks(UUID)
    assert [d["state"] for d in queue] == ["delivered"] * 5
    assert len({d["message_id"] for d in queue}) == 5
    assert len(server.emulator.messages(UUID, limit=1000)) == 40


# -- downlink answers (issue 19) ------------------------------------------------------------


def answered(text, dvnuuid=UUID):
    """An uplink that carries the device's answer to a downlink, as the firmware writes it."""
    return pack(dvnuuid, '{"n":"temperature","v":21},{"n":"downlink","vs":"%s"}' % text)


def queue_entry(api, downlink_id):
    return next(d for d in api.get("/api/devices/%s/downlinks" % UUID) if d["id"] == downlink_id)


def test_each_command_of_a_downlink_gets_the_devices_answer(api, logs):
    body = b'[{"n":"led","vb":true},{"n":"relay","vb":true},{"n":"fan","vs":"banana"}]'
    entry = json.loads(api.queue(UUID, body)[1])
    assert entry["result"] == "queued" and entry["answer"] is None
    assert [c["n"] for c in entry["commands"]] == ["led", "relay", "fan"]
    assert api.uplink(pack())[0] == 200  # delivers it
    entry = queue_entry(api, 1)
    assert entry["state"] == "delivered" and entry["result"] == "waiting"
    text = "led=applied; relay=refused: unknown actuator; fan=refused: wrong type: vs given"
    assert api.uplink(answered(text))[0] == 200
    entry = queue_entry(api, 1)
    assert entry["result"] == "partly refused" and entry["answer"] == text
    assert entry["answer_message_id"] == last_message(api, UUID)["id"]
    assert [(c["n"], c["value"], c["result"], c["reason"]) for c in entry["commands"]] == [
        ("led", True, "applied", ""),
        ("relay", True, "refused", "unknown actuator"),
        ("fan", "banana", "refused", "wrong type: vs given"),
    ]
    assert any("answer='led=applied; relay=refused" in line for line in logs), logs


def test_a_downlink_nobody_answers_is_said_so_after_a_few_uplinks(api):
    api.queue(UUID, b'[{"n":"led","vb":true}]')
    api.uplink(pack())
    for seen in range(1, emu_mod.ANSWER_UPLINKS):
        api.uplink(pack())
        api.uplink(pack(), token="0" * 64)  # refused uplinks do not count
        entry = queue_entry(api, 1)
        assert (entry["result"], entry["uplinks_since"]) == ("waiting", seen)
    api.uplink(pack())
    entry = queue_entry(api, 1)
    assert entry["result"] == "never answered"
    assert entry["uplinks_since"] == emu_mod.ANSWER_UPLINKS
    assert entry["commands"][0]["result"] == "never answered"
    api.uplink(answered("led=applied"))  # too late: not this downlink's answer
    assert queue_entry(api, 1)["result"] == "never answered"


def test_an_answer_belongs_to_the_last_downlink_delivered_before_it(api):
    api.queue(UUID, b'[{"n":"led","vb":true}]')
    api.queue(UUID, b'[{"n":"door","vb":true}]')
    api.uplink(pack())  # delivers #1
    api.uplink(pack())  # no answer, delivers #2: #1 will never be answered now
    api.uplink(answered("door=refused: unknown actuator"))
    first, second = queue_entry(api, 1), queue_entry(api, 2)
    assert first["result"] == "never answered" and first["answer"] is None
    assert second["result"] == "refused"
    assert second["commands"][0]["reason"] == "unknown actuator"


def test_a_whole_downlink_refused_and_answers_only_counted(server, api):
    server.emulator.queue_downlink(UUID, b'[{"n":', validate=False)
    api.uplink(pack())
    api.uplink(answered("refused: not JSON"))
    entry = queue_entry(api, 1)
    assert entry["result"] == "refused" and entry["commands"] == []
    body = json.dumps([{"n": "x%d" % i, "vb": True} for i in range(5)]).encode()
    api.queue(UUID, body)
    api.uplink(pack())
    api.uplink(answered("x0=refused: unknown actuator; x1=applied; and 3 more"))
    entry = queue_entry(api, 2)
    assert [c["result"] for c in entry["commands"]] == ["refused", "applied"] + [
        "answered, not shown"
    ] * 3
    assert entry["result"] == "partly refused"


def test_parse_answer_reads_every_form_the_firmware_writes():
    items, more = emu_mod.parse_answer(
        "led=applied; =refused: unknown actuator; urn:dev:DVNUUID:x:led=refused: not for this"
        " device; fan=refused: out of range: v must be within [0, 100], got 500; and 12 more"
    )
    assert more == 12
    assert [(i["n"], i["result"], i["reason"]) for i in items] == [
        ("led", "applied", ""),
        ("", "refused", "unknown actuator"),
        ("urn:dev:DVNUUID:x:led", "refused", "not for this device"),
        ("fan", "refused", "out of range: v must be within [0, 100], got 500"),
    ]
    assert emu_mod.parse_answer("refused: not a SenML pack; x") == (
        [{"n": None, "result": "refused", "reason": "not a SenML pack; x"}],
        0,
    )
    assert emu_mod.parse_answer("") == ([], 0)
