"""The emulator's HTTP framing and limits (413, 411, keep-alive, Content-Length on every answer),
and HTTPS with a test CA."""

import http.client
import socket
import ssl

import pytest
from _emulator_support import INGEST, SECRET, UUID, Api, last_message, pack

from kpnthings import auth
from kpnthings_tools import emulator as emu_mod
from kpnthings_tools.emulator import Emulator

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
