"""The byte stream of one MQTT connection, for kpnthings.mqtt: every read and write against a
deadline, and whole packets read off it.

The socket layer is the one HTTPS shares (kpnthings.socket_io.SocketTransport, its errors and
their short description): a socket failure becomes an MQTTConnectionError, a deadline an
MQTTTimeout, and either closes the connection: part of a packet may have gone or come, so the
stream can no longer be trusted. A received PUBLISH over `max_packet` is read off in 256-byte
pieces and acknowledged, never held whole (issue 17 #13). The session (kpnthings.mqtt_session)
builds on this class.
"""

from kpnthings.compat import ticks_add, ticks_ms
from kpnthings.mqtt_packets import (
    PUBLISH,
    MQTTConnectionError,
    MQTTProtocolError,
    MQTTTimeout,
    decode_length,
    puback_packet,
)
from kpnthings.socket_io import HTTPTimeout, _describe  # the socket layer MQTT shares


class MQTTStream:
    """The connection's transport `_t` (kpnthings.socket_io.SocketTransport, or what a test's
    `connect` returns), None while disconnected. The session (a subclass) sets it, which the
    type checker cannot see here: hence the ignores on its three uses."""

    def __init__(self, host, port, timeout_ms, max_packet):
        if not isinstance(timeout_ms, int) or not 0 < timeout_ms < 8000:
            raise ValueError("timeout_ms must be 1-7999 (below the watchdog period)")
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self._t = None
        self._small = bytearray(4)
        self._ackbuf = bytearray(4)  # PUBACKs we send: never disturbs a PUBLISH kept for resend
        self._max_packet = max_packet
        self._last_tx = 0
        self._last_rx = 0
        self.oversized = 0  # PUBLISHes over max_packet, dropped
        self.log = print

    @property
    def connected(self):
        return self._t is not None

    def _send(self, data, deadline):
        try:
            self._t.send_all(data, deadline)  # pyright: ignore[reportAttributeAccessIssue]
        except HTTPTimeout:
            self.close()
            raise MQTTTimeout("timed out sending to %s:%d" % (self.host, self.port)) from None
        except (OSError, ValueError) as e:
            self.close()
            raise MQTTConnectionError("send failed: %s" % _describe(e)) from None
        self._last_tx = ticks_ms()

    def _recv_exact(self, n, deadline, what):
        parts = []
        while n:
            try:
                data = self._t.recv(n, deadline)  # pyright: ignore[reportAttributeAccessIssue]
            except HTTPTimeout:
                # Part of a packet may have arrived: the stream can no longer be trusted.
                self.close()
                raise MQTTTimeout("timed out waiting for %s" % what) from None
            except (OSError, ValueError) as e:
                self.close()
                raise MQTTConnectionError("receive failed: %s" % _describe(e)) from None
            if not data:
                self.close()
                raise MQTTConnectionError("connection closed by the broker")
            parts.append(data)
            n -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_packet(self, deadline, what, idle_ok):
        """One packet as (type, flags, body); with idle_ok, None if none starts by the deadline.

        Once a packet has begun, the rest of it gets `timeout_ms` of its own: a short poll must
        not cut a packet that a TCP segment boundary split.
        """
        if idle_ok:
            try:
                first = self._t.recv(1, deadline)  # pyright: ignore[reportAttributeAccessIssue]
            except HTTPTimeout:
                return None  # nothing began to arrive: the stream is still aligned
            except (OSError, ValueError) as e:
                self.close()
                raise MQTTConnectionError("receive failed: %s" % _describe(e)) from None
            if not first:
                self.close()
                raise MQTTConnectionError("connection closed by the broker")
            first = first[0]
            deadline = ticks_add(ticks_ms(), self.timeout_ms)
        else:
            first = self._recv_exact(1, deadline, what)[0]
        hdr = self._small
        for i in range(4):
            hdr[i] = self._recv_exact(1, deadline, what)[0]
            if not hdr[i] & 0x80:
                break
        try:
            length = decode_length(hdr, 0)[0]
            if length > self._max_packet:
                if first & 0xF0 != PUBLISH:
                    raise MQTTProtocolError(
                        "packet of %d bytes over the %d-byte limit" % (length, self._max_packet)
                    )
                body = self._drop_publish(first & 0x0F, length, deadline, what)
            else:
                body = self._recv_exact(length, deadline, what) if length else b""
        except MQTTProtocolError:
            self.close()  # the stream cannot be realigned
            raise
        self._last_rx = ticks_ms()
        return first & 0xF0, first & 0x0F, body

    def _drop_publish(self, flags, length, deadline, what):
        """Read an over-limit PUBLISH off in pieces, PUBACK it if QoS 1; None for _dispatch."""
        qos = (flags >> 1) & 3
        head = self._recv_exact(2, deadline, what)
        n = head[0] << 8 | head[1]  # topic length
        rest = length - 2 - n - (2 if qos else 0)
        if qos > 1 or rest < 0:
            raise MQTTProtocolError("malformed PUBLISH")
        self._skip(n, deadline, what)
        if qos:
            pid = self._recv_exact(2, deadline, what)
        self._skip(rest, deadline, what)
        if qos:
            puback_packet(self._ackbuf, pid[0] << 8 | pid[1])
            self._send(self._ackbuf, deadline)
        self.oversized += 1
        self.log(
            "[mqtt] dropped a %d-byte PUBLISH (topic %d bytes): over max_packet %d"
            % (length, n, self._max_packet)
        )
        return None

    def _skip(self, n, deadline, what):
        # 256-byte reads: an oversized payload never lands on the heap in one piece.
        while n:
            k = min(n, 256)
            self._recv_exact(k, deadline, what)
            n -= k

    def close(self):
        t = self._t
        self._t = None
        self._ping_at = None
        if t is not None:
            try:
                t.close()
            except (OSError, ValueError):
                pass
