"""kpnthings.dial on this runtime's real sockets: the server's address is looked up once and
kept, so a reconnect does not wait for DNS (issue 17, finding 1: a lookup cannot be cut short,
and lwIP's retries outlast the RP2040's watchdog)."""

import socket

from _support import listening_socket, raises
from kpnthings import dial
from kpnthings.compat import ticks_add, ticks_ms
from kpnthings.http_client import HTTPError

NOWHERE = "kpn-test.invalid"  # RFC 6761: never resolves


def _deadline():
    return ticks_add(ticks_ms(), 3000)


def test_an_address_looked_up_once_is_kept_for_the_next_connection():
    server, port = listening_socket()
    try:
        addresses = []
        dial.open_socket("localhost", port, None, _deadline(), addresses).close()
        assert len(addresses) == 1  # looked up, and kept
        # The next connection goes to the kept address, with no lookup: a name that can
        # never resolve still connects.
        dial.open_socket(NOWHERE, port, None, _deadline(), addresses).close()
        assert len(addresses) == 1
    finally:
        server.close()


def test_a_failed_connection_forgets_the_address_and_the_next_one_looks_it_up():
    server, port = listening_socket()
    info = socket.getaddrinfo("127.0.0.1", port, 0, socket.SOCK_STREAM)[0]
    server.close()  # nothing listens there now: refused
    addresses = [info]
    raises(HTTPError, dial.open_socket, NOWHERE, port, None, _deadline(), addresses)
    assert addresses == []  # the server may have moved
    e = raises(HTTPError, dial.open_socket, NOWHERE, port, None, _deadline(), addresses)
    assert "DNS lookup of " + NOWHERE in str(e)  # so this time it was looked up
    assert addresses == []


def test_without_a_list_every_connection_looks_the_name_up():
    e = raises(HTTPError, dial.open_socket, NOWHERE, 80, None, _deadline())
    assert "DNS lookup" in str(e)


def test_the_mqtt_client_keeps_the_brokers_address_across_reconnects():
    from kpnthings.mqtt import MQTTClient

    server, port = listening_socket()  # accepts the TCP connect, never sends a CONNACK
    try:
        c = MQTTClient("localhost", port, "kpn-test", timeout_ms=300)
        raises(OSError, c.connect)  # no CONNACK: timed out, after the lookup
        assert len(c.addresses) == 1
        kept = c.addresses[0]
        c.host = NOWHERE  # a reconnect needs no lookup: the kept address is used
        e = raises(OSError, c.connect)
        assert "DNS" not in str(e), e
        assert c.addresses == [kept]
        c.close()
    finally:
        server.close()
