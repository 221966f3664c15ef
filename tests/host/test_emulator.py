"""The local KPN Things emulator: response rules in order, downlinks, limits, storage, secrecy."""

import http.client
import json
import socket
import ssl
from pathlib import Path

import pytest

from kpnthings import auth
from kpnthings_tools import emulator as emu_mod
from kpnthings_tools.emulator import Emulator

DATA = Path(__file__).resolve().parent.parent / "data"
INGEST = "/ingestion/ip/senml/v1"
# Vector 3 of tests/data/token.json: a KPN-shaped pack with a known token.
VECTOR = json.loads((DATA / "token.json").read_text())["vectors"][2]
UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = VECTOR["secret"]
OTHER_UUID = "0b7d4a6e-93f2-4c1a-8d5e-2f6a7b8c9d0e"
OTHER_SECRET = "Zq8XbT4mN2vR7cK1pL9sW3yH6jF0dG5aE8uI"
STRANGER = "11111111-2222-4333-8444-555555555555"


def pack(dvnuuid=UUID, records='{"n":"temperature","u":"Cel","v":21.5}'):
    return ('[{"bn":"urn:dev:DVNUUID:%s:","bt":1700000000},%s]' % (dvnuuid, records)).encode()


class Api:
    """A keep-alive HTTP client that remembers every response, to scan them for secrets."""

    def __init__(self, server):
        self.server = server
        self.seen = []
        self.conn = self._connect()

    def _connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)

    def request(self, method, path, body=None, headers=None, record=True):
        self.conn.request(method, path, body, headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        if record:
            self.seen.append(str(resp.headers).encode() + data)
        if resp.will_close:
            self.conn.close()
            self.conn = self._connect()
        return resp, data

    def uplink(self, body, token=None, secret=SECRET, content_type="application/json", record=True):
        headers = {"Content-Type": content_type}
        if token is None:
            token = auth.message_token(body, secret)
        if token is not False:
            headers["Things-Message-Token"] = token
        resp, data = self.request("POST", INGEST, body, headers, record)
        return resp.status, data

    def get(self, path):
        resp, data = self.request("GET", path)
        assert resp.status == 200, (path, resp.status, data)
        assert resp.getheader("Content-Type") == "application/json"
        return json.loads(data)

    def queue(self, dvnuuid, body):
        resp, data = self.request("POST", "/api/devices/%s/downlinks" % dvnuuid, body)
        return resp.status, data

    def close(self):
        self.conn.close()


@pytest.fixture
def logs():
    return []


@pytest.fixture
def server(tmp_path, logs):
    emu = Emulator(
        tmp_path / "emu.sqlite3", {UUID: SECRET, OTHER_UUID: OTHER_SECRET}, log=logs.append
    )
    srv = emu.serve("127.0.0.1", 0)
    yield srv
    srv.shutdown()


@pytest.fixture
def api(server):
    client = Api(server)
    yield client
    client.close()


def last_message(api, dvnuuid=None):
    path = "/api/messages" if dvnuuid is None else "/api/devices/%s/messages" % dvnuuid
    return api.get(path)[-1]


# -- rule 0: accepted ------------------------------------------------------------------------


def test_known_token_vector_is_accepted_with_empty_body(api):
    body = VECTOR["body"].encode()
    status, data = api.uplink(body, token=VECTOR["token"])
    assert (status, data) == (200, b"")
    msg = last_message(api, UUID)
    assert msg["status"] == 200 and msg["outcome"] == "accepted"
    assert msg["token_check"] == "ok"
    assert msg["body"] == VECTOR["body"]
    assert msg["received_at"].endswith("Z") and msg["received_at"][:2] == "20"
    names = [r["n"] for r in msg["records"]]
    assert names == ["urn:dev:DVNUUID:%s:temperature" % UUID]
    assert msg["records"][0]["v"] == 21.5


# -- rule 1: 400 before anything else --------------------------------------------------------


@pytest.mark.parametrize(
    "body, why",
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),
        (b"{}", "non-empty SenML pack"),
        (b"[]", "non-empty SenML pack"),
        (b'[{"n":"temperature","v":1}]', "base name"),
        (('[{"bn":"urn:dev:DVNUUID:%s","n":"t","v":1}]' % UUID).encode(), "trailing colon"),
        (b'[{"bn":"urn:dev:DVNUUID:not-a-uuid:","n":"t","v":1}]', "valid UUID"),
        (('[{"bn":"urn:dev:IMEI:%s:","n":"t","v":1}]' % UUID).encode(), "urn:dev:DVNUUID"),
        (pack(records='{"n":"t","v":"text"}'), "not a valid SenML pack"),
        (pack(records='{"n":"t","v":1,"x_":2}'), "not a valid SenML pack"),
        (
            pack(records='{"bn":"urn:dev:DVNUUID:%s:","n":"t","v":1}' % OTHER_UUID),
            "same device",
        ),
    ],
)
def test_malformed_body_is_400_with_reason(api, body, why):
    # A valid token for a registered device does not rescue a malformed body.
    status, data = api.uplink(body)
    assert status == 400
    assert why in data.decode("utf-8")
    msg = last_message(api)
    assert (msg["status"], msg["outcome"], msg["records"]) == (400, "malformed", None)
    assert msg["token_check"] == "not checked"


def test_malformed_body_from_unknown_device_with_bad_token_is_400(api):
    status, _ = api.uplink(pack(STRANGER, '{"n":"t","v":"x"}'), token="0" * 64)
    assert status == 400


def test_malformed_message_is_filed_under_its_device(api):
    api.uplink(pack(records='{"n":"t","v":"text"}'))
    msg = last_message(api, UUID)
    assert msg["dvnuuid"] == UUID and msg["outcome"] == "malformed"
    info = api.get("/api/devices/%s" % UUID)
    assert info["last_outcome"] == "malformed" and info["last_status"] == 400


def test_wrong_content_type_is_400(api):
    status, data = api.uplink(pack(), content_type="text/plain")
    assert status == 400 and b"application/json" in data


# -- rule 2: 404 before the token ------------------------------------------------------------


def test_unknown_device_is_404_even_with_bad_token(api):
    status, data = api.uplink(pack(STRANGER), token="0" * 64)
    assert status == 404 and STRANGER.encode() in data
    msg = last_message(api)
    assert (msg["dvnuuid"], msg["outcome"], msg["token_check"]) == (
        STRANGER,
        "unknown device",
        "not checked",
    )
    # Not a registered device: no listing of its own, but visible in the global log.
    resp, _ = api.request("GET", "/api/devices/%s/messages" % STRANGER)
    assert resp.status == 404


def test_uppercase_uuid_in_base_name_is_the_same_device(api):
    body = pack(UUID.upper())
    assert api.uplink(body)[0] == 200
    assert last_message(api, UUID)["dvnuuid"] == UUID


# -- rule 3: 401 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token, check",
    [
        ("0" * 64, "mismatch"),
        ("short", "mismatch"),
        ("\u00e9" * 64, "mismatch"),
        (False, "missing"),
    ],
)
def test_bad_or_missing_token_is_401(api, token, check):
    if token == "\u00e9" * 64:
        token = token.encode("utf-8").decode("latin-1")  # what arrives over the wire
    status, _ = api.uplink(pack(), token=token)
    assert status == 401
    info = api.get("/api/devices/%s" % UUID)
    assert (info["last_outcome"], info["last_token_check"]) == ("unauthorized", check)


def test_token_of_another_device_is_401(api):
    assert api.uplink(pack(), secret=OTHER_SECRET)[0] == 401


def test_token_over_other_bytes_is_401(api):
    body = pack()
    token = auth.message_token(body.replace(b"21.5", b"21.6"), SECRET)
    assert api.uplink(body, token=token)[0] == 401


def test_token_uppercase_hex_is_refused(api):
    # KPN specifies lowercase hex; the emulator is strict so the firmware is.
    body = pack()
    assert api.uplink(body, token=auth.message_token(body, SECRET).upper())[0] == 401


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


# -- framing and limits ----------------------------------------------------------------------


def raw_exchange(server, request, read_timeout=5):
    with socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_body_above_default_limit_is_413_and_closes(api):
    body = b"[" + b" " * emu_mod.DEFAULT_MAX_BODY + b"]"
    resp, data = api.request("POST", INGEST, body, {"Content-Type": "application/json"})
    assert resp.status == 413
    assert resp.getheader("Connection") == "close"
    assert b"limit" in data
    assert last_message(api)["status"] == 413
    # The connection is replaced and the server still answers.
    assert api.uplink(pack())[0] == 200


def test_body_at_the_limit_is_read(tmp_path):
    body = pack()
    emu = Emulator(tmp_path / "db", {UUID: SECRET}, max_body=len(body), log=lambda line: None)
    with emu.serve() as srv:
        client = Api(srv)
        assert client.uplink(body)[0] == 200
        assert client.uplink(body + b" ")[0] == 413
        client.close()


def test_missing_content_length_is_411(server):
    reply = raw_exchange(
        server, b"POST " + INGEST.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 411 ")


def test_chunked_body_is_411(server):
    reply = raw_exchange(
        server,
        b"POST " + INGEST.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n2\r\n[]\r\n0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 411 ")
    assert b"Connection: close" in reply


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b"12, 12"])
def test_invalid_content_length_is_400(server, value):
    reply = raw_exchange(
        server,
        b"POST "
        + INGEST.encode()
        + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + value
        + b"\r\n\r\n[]",
    )
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_keep_alive_serves_many_requests_on_one_socket(api):
    api.request("GET", "/api/devices")
    sock = api.conn.sock
    for _ in range(5):
        resp, data = api.request(
            "POST",
            INGEST,
            pack(),
            {
                "Content-Type": "application/json",
                "Things-Message-Token": auth.message_token(pack(), SECRET),
            },
        )
        assert resp.status == 200
        assert resp.getheader("Content-Length") == str(len(data))
        assert not resp.will_close
    assert api.conn.sock is sock


def test_every_error_answer_has_content_length(server):
    reply = raw_exchange(
        server,
        b"POST " + INGEST.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n[]"
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    answers = reply.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"400", b"404"]
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        lengths = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
        assert lengths and int(lengths[0].split(b":")[1]) == len(body)


def test_unknown_paths_are_404(api):
    assert api.request("GET", "/api/nothing")[0].status == 404
    assert api.request("POST", "/ingestion/m2m/senml/v1", b"[]")[0].status == 404
    assert api.request("GET", "/api/devices/%s/messages" % "nope")[0].status == 404


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


# -- secrecy ---------------------------------------------------------------------------------


def test_secret_never_appears_in_api_output_or_logs(server, api, logs, capsys):
    # Exercise every endpoint and every outcome, including a device that sends its own secret
    # and a downlink that carries it.
    api.uplink(pack())
    api.uplink(pack(records='{"n":"leak","vs":"%s"}' % SECRET))
    api.uplink(pack(), token="0" * 64)
    api.uplink(pack(), token=False)
    api.uplink(pack(STRANGER))
    api.uplink(b"garbage " + SECRET.encode())
    api.uplink(b"[" + b" " * 20000 + b"]")
    api.queue(UUID, b"nope")
    api.queue(UUID, ('[{"n":"led","vs":"%s"}]' % SECRET).encode())
    # The device itself gets the downlink it was sent unchanged; that answer goes only to it.
    status, delivered = api.uplink(pack(), record=False)
    assert status == 200 and SECRET.encode() in delivered
    for path in (
        "/api/devices",
        "/api/devices/%s" % UUID,
        "/api/devices/%s/messages" % UUID,
        "/api/devices/%s/downlinks" % UUID,
        "/api/messages",
    ):
        api.get(path)
    # The scan must have something to scan, and the scrubbing must have been needed.
    assert len(api.seen) >= 14 and logs
    assert any(b"[secret]" in seen for seen in api.seen)
    captured = capsys.readouterr()
    for text in [captured.out, captured.err] + logs:
        assert SECRET not in text and OTHER_SECRET not in text
    for seen in api.seen:
        assert SECRET.encode() not in seen and OTHER_SECRET.encode() not in seen


def test_device_errors_never_show_the_secret(tmp_path):
    bad = "short" + SECRET[:3] + "!"
    with pytest.raises(ValueError) as info:
        Emulator(tmp_path / "db", {UUID: bad})
    assert bad not in str(info.value)


# -- TLS -------------------------------------------------------------------------------------


def test_https_with_a_test_ca(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    emu = Emulator(tmp_path / "db", {UUID: SECRET}, log=lambda line: None)
    with emu.serve(tls_cert=str(cert_file), tls_key=str(key_file)) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
        body = pack()
        conn.request(
            "POST",
            INGEST,
            body,
            {
                "Content-Type": "application/json",
                "Things-Message-Token": auth.message_token(body, SECRET),
            },
        )
        assert conn.getresponse().status == 200
        conn.close()
        # A client that trusts another CA is refused, and the server keeps serving.
        other = ssl.create_default_context()
        trustme.CA().configure_trust(other)
        bad = http.client.HTTPSConnection("127.0.0.1", srv.port, context=other, timeout=10)
        with pytest.raises(ssl.SSLError):
            bad.request("GET", "/api/devices")
        bad.close()
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
        conn.request("GET", "/api/devices")
        assert conn.getresponse().status == 200
        conn.close()


def test_repeated_base_name_of_the_same_device_is_accepted(api):
    again = '{"bn":"urn:dev:DVNUUID:%s:","n":"humidity","u":"%%RH","v":40}' % UUID.upper()
    assert api.uplink(pack(records=again))[0] == 200
    assert last_message(api, UUID)["records"][0]["u"] == "%RH"


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


# -- names and downlink answers (issue 19) ----------------------------------------------------


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


# -- the API token (issue 19, item 6: an emulator on the LAN) ----------------------------------


def test_an_api_token_guards_the_api_and_never_the_device_endpoint(tmp_path, logs):
    emu = Emulator(tmp_path / "emu.sqlite3", {UUID: SECRET}, log=logs.append)
    server = emu.serve("127.0.0.1", 0, api_token="bench-token-1")
    api = Api(server)
    try:
        # A device proves itself with its Things-Message-Token, as at KPN: no API token.
        assert api.uplink(pack())[0] == 200
        good = {"Authorization": "Bearer bench-token-1"}
        for headers in (
            {},
            {"Authorization": "Bearer bench-token-2"},
            {"Authorization": "bench-token-1"},
        ):
            for path in ("/api/devices", "/api/messages", "/api/devices/%s/messages" % UUID):
                resp, data = api.request("GET", path, headers=headers)
                assert resp.status == 401, (path, headers)
                assert resp.getheader("WWW-Authenticate") == 'Bearer realm="kpnthings emulator"'
                assert b"needs its token" in data and UUID.encode() not in data
            resp, _ = api.request(
                "POST", "/api/devices/%s/downlinks" % UUID, b'[{"n":"led","vb":true}]', headers
            )
            assert resp.status == 401
        assert emu.downlinks(UUID) == []  # nothing was queued without the token
        resp, data = api.request("GET", "/api/devices", headers=good)
        assert resp.status == 200 and json.loads(data)[0]["dvnuuid"] == UUID
        resp, _ = api.request(
            "POST", "/api/devices/%s/downlinks" % UUID, b'[{"n":"led","vb":true}]', good
        )
        assert resp.status == 201 and len(emu.downlinks(UUID)) == 1
        resp, _ = api.request(
            "GET", "/api/devices", headers={"authorization": "bearer bench-token-1"}
        )
        assert resp.status == 200  # header name and scheme are case-insensitive (RFC 9110)
        # The page's files hold no data: they load, and the page asks for the token.
        resp, page = api.request("GET", "/")
        assert resp.status == 200 and b"/static/app.js" in page
        assert api.uplink(pack())[0] == 200  # and the device got its downlink meanwhile
    finally:
        api.close()
        server.shutdown()
    assert not [line for line in logs if "bench-token-1" in line]
    assert any("401 wrong API token" in line for line in logs)
    assert any("401 no API token" in line for line in logs)


def test_without_a_token_the_api_is_open_as_before(api):
    resp, _ = api.request("GET", "/api/devices")
    assert resp.status == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("bench.local", False),
    ],
)
def test_which_hosts_are_loopback(host, loopback):
    assert emu_mod.is_loopback(host) is loopback


def test_fresh_tokens_are_long_and_different():
    tokens = {emu_mod.new_api_token() for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) >= 22 for t in tokens)
