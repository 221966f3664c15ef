"""The emulator keeps secrets: never in its API output, logs or errors; and an API token guards its
API (never the device endpoint) when it listens beyond this machine (issue 19, item 6)."""

import json

import pytest
from _emulator_support import OTHER_SECRET, SECRET, STRANGER, UUID, Api, pack

from kpnthings_tools import emulator as emu_mod
from kpnthings_tools.emulator import Emulator

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
