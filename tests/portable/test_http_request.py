"""client + http_client over a fake transport: the exact request bytes, and every answer class."""

import binascii
import hashlib

from _http_fake import FakeNetwork, FakeTransport

from _support import raises
from kpnthings import client, http_client

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
# Token vector from PROTOCOL.md: body "[]" with this secret.
EMPTY_TOKEN = b"4a09ce37e32046ef2e91053f6b826e69b6d63977d0c9555385b1b33106a3b8e5"
BODY = (
    b'[{"bn":"urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:","bt":1700000000},'
    b'{"n":"temperature","u":"Cel","v":21.5}]'
)


def _token(body, secret):
    # Computed here independently of kpnthings.auth.
    return binascii.hexlify(hashlib.sha256(body + secret.encode()).digest())


def _answer(status, body=b"", extra=b""):
    head = "HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (status, len(body))
    return head.encode() + extra + b"\r\n" + body


def _client(*transports, url="http://127.0.0.1:8080", **kw):
    net = FakeNetwork(*transports)
    return client.Client(UUID, SECRET, url=url, connect=net, **kw), net


def _send(reply_bytes, body=BODY, **kw):
    t = FakeTransport([reply_bytes], **kw)
    c, _ = _client(t)
    return c.send(body), t


def test_request_bytes_exact_http():
    t = FakeTransport([_answer(200)])
    c, net = _client(t)
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
    t = FakeTransport([_answer(200)])
    c, net = _client(t, url="https://prod.dm.kpnthings.com", insecure=True)
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
    t = FakeTransport([_answer(200)])
    c, _ = _client(t, url="http://example.test/kpn/")
    c.send(b"[]")
    assert t.sent_bytes().startswith(
        b"POST /kpn/ingestion/ip/senml/v1 HTTP/1.1\r\nHost: example.test\r\n"
    )


class _Pack:
    def encode(self):
        return BODY


def test_pack_object_is_encoded_once_and_signed_over_sent_bytes():
    t = FakeTransport([_answer(200)])
    c, _ = _client(t)
    c.send(_Pack())
    sent = t.sent_bytes()
    assert sent.endswith(b"\r\n\r\n" + BODY)
    assert b"Things-Message-Token: " + _token(BODY, SECRET) + b"\r\n" in sent
    assert ("Content-Length: %d\r\n" % len(BODY)).encode() in sent


def test_str_body_is_utf8():
    t = FakeTransport([_answer(200)])
    c, _ = _client(t)
    c.send('[{"n":"caf\u00e9","vs":"x"}]')
    body = '[{"n":"caf\u00e9","vs":"x"}]'.encode()
    assert t.sent_bytes().endswith(b"\r\n\r\n" + body)
    assert b"Things-Message-Token: " + _token(body, SECRET) in t.sent_bytes()


def test_200_without_downlink():
    r, _t = _send(_answer(200))
    assert (r.status, r.outcome, r.downlink, r.error) == (200, client.ACCEPTED, [], None)


def test_204_and_blank_body_mean_no_downlink():
    r, _ = _send(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert (r.status, r.outcome, r.downlink, r.error) == (204, client.ACCEPTED, [], None)
    r, _ = _send(_answer(200, b" \r\n"))
    assert (r.outcome, r.downlink, r.error) == (client.ACCEPTED, [], None)


def test_200_with_downlink():
    down = ('[{"bn":"urn:dev:DVNUUID:%s:","n":"led","vb":true}]' % UUID).encode()
    r, _ = _send(_answer(200, down))
    assert r.status == 200
    assert r.outcome == client.ACCEPTED
    assert r.error is None
    assert len(r.downlink) == 1


def test_malformed_downlink_is_reported_not_raised():
    for bad in (b"<html>captive</html>", b"[{", b'[{"n":"x","v":1,"vs":"y"}]', b"\xff\xfe"):
        r, _ = _send(_answer(200, bad))
        assert r.outcome == client.ACCEPTED
        assert r.status == 200
        assert r.downlink == []
        assert r.error.startswith("downlink refused"), r.error


def test_status_classes():
    table = (
        (201, client.ACCEPTED),
        (299, client.ACCEPTED),
        (400, client.MALFORMED),
        (413, client.MALFORMED),
        (418, client.MALFORMED),
        (401, client.UNAUTHORIZED),
        (403, client.UNAUTHORIZED),
        (404, client.UNKNOWN_DEVICE),
        (408, client.RETRY),
        (429, client.RETRY),
        (500, client.RETRY),
        (503, client.RETRY),
        (599, client.RETRY),
        (301, client.RETRY),
    )
    for status, outcome in table:
        r, _ = _send(_answer(status, b"nope"))
        assert r.status == status, status
        assert r.outcome == outcome, (status, r.outcome)
        assert r.downlink == []
        if outcome != client.ACCEPTED:
            assert r.error == "HTTP %d" % status


def test_error_status_with_oversized_body_still_classified():
    # A 4xx page larger than the cap: the status decides, the body is not needed.
    r, t = _send(_answer(400, b"x" * 10000))
    assert (r.status, r.outcome) == (400, client.MALFORMED)
    assert t.closed


def test_truncated_reply_is_retry():
    r, t = _send(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n[{"n":')
    assert r.outcome == client.RETRY
    assert r.status == 200
    assert "truncated" in r.error
    assert t.closed
    r, _ = _send(b"HTTP/1.1 200 OK\r\nContent-Le")
    assert (r.outcome, r.status) == (client.RETRY, 200)
    r, _ = _send(b"HTTP/1.1 20")
    assert (r.outcome, r.status) == (client.RETRY, None)


def test_no_reply_is_retry():
    r, t = _send(b"")
    assert (r.outcome, r.status) == (client.RETRY, None)
    assert "closed" in r.error
    assert t.closed


def test_oversized_reply_is_retry():
    r, _ = _send(_answer(200, b"[" * 4097))
    assert r.outcome == client.RETRY
    assert "4096" in r.error
    r, _ = _send(b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * 5000)  # read until close
    assert r.outcome == client.RETRY
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"800\r\n" + b"a" * 2048
    r, _ = _send(chunked + b"\r\n800\r\n" + b"a" * 2048 + b"\r\n800\r\n")
    assert r.outcome == client.RETRY
    assert "4096" in r.error


def test_smaller_cap_is_honoured():
    t = FakeTransport([_answer(200, b"[]" * 40)])
    c, _ = _client(t, max_response=64)
    r = c.send(b"[]")
    assert r.outcome == client.RETRY
    assert "64" in r.error


def test_header_flood_is_refused():
    r, _ = _send(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 100 + b"Content-Length: 0\r\n\r\n")
    assert r.outcome == client.RETRY
    r, _ = _send(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 5000 + b"\r\n\r\n")
    assert r.outcome == client.RETRY
    assert "longer" in r.error


def test_garbage_reply_is_retry():
    for junk in (
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/1.1 999 Huh\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x00\xff" * 50,
    ):
        r, t = _send(junk)
        assert r.outcome == client.RETRY, junk
        assert r.downlink == []
        assert r.error
        assert t.closed, junk


def test_chunked_reply_is_decoded():
    down = ('[{"bn":"urn:dev:DVNUUID:%s:","n":"led","vb":false}]' % UUID).encode()
    framed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    framed += ("%x;ext=1\r\n" % 10).encode() + down[:10] + b"\r\n"
    framed += ("%X\r\n" % (len(down) - 10)).encode() + down[10:] + b"\r\n0\r\nTrailer: x\r\n\r\n"
    r, _ = _send(framed, chunk=7)
    assert (r.outcome, r.error, len(r.downlink)) == (client.ACCEPTED, None, 1)


def test_interim_100_is_skipped():
    r, _ = _send(b"HTTP/1.1 100 Continue\r\n\r\n" + _answer(404))
    assert (r.status, r.outcome) == (404, client.UNKNOWN_DEVICE)


def test_one_byte_at_a_time():
    r, _ = _send(_answer(200, b" "), chunk=1)
    assert (r.status, r.outcome, r.error) == (200, client.ACCEPTED, None)


def test_timeout_is_retry():
    r, t = _send(b"HTTP/1.1 200 OK\r\n", hang=True)
    assert (r.status, r.outcome) == (200, client.RETRY)
    assert "timed out" in r.error
    assert t.closed
    r, t = _send(b"", hang=True)
    assert (r.status, r.outcome) == (None, client.RETRY)


def test_connect_failure_is_retry():
    c, _ = _client(http_client.HTTPError("connect to 127.0.0.1:8080 refused"))
    r = c.send(b"[]")
    assert (r.status, r.outcome, r.downlink) == (None, client.RETRY, [])
    assert "refused" in r.error


def test_keep_alive_reuses_connection():
    t = FakeTransport([_answer(200), _answer(200)])
    c, net = _client(t)
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
        t = FakeTransport([answer, _answer(200)])
        c, net = _client(t)
        first = c.send(b"[]")
        assert first.status in (204, 304) and first.downlink == [], answer
        assert not t.closed, answer
        assert c.send(b"[1]").outcome == client.ACCEPTED
        assert len(net.opened) == 1, answer
        assert t.sent_bytes().count(b"POST ") == 2
    # A 200 without any length still reads to the close, and does not keep the connection.
    t = FakeTransport([b"HTTP/1.1 200 OK\r\n\r\n[]"])
    c, net = _client(t, FakeTransport([_answer(200)]))
    assert c.send(b"[]").outcome == client.ACCEPTED and t.closed
    assert c.send(b"[]").outcome == client.ACCEPTED and len(net.opened) == 2


def test_connection_close_is_honoured():
    t1 = FakeTransport([_answer(200, extra=b"Connection: close\r\n")])
    t2 = FakeTransport([_answer(200)])
    c, net = _client(t1, t2)
    assert c.send(b"[]").outcome == client.ACCEPTED
    assert t1.closed
    assert c.send(b"[]").outcome == client.ACCEPTED
    assert len(net.opened) == 2


def test_http10_reply_closes():
    t1 = FakeTransport([b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"])
    c, _ = _client(t1, FakeTransport([_answer(200)]))
    assert c.send(b"[]").outcome == client.ACCEPTED
    assert t1.closed


def test_dead_reused_connection_is_retried_once():
    t1 = FakeTransport([_answer(200)])  # then end of stream: the server dropped it
    t2 = FakeTransport([_answer(200)])
    c, net = _client(t1, t2)
    assert c.send(b"[]").outcome == client.ACCEPTED
    r = c.send(b"[1]")
    assert (r.outcome, r.error) == (client.ACCEPTED, None)
    assert len(net.opened) == 2
    assert t1.closed
    assert t2.sent_bytes().endswith(b"[1]")


def test_idle_closed_connection_is_replaced_before_sending():
    t1 = FakeTransport([_answer(200)])
    t2 = FakeTransport([_answer(200)])
    c, net = _client(t1, t2)
    c.send(b"[]")
    t1.dead_on_idle = True
    assert c.send(b"[1]").outcome == client.ACCEPTED
    assert t1.sent_bytes().count(b"POST") == 1
    assert len(net.opened) == 2


def test_fresh_connection_closing_early_is_not_retried():
    t1 = FakeTransport([])
    t2 = FakeTransport([_answer(200)])
    c, net = _client(t1, t2)
    r = c.send(b"[]")
    assert r.outcome == client.RETRY
    assert len(net.opened) == 1


def test_reused_connection_dying_mid_reply_is_not_resent():
    t1 = FakeTransport([_answer(200), b"HTTP/1.1 20"])
    t2 = FakeTransport([_answer(200)])
    c, net = _client(t1, t2)
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
    t = FakeTransport([_answer(401), _answer(200, b"garbage")])
    c, _ = _client(t)
    assert SECRET not in repr(c)
    assert SECRET not in str(c)
    assert UUID in repr(c)
    results = [c.send(b"[]"), c.send(b"[]")]
    r2, _ = _send(b"junk")
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
    conn = http_client.Connection("h", 80, connect=FakeNetwork(FakeTransport([_answer(200)])))
    raises(ValueError, conn.request, "POST", "/", (("X", "a\r\nEvil: 1"),), b"")
    raises(ValueError, conn.request, "POST", "/", (("X", b"a\nEvil: 1"),), b"")
    raises(ValueError, conn.request, "POST", "/", (("X\r\nEvil", "1"),), b"")


def test_reset_mid_reply_on_reused_connection_is_not_resent():
    reset = http_client._DeadConnection("receive failed: [Errno 104] ECONNRESET")
    t1 = FakeTransport([_answer(200), b"HTTP/1.1 20"], error=reset)
    t2 = FakeTransport([_answer(200)])
    c, net = _client(t1, t2)
    c.send(b"[]")
    r = c.send(b"[1]")
    assert (r.outcome, r.status) == (client.RETRY, None)
    assert "ECONNRESET" in r.error
    assert len(net.opened) == 1


def test_reset_before_reply_on_reused_connection_is_resent_once():
    reset = http_client._DeadConnection("receive failed: [Errno 104] ECONNRESET")
    t1 = FakeTransport([_answer(200)], error=reset)
    t2 = FakeTransport([], error=reset)
    t3 = FakeTransport([_answer(200)])
    c, net = _client(t1, t2, t3)
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
    t = FakeTransport([_answer(200)])
    c, _ = _client(t)
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

    t1 = FakeTransport([_answer(200), _answer(200)])
    t2 = FakeTransport([_answer(200)])
    net = FakeNetwork(t1, t2)
    conn = http_client.Connection("127.0.0.1", 8080, connect=net, max_idle_ms=60)
    conn.request("POST", "/x", (), b"[]")
    conn.request("POST", "/x", (), b"[]")  # at once: the same connection
    assert len(net.opened) == 1
    sleep_ms(120)
    conn.request("POST", "/x", (), b"[]")
    assert len(net.opened) == 2 and t1.closed
    assert http_client.Connection("h", 80).max_idle_ms == 4000
