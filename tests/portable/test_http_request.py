"""client + http_client over a fake transport: the exact request bytes, connection reuse, and the
arguments and secret a client is made with. How every answer is read: test_http_answers.py."""

import binascii
import hashlib

from _http_fake import (
    BODY,
    SECRET,
    UUID,
    FakeNetwork,
    FakeTransport,
    fake_client,
    http_reply,
    send_once,
)

from _support import raises
from kpnthings import client, http_client

# Token vector from PROTOCOL.md: body "[]" with this secret.
EMPTY_TOKEN = b"4a09ce37e32046ef2e91053f6b826e69b6d63977d0c9555385b1b33106a3b8e5"


def _token(body, secret):
    # Computed here independently of kpnthings.auth.
    return binascii.hexlify(hashlib.sha256(body + secret.encode()).digest())


def test_request_bytes_exact_http():
    t = FakeTransport([http_reply(200)])
    c, net = fake_client(t)
    r = c.send(b"[]")
    assert r.outcome == client.ACCEPTED
    expected = (
        b"POST /ingestion/ip/senml/v1 HTTP/1.1\r\n"
        b"Host: 127.0.0.1:8080\r\n"
        b"Content-Type: application/json\r\n"
        b"Things-Message-Token: " + EMPTY_TOKEN + b"\r\n"
        b"Content-Length: 2\r\n"
        b"\r\n"
        b"[]"
    )
    assert t.sent_bytes() == expected
    assert net.opened[0][:2] == ("127.0.0.1", 8080)
    # One write per request: small writes would wait for delayed ACKs (Nagle) and, over TLS,
    # each would be a record of its own.
    assert len(t.sent) == 1


def test_request_bytes_exact_https_default_port():
    t = FakeTransport([http_reply(200)])
    c, net = fake_client(t, url="https://prod.dm.kpnthings.com", insecure=True)
    c.send(BODY)
    sent = t.sent_bytes()
    head, body = sent.split(b"\r\n\r\n", 1)
    assert body == BODY
    lines = head.split(b"\r\n")
    assert lines == [
        b"POST /ingestion/ip/senml/v1 HTTP/1.1",
        b"Host: prod.dm.kpnthings.com",
        b"Content-Type: application/json",
        b"Things-Message-Token: " + _token(BODY, SECRET),
        ("Content-Length: %d" % len(BODY)).encode(),
    ]
    # CRLF only: no bare LF anywhere in the head.
    assert head.count(b"\n") == head.count(b"\r\n")
    assert net.opened[0][:2] == ("prod.dm.kpnthings.com", 443)


def test_url_path_prefix_kept():
    t = FakeTransport([http_reply(200)])
    c, _ = fake_client(t, url="http://example.test/kpn/")
    c.send(b"[]")
    assert t.sent_bytes().startswith(
        b"POST /kpn/ingestion/ip/senml/v1 HTTP/1.1\r\nHost: example.test\r\n"
    )


class _Pack:
    def encode(self):
        return BODY


def test_pack_object_is_encoded_once_and_signed_over_sent_bytes():
    t = FakeTransport([http_reply(200)])
    c, _ = fake_client(t)
    c.send(_Pack())
    sent = t.sent_bytes()
    assert sent.endswith(b"\r\n\r\n" + BODY)
    assert b"Things-Message-Token: " + _token(BODY, SECRET) + b"\r\n" in sent
    assert ("Content-Length: %d\r\n" % len(BODY)).encode() in sent


def test_str_body_is_utf8():
    t = FakeTransport([http_reply(200)])
    c, _ = fake_client(t)
    c.send('[{"n":"caf\u00e9","vs":"x"}]')
    body = '[{"n":"caf\u00e9","vs":"x"}]'.encode()
    assert t.sent_bytes().endswith(b"\r\n\r\n" + body)
    assert b"Things-Message-Token: " + _token(body, SECRET) in t.sent_bytes()


def test_keep_alive_reuses_connection():
    t = FakeTransport([http_reply(200), http_reply(200)])
    c, net = fake_client(t)
    assert c.send(b"[]").outcome == client.ACCEPTED
    assert c.send(b"[1]").outcome == client.ACCEPTED
    assert len(net.opened) == 1
    assert t.sent_bytes().count(b"POST ") == 2
    assert not t.closed
    c.close()
    assert t.closed


def test_answers_that_never_have_a_body_keep_the_connection():
    # Issue 17 #12: 204 and 304 (and 1xx before them) carry no body and need no Content-Length
    # (RFC 9110 6.4.1, RFC 9112 6.3); closing after them cost a TLS handshake per uplink.
    for answer in (
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nServer: x\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\n\r\n",
    ):
        t = FakeTransport([answer, http_reply(200)])
        c, net = fake_client(t)
        first = c.send(b"[]")
        assert first.status in (204, 304) and first.downlink == [], answer
        assert not t.closed, answer
        assert c.send(b"[1]").outcome == client.ACCEPTED
        assert len(net.opened) == 1, answer
        assert t.sent_bytes().count(b"POST ") == 2
    # A 200 without any length still reads to the close, and does not keep the connection.
    t = FakeTransport([b"HTTP/1.1 200 OK\r\n\r\n[]"])
    c, net = fake_client(t, FakeTransport([http_reply(200)]))
    assert c.send(b"[]").outcome == client.ACCEPTED and t.closed
    assert c.send(b"[]").outcome == client.ACCEPTED and len(net.opened) == 2


def test_connection_close_is_honoured():
    t1 = FakeTransport([http_reply(200, extra=b"Connection: close\r\n")])
    t2 = FakeTransport([http_reply(200)])
    c, net = fake_client(t1, t2)
    assert c.send(b"[]").outcome == client.ACCEPTED
    assert t1.closed
    assert c.send(b"[]").outcome == client.ACCEPTED
    assert len(net.opened) == 2


def test_http10_reply_closes():
    t1 = FakeTransport([b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"])
    c, _ = fake_client(t1, FakeTransport([http_reply(200)]))
    assert c.send(b"[]").outcome == client.ACCEPTED
    assert t1.closed


def test_dead_reused_connection_is_retried_once():
    t1 = FakeTransport([http_reply(200)])  # then end of stream: the server dropped it
    t2 = FakeTransport([http_reply(200)])
    c, net = fake_client(t1, t2)
    assert c.send(b"[]").outcome == client.ACCEPTED
    r = c.send(b"[1]")
    assert (r.outcome, r.error) == (client.ACCEPTED, None)
    assert len(net.opened) == 2
    assert t1.closed
    assert t2.sent_bytes().endswith(b"[1]")


def test_idle_closed_connection_is_replaced_before_sending():
    t1 = FakeTransport([http_reply(200)])
    t2 = FakeTransport([http_reply(200)])
    c, net = fake_client(t1, t2)
    c.send(b"[]")
    t1.dead_on_idle = True
    assert c.send(b"[1]").outcome == client.ACCEPTED
    assert t1.sent_bytes().count(b"POST") == 1
    assert len(net.opened) == 2


def test_fresh_connection_closing_early_is_not_retried():
    t1 = FakeTransport([])
    t2 = FakeTransport([http_reply(200)])
    c, net = fake_client(t1, t2)
    r = c.send(b"[]")
    assert r.outcome == client.RETRY
    assert len(net.opened) == 1


def test_reused_connection_dying_mid_reply_is_not_resent():
    t1 = FakeTransport([http_reply(200), b"HTTP/1.1 20"])
    t2 = FakeTransport([http_reply(200)])
    c, net = fake_client(t1, t2)
    c.send(b"[]")
    r = c.send(b"[1]")
    assert r.outcome == client.RETRY
    assert len(net.opened) == 1  # the server may have acted on it: no silent resend


def test_https_needs_ca_or_opt_out():
    e = raises(ValueError, client.Client, UUID, SECRET)
    assert "ca_file" in str(e) and "tls_insecure" in str(e)
    e = raises(ValueError, client.Client, UUID, SECRET, url="https://x.test", connect=FakeNetwork())
    assert "ca_file" in str(e)
    # Plain http needs neither.
    client.Client(UUID, SECRET, url="http://127.0.0.1:1", connect=FakeNetwork())


def test_bad_arguments_name_the_field():
    assert "url" in str(raises(ValueError, client.Client, UUID, SECRET, url="ftp://x"))
    assert "port" in str(raises(ValueError, client.Client, UUID, SECRET, url="http://x:99999"))
    assert "port" in str(raises(ValueError, client.Client, UUID, SECRET, url="http://x:"))
    assert "url" in str(raises(ValueError, client.Client, UUID, SECRET, url="http://a b"))
    assert "timeout" in str(
        raises(ValueError, client.Client, UUID, SECRET, url="http://x", timeout=0)
    )
    assert "dvnuuid" in str(raises(ValueError, client.Client, "nope", SECRET, url="http://x"))


def test_secret_never_shown():
    t = FakeTransport([http_reply(401), http_reply(200, b"garbage")])
    c, _ = fake_client(t)
    assert SECRET not in repr(c)
    assert SECRET not in str(c)
    assert UUID in repr(c)
    results = [c.send(b"[]"), c.send(b"[]")]
    r2, _ = send_once(b"junk")
    results.append(r2)
    for r in results:
        assert SECRET not in repr(r)
        assert SECRET not in str(r.error)
    assert SECRET.encode() not in t.sent_bytes()
    # Errors about a bad secret say what is wrong, never the secret itself.
    for bad in (SECRET + "!", SECRET[:20], SECRET + "_" + SECRET):
        e = raises(ValueError, client.Client, UUID, bad, url="http://x")
        assert bad not in str(e) and SECRET not in str(e)


def test_outcome_for_matches_table():
    assert client.outcome_for(200) == client.ACCEPTED
    assert client.outcome_for(404) == client.UNKNOWN_DEVICE
    assert client.outcome_for(451) == client.MALFORMED
    assert client.outcome_for(502) == client.RETRY


def test_header_values_must_be_one_line():
    conn = http_client.Connection("h", 80, connect=FakeNetwork(FakeTransport([http_reply(200)])))
    raises(ValueError, conn.request, "POST", "/", (("X", "a\r\nEvil: 1"),), b"")
    raises(ValueError, conn.request, "POST", "/", (("X", b"a\nEvil: 1"),), b"")
    raises(ValueError, conn.request, "POST", "/", (("X\r\nEvil", "1"),), b"")


def test_reset_mid_reply_on_reused_connection_is_not_resent():
    reset = http_client._DeadConnection("receive failed: [Errno 104] ECONNRESET")
    t1 = FakeTransport([http_reply(200), b"HTTP/1.1 20"], error=reset)
    t2 = FakeTransport([http_reply(200)])
    c, net = fake_client(t1, t2)
    c.send(b"[]")
    r = c.send(b"[1]")
    assert (r.outcome, r.status) == (client.RETRY, None)
    assert "ECONNRESET" in r.error
    assert len(net.opened) == 1


def test_reset_before_reply_on_reused_connection_is_resent_once():
    reset = http_client._DeadConnection("receive failed: [Errno 104] ECONNRESET")
    t1 = FakeTransport([http_reply(200)], error=reset)
    t2 = FakeTransport([], error=reset)
    t3 = FakeTransport([http_reply(200)])
    c, net = fake_client(t1, t2, t3)
    c.send(b"[]")
    r = c.send(b"[1]")
    assert r.outcome == client.RETRY  # resent once on t2, which failed too: no third try
    assert len(net.opened) == 2
    assert t2.sent_bytes().endswith(b"[1]")


def test_kpn_c_library_defects_do_not_recur_in_the_request():
    # KPN's C library (STYLE.md): with bn and bu both set, Content-Length came out one byte short
    # (so the token covered a body without its final "]"), and lines ended in bare LF.
    from kpnthings.senml import Pack

    pack = Pack("urn:dev:DVNUUID:" + UUID + ":", 1700000000, "Cel")
    pack.add("temperature", 21.5).add("temperature", 21.6, time=60)
    t = FakeTransport([http_reply(200)])
    c, _ = fake_client(t)
    assert c.send(pack).outcome == client.ACCEPTED
    head, body = t.sent_bytes().split(b"\r\n\r\n", 1)
    assert body == pack.encode() and body.endswith(b"]")
    lines = head.split(b"\r\n")
    assert b"Content-Length: %d" % len(body) in lines
    assert b"Things-Message-Token: " + _token(body, SECRET) in lines
    assert not any(b"\n" in line for line in lines)  # every line ends in CRLF, none in bare LF


def test_a_connection_idle_past_a_servers_keep_alive_is_not_reused():
    # Issue 18, item 3: a POST on a connection the server is closing for idleness may be
    # read by it and then lost with the connection; sent again on a new one, it is stored
    # twice. Past max_idle_ms (a server's usual keep-alive, 4 s by default) a new one is opened.
    from kpnthings.compat import sleep_ms

    t1 = FakeTransport([http_reply(200), http_reply(200)])
    t2 = FakeTransport([http_reply(200)])
    net = FakeNetwork(t1, t2)
    conn = http_client.Connection("127.0.0.1", 8080, connect=net, max_idle_ms=60)
    conn.request("POST", "/x", (), b"[]")
    conn.request("POST", "/x", (), b"[]")  # at once: the same connection
    assert len(net.opened) == 1
    sleep_ms(120)
    conn.request("POST", "/x", (), b"[]")
    assert len(net.opened) == 2 and t1.closed
    assert http_client.Connection("h", 80).max_idle_ms == 4000
