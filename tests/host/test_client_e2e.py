"""kpnthings.client against real servers on 127.0.0.1, under CPython and the MicroPython unix port.

Every case runs twice: in this process (CPython) and through tests/host/mp_client_send.py in a
`micropython` subprocess, so the very same socket/poll code paths are exercised on both.
"""

import json

import pytest
from _http_servers import (
    RUNNERS,
    Server,
    answers,
    closed_port,
    endless_headers,
    hang,
    oversized,
    read_request,
    response,
    slow_drip,
    truncated,
)

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
OTHER_UUID = "0b9d3c2a-7e6f-4a1b-8c5d-112233445566"
BN = "urn:dev:DVNUUID:%s:" % UUID
BODY = '[{"bn":"%s","bt":1700000000},{"n":"temperature","u":"Cel","v":21.5}]' % BN
DOWNLINK = ('[{"bn":"%s","n":"led","vb":true}]' % BN).encode()

RUNTIMES = sorted(RUNNERS)


def run(runtime, url, bodies=(BODY,), **kw):
    args = {"dvnuuid": UUID, "secret": SECRET, "url": url, "bodies": list(bodies), "timeout": 2}
    args.update(kw)
    return RUNNERS[runtime](args)


def _token(body):
    import hashlib

    return hashlib.sha256(body + SECRET.encode()).hexdigest().encode()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_200_with_downlink_and_request_on_the_wire(runtime):
    with Server(answers(response(200, DOWNLINK))) as srv:
        (r,) = run(runtime, srv.url())
    assert (r["status"], r["outcome"], r["error"]) == (200, "accepted", None)
    assert len(r["downlink"]) == 1
    assert r["downlink"][0]["n"] == BN + "led"
    assert r["downlink"][0]["vb"] is True
    head, body = srv.requests[0]
    assert body == BODY.encode()
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /ingestion/ip/senml/v1 HTTP/1.1"
    assert b"Host: 127.0.0.1:%d" % srv.port in lines
    assert b"Things-Message-Token: " + _token(body) in lines
    assert b"Content-Length: %d" % len(body) in lines
    assert SECRET.encode() not in head + body


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_200_without_downlink(runtime):
    with Server(answers(response(200))) as srv:
        (r,) = run(runtime, srv.url())
    assert r == {"status": 200, "outcome": "accepted", "downlink": [], "error": None}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_malformed_downlink_is_reported(runtime):
    with Server(answers(response(200, b'[{"n":"led","vb":1,"v":2}]'))) as srv:
        (r,) = run(runtime, srv.url())
    assert (r["status"], r["outcome"], r["downlink"]) == (200, "accepted", [])
    assert r["error"].startswith("downlink refused")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, "malformed"),
        (401, "unauthorized"),
        (403, "unauthorized"),
        (404, "unknown device"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_status_outcomes(runtime, status, outcome):
    with Server(answers(response(status, b'{"error":"x"}'))) as srv:
        (r,) = run(runtime, srv.url())
    assert (r["status"], r["outcome"], r["downlink"]) == (status, outcome, [])
    assert r["error"] == "HTTP %d" % status


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_connection_refused(runtime):
    (r,) = run(runtime, "http://127.0.0.1:%d" % closed_port())
    assert (r["status"], r["outcome"], r["downlink"]) == (None, "retry", [])
    assert "refused" in r["error"] or "connect" in r["error"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_hang_past_deadline(runtime):
    with Server(hang) as srv:
        (r,) = run(runtime, srv.url(), timeout=1)
    assert (r["status"], r["outcome"]) == (None, "retry")
    assert "timed out" in r["error"]
    assert len(srv.requests) == 1  # the request did go out; only the answer never came


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_truncated_response(runtime):
    with Server(truncated) as srv:
        (r,) = run(runtime, srv.url())
    assert (r["status"], r["outcome"], r["downlink"]) == (200, "retry", [])
    assert "truncated" in r["error"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_oversized_response(runtime):
    with Server(oversized) as srv:
        (r,) = run(runtime, srv.url())
    assert (r["outcome"], r["downlink"]) == ("retry", [])
    assert "over 4096 bytes" in r["error"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_slow_drip_ends_at_deadline(runtime):
    with Server(slow_drip) as srv:
        (r,) = run(runtime, srv.url(), timeout=1)
        dripped = srv.sent_bytes
    assert (r["status"], r["outcome"]) == (200, "retry")
    assert "timed out" in r["error"]
    # The client gave up while the server was still dripping its 4000-byte body.
    assert dripped < 4000


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_endless_headers_end_at_a_cap(runtime):
    with Server(endless_headers) as srv:
        (r,) = run(runtime, srv.url(), timeout=3)
    assert r["outcome"] == "retry"
    assert "headers too large" in r["error"] or "timed out" in r["error"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_keep_alive_reuses_one_connection(runtime):
    replies = [response(200), response(200, DOWNLINK), response(503)]
    with Server(answers(*replies)) as srv:
        results = run(runtime, srv.url(), bodies=[BODY, BODY, BODY])
    assert [r["outcome"] for r in results] == ["accepted", "accepted", "retry"]
    assert len(results[1]["downlink"]) == 1
    assert srv.connections == 1
    assert len(srv.requests) == 3


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_connection_close_is_honoured(runtime):
    def close_each(conn, server):
        if read_request(conn, server) is not None:
            server.send(conn, response(200, headers=["Connection: close"]))

    with Server(close_each) as srv:
        results = run(runtime, srv.url(), bodies=[BODY, BODY])
    assert [r["outcome"] for r in results] == ["accepted", "accepted"]
    assert srv.connections == 2


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_server_dropping_idle_connection_is_transparent(runtime):
    # Each connection answers once without saying so, then closes: like a server whose keep-alive
    # timer ran out between two uplinks. The second send must reconnect, not fail.
    def once(conn, server):
        if read_request(conn, server) is not None:
            server.send(conn, response(200))

    with Server(once) as srv:
        results = run(runtime, srv.url(), bodies=[BODY, BODY, BODY])
    assert [r["outcome"] for r in results] == ["accepted"] * 3
    assert len(srv.requests) == 3


# --- against the KPN Things emulator ------------------------------------------------------


@pytest.fixture
def emulator(tmp_path):
    emu_mod = pytest.importorskip("kpnthings_tools.emulator")
    emu = emu_mod.Emulator(tmp_path / "emu.sqlite3", {UUID: SECRET})
    srv = emu.serve("127.0.0.1", 0)
    yield srv
    srv.shutdown()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_emulator_200_then_downlink(runtime, emulator):
    emulator.emulator.queue_downlink(UUID, DOWNLINK)
    results = run(runtime, emulator.url, bodies=[BODY, BODY])
    assert results[0]["status"] == 200 and results[0]["outcome"] == "accepted"
    assert results[0]["error"] is None
    assert [d["n"] for d in results[0]["downlink"]] == [BN + "led"]
    # Delivered once: the next answer is empty.
    assert results[1] == {"status": 200, "outcome": "accepted", "downlink": [], "error": None}
    stored = emulator.emulator.messages(UUID)
    assert [m["status"] for m in stored] == [200, 200]
    assert stored[0]["body"] == BODY
    assert SECRET not in json.dumps(stored)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_emulator_400_401_404(runtime, emulator):
    not_senml = '{"n":"temperature"}'
    other_bn = BODY.replace(UUID, OTHER_UUID)
    (bad,) = run(runtime, emulator.url, bodies=[not_senml])
    assert (bad["status"], bad["outcome"]) == (400, "malformed")
    (unknown,) = run(runtime, emulator.url, bodies=[other_bn], dvnuuid=OTHER_UUID)
    assert (unknown["status"], unknown["outcome"]) == (404, "unknown device")
    wrong = "Z" * 32
    (unauth,) = run(runtime, emulator.url, bodies=[BODY], secret=wrong)
    assert (unauth["status"], unauth["outcome"]) == (401, "unauthorized")
