"""kpnthings.uplink.Uplink: the HTTPS uplink the loop keeps, its code dropped at rest."""

import sys

from kpnthings import uplink


def _free_port():
    import socket

    s = socket.socket()
    s.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
    port = s.getsockname()[1] if hasattr(s, "getsockname") else 1
    s.close()
    return port


def test_uplink_drops_its_client_and_code_at_rest_and_makes_them_again_to_send():
    cfg = {
        "dvnuuid": "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c",
        "secret": "S3cretForTestsOnly0123456789abcdef",
        "url": "http://127.0.0.1:%d" % _free_port(),  # nothing listens: every send fails
        "timeout_s": 2,
        "tls_insecure": False,
    }
    up = uplink.Uplink(cfg, None)
    assert "kpnthings.client" in sys.modules  # made at boot, so a bad URL stops the boot
    first = up.send(b"[]")
    assert first.outcome == "retry" and first.status is None  # refused: kept for later
    up.rest()
    for name in ("client", "auth", "http_client"):
        assert "kpnthings." + name not in sys.modules, name
    assert "secret" not in repr(up) and cfg["secret"] not in repr(up)
    up.rest()  # resting twice is harmless
    again = up.send(b"[]")
    assert again.outcome == "retry" and again.status is None
    assert "kpnthings.client" in sys.modules
    up.close()


def test_uplink_keeps_the_servers_address_across_rests():
    from _support import listening_socket

    server, port = listening_socket()  # connects, never answers: each send times out
    cfg = {
        "dvnuuid": "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c",
        "secret": "S3cretForTestsOnly0123456789abcdef",
        "url": "http://localhost:%d" % port,
        "timeout_s": 0.3,
        "tls_insecure": False,
    }
    try:
        up = uplink.Uplink(cfg, None)
        assert up.send(b"[]").outcome == "retry"
        kept = up.addresses
        assert len(kept) == 1  # looked up once
        up.rest()  # the client goes, the address stays: no DNS wait in the next cycle
        assert up.addresses is kept and len(kept) == 1
        assert up.send(b"[]").outcome == "retry"
        assert up._client._conn.addresses is kept and len(kept) == 1
        up.close()
    finally:
        server.close()


def test_uplink_refuses_a_bad_url_when_it_is_made():
    cfg = {
        "dvnuuid": "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c",
        "secret": "S3cretForTestsOnly0123456789abcdef",
        "url": "ftp://example.com",
        "timeout_s": 2,
        "tls_insecure": False,
    }
    try:
        uplink.Uplink(cfg, None)
    except ValueError as e:
        assert "url" in str(e)
    else:
        raise AssertionError("no error for an ftp:// url")
