"""client + http_client over a fake transport: every class of answer (accepted with or without a
downlink, refused, retry) and every malformed, truncated, oversized or slow reply."""

from _http_fake import UUID, FakeTransport, fake_client, http_reply, send_once

from kpnthings import client, http_client


def test_200_without_downlink():
    r, _t = send_once(http_reply(200))
    assert (r.status, r.outcome, r.downlink, r.error) == (200, client.ACCEPTED, [], None)


def test_204_and_blank_body_mean_no_downlink():
    r, _ = send_once(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert (r.status, r.outcome, r.downlink, r.error) == (204, client.ACCEPTED, [], None)
    r, _ = send_once(http_reply(200, b" \r\n"))
    assert (r.outcome, r.downlink, r.error) == (client.ACCEPTED, [], None)


def test_200_with_downlink():
    down = ('[{"bn":"urn:dev:DVNUUID:%s:","n":"led","vb":true}]' % UUID).encode()
    r, _ = send_once(http_reply(200, down))
    assert r.status == 200
    assert r.outcome == client.ACCEPTED
    assert r.error is None
    assert len(r.downlink) == 1


def test_malformed_downlink_is_reported_not_raised():
    for bad in (b"<html>captive</html>", b"[{", b'[{"n":"x","v":1,"vs":"y"}]', b"\xff\xfe"):
        r, _ = send_once(http_reply(200, bad))
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
        r, _ = send_once(http_reply(status, b"nope"))
        assert r.status == status, status
        assert r.outcome == outcome, (status, r.outcome)
        assert r.downlink == []
        if outcome != client.ACCEPTED:
            assert r.error == "HTTP %d" % status


def test_error_status_with_oversized_body_still_classified():
    # A 4xx page larger than the cap: the status decides, the body is not needed.
    r, t = send_once(http_reply(400, b"x" * 10000))
    assert (r.status, r.outcome) == (400, client.MALFORMED)
    assert t.closed


def test_truncated_reply_is_retry():
    r, t = send_once(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n[{"n":')
    assert r.outcome == client.RETRY
    assert r.status == 200
    assert "truncated" in r.error
    assert t.closed
    r, _ = send_once(b"HTTP/1.1 200 OK\r\nContent-Le")
    assert (r.outcome, r.status) == (client.RETRY, 200)
    r, _ = send_once(b"HTTP/1.1 20")
    assert (r.outcome, r.status) == (client.RETRY, None)


def test_no_reply_is_retry():
    r, t = send_once(b"")
    assert (r.outcome, r.status) == (client.RETRY, None)
    assert "closed" in r.error
    assert t.closed


def test_oversized_reply_is_retry():
    r, _ = send_once(http_reply(200, b"[" * 4097))
    assert r.outcome == client.RETRY
    assert "4096" in r.error
    r, _ = send_once(b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * 5000)  # read until close
    assert r.outcome == client.RETRY
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"800\r\n" + b"a" * 2048
    r, _ = send_once(chunked + b"\r\n800\r\n" + b"a" * 2048 + b"\r\n800\r\n")
    assert r.outcome == client.RETRY
    assert "4096" in r.error


def test_smaller_cap_is_honoured():
    t = FakeTransport([http_reply(200, b"[]" * 40)])
    c, _ = fake_client(t, max_response=64)
    r = c.send(b"[]")
    assert r.outcome == client.RETRY
    assert "64" in r.error


def test_header_flood_is_refused():
    r, _ = send_once(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 100 + b"Content-Length: 0\r\n\r\n")
    assert r.outcome == client.RETRY
    r, _ = send_once(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 5000 + b"\r\n\r\n")
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
        r, t = send_once(junk)
        assert r.outcome == client.RETRY, junk
        assert r.downlink == []
        assert r.error
        assert t.closed, junk


def test_chunked_reply_is_decoded():
    down = ('[{"bn":"urn:dev:DVNUUID:%s:","n":"led","vb":false}]' % UUID).encode()
    framed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    framed += ("%x;ext=1\r\n" % 10).encode() + down[:10] + b"\r\n"
    framed += ("%X\r\n" % (len(down) - 10)).encode() + down[10:] + b"\r\n0\r\nTrailer: x\r\n\r\n"
    r, _ = send_once(framed, chunk=7)
    assert (r.outcome, r.error, len(r.downlink)) == (client.ACCEPTED, None, 1)


def test_interim_100_is_skipped():
    r, _ = send_once(b"HTTP/1.1 100 Continue\r\n\r\n" + http_reply(404))
    assert (r.status, r.outcome) == (404, client.UNKNOWN_DEVICE)


def test_one_byte_at_a_time():
    r, _ = send_once(http_reply(200, b" "), chunk=1)
    assert (r.status, r.outcome, r.error) == (200, client.ACCEPTED, None)


def test_timeout_is_retry():
    r, t = send_once(b"HTTP/1.1 200 OK\r\n", hang=True)
    assert (r.status, r.outcome) == (200, client.RETRY)
    assert "timed out" in r.error
    assert t.closed
    r, t = send_once(b"", hang=True)
    assert (r.status, r.outcome) == (None, client.RETRY)


def test_connect_failure_is_retry():
    c, _ = fake_client(http_client.HTTPError("connect to 127.0.0.1:8080 refused"))
    r = c.send(b"[]")
    assert (r.status, r.outcome, r.downlink) == (None, client.RETRY, [])
    assert "refused" in r.error
