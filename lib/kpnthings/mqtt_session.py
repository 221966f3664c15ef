"""One MQTT session to one broker, for kpnthings.mqtt: connect, keepalive and reconnect.

- CONNECT/CONNACK within `timeout_ms` (DNS, TCP and TLS included: `dial.open_socket`); bad
  credentials (CONNACK 4 or 5) raise MQTTAuthError and back off to the longest delay;
- keepalive: PINGREQ when the link has been quiet for half the keepalive; no PINGRESP within
  `timeout_ms` means a half-open connection, which is closed;
- reconnect with exponential backoff and jitter (`ensure_connected`), which never sleeps: the
  device loop owns waiting.
What a session carries (publish, subscribe and their acknowledgements) is kpnthings.mqtt's.
"""

from kpnthings.compat import ticks_add, ticks_diff, ticks_ms
from kpnthings.mqtt_packets import (
    _CONNACK_TEXT,
    CONNACK,
    DISCONNECT_PACKET,
    PINGREQ_PACKET,
    MQTTAuthError,
    MQTTConnectionError,
    MQTTError,
    MQTTProtocolError,
    MQTTTimeout,
    _b,
    connect_packet,
    parse_connack,
)
from kpnthings.mqtt_stream import MQTTStream
from kpnthings.socket_io import HTTPTimeout, _describe


class MQTTSession(MQTTStream):
    """The connection's life; `_dispatch` (kpnthings.mqtt.MQTTClient) acts on each packet and
    `_connected` runs after every CONNACK."""

    def __init__(
        self,
        host,
        port,
        client_id,
        username,
        password,
        keepalive_s,
        tls_context,
        timeout_ms,
        clean_session,
        max_packet,
        backoff_ms,
        backoff_max_ms,
        connect,
    ):
        super().__init__(host, port, timeout_ms, max_packet)
        self.client_id = client_id
        self.username = username
        self._password = password
        self.keepalive_ms = keepalive_s * 1000
        self._keepalive_s = keepalive_s
        self._tls = tls_context
        self.clean_session = clean_session
        self._connect = connect
        creds = len(_b(client_id)) + len(_b(username or b"")) + len(_b(password or b""))
        self._buf = bytearray(max(256, 24 + creds))  # every packet we build; sized for CONNECT
        self._mv = memoryview(self._buf)
        self._ping_at = None  # ticks of the PINGREQ still unanswered, else None
        self.backoff_ms = backoff_ms
        self.backoff_max_ms = backoff_max_ms
        self._delay = 0
        self._next_try = ticks_ms()
        self.connects = 0  # successful CONNACKs, for logs and tests
        self.addresses = []  # the broker's, looked up once for every reconnect (dial.open_socket)

    def __repr__(self):
        # Deliberately without the password.
        return "<MQTTClient %s@%s:%d %s>" % (
            self.client_id,
            self.host,
            self.port,
            "connected" if self._t else "disconnected",
        )

    __str__ = __repr__

    def _connected(self):
        pass

    def _dispatch(self, ptype, flags, body, deadline):
        raise MQTTProtocolError("unexpected packet type 0x%02x" % ptype)

    def _handle(self, ptype, flags, body, deadline):
        """Act on one packet received outside CONNECT; a malformed one ends the connection."""
        try:
            self._dispatch(ptype, flags, body, deadline)
        except MQTTProtocolError:
            self.close()
            raise

    # -- connection -----------------------------------------------------------------------------

    def connect(self):
        """Open a session now: DNS, TCP, TLS, CONNECT/CONNACK, then every subscription again.

        Raises MQTTAuthError for bad credentials, MQTTTimeout or MQTTConnectionError otherwise;
        each failure also pushes back the next `ensure_connected` attempt (backoff).
        """
        self.close()
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        try:
            try:
                if self._connect is not None:
                    self._t = self._connect(self.host, self.port, self._tls, deadline)
                else:
                    from kpnthings import dial, unload

                    try:
                        self._t = dial.open_socket(
                            self.host, self.port, self._tls, deadline, self.addresses
                        )
                    finally:
                        unload("dial")
            except HTTPTimeout:
                raise MQTTTimeout(
                    "timed out connecting to %s:%d" % (self.host, self.port)
                ) from None
            except (OSError, ValueError) as e:
                raise MQTTConnectionError(_describe(e)) from None
            n = connect_packet(
                self._buf,
                self.client_id,
                self._keepalive_s,
                self.username,
                self._password,
                self.clean_session,
            )
            self._send(self._mv[:n], deadline)
            pkt = self._read_packet(deadline, "CONNACK", False)
            if pkt is None:  # cannot happen without idle_ok; keeps the types honest
                raise MQTTTimeout("timed out waiting for CONNACK")
            ptype, flags, body = pkt
            if ptype != CONNACK:
                raise MQTTProtocolError("expected CONNACK, got packet type 0x%02x" % ptype)
            _, code = parse_connack(flags, body)
            if code:
                text = _CONNACK_TEXT[code] if code < len(_CONNACK_TEXT) else "refused"
                if code in (4, 5):
                    raise MQTTAuthError(
                        "broker refused the credentials of %s (CONNACK %d: %s)"
                        % (self.client_id, code, text),
                        code,
                    )
                raise MQTTConnectionError(
                    "broker refused the connection (CONNACK %d: %s)" % (code, text)
                )
            self._ping_at = None
            self._last_rx = ticks_ms()
            self.connects += 1
            self._connected()
        except MQTTAuthError:
            self.close()
            # Credentials are fixed in the Portal, not by hammering the broker.
            self._delay = self.backoff_max_ms
            self._schedule()
            raise
        except Exception:
            self.close()
            self._grow_backoff()
            raise
        self._delay = 0
        self._next_try = ticks_ms()

    def _grow_backoff(self):
        self._delay = min(self.backoff_max_ms, max(self.backoff_ms, self._delay * 2))
        self._schedule()

    def _schedule(self):
        import random

        # Full delay/2 plus up to delay/2 of jitter, so a fleet does not reconnect in step.
        half = self._delay // 2
        jitter = random.getrandbits(16) % (half + 1) if half else 0
        self._next_try = ticks_add(ticks_ms(), half + jitter)

    def retry_in_ms(self):
        """Milliseconds until `ensure_connected` will try again (0 if it would now)."""
        return max(0, ticks_diff(self._next_try, ticks_ms()))

    def ensure_connected(self):
        """Connect unless connected or backing off. Never sleeps: the device loop owns waiting.

        Raises MQTTConnectionError("backing off ...") while the backoff runs, else what
        `connect` raises. A link quiet for 1.5 keepalives has been dropped by the broker
        (section 3.1.2.10), so it is replaced without waiting for a timeout.
        """
        if self._t is not None:
            if (
                self.keepalive_ms
                and ticks_diff(ticks_ms(), self._last_tx) > self.keepalive_ms * 3 // 2
            ):
                self.close()
            else:
                return
        left = self.retry_in_ms()
        if left:
            raise MQTTConnectionError("backing off, next attempt in %d ms" % left)
        self.connect()

    def poll(self, timeout_ms=0):
        """Handle what the broker sent (downlinks go to on_message); keep the link alive.

        Waits up to `timeout_ms` for the first packet, then takes whatever else is already
        there. Returns the number of packets handled. Raises MQTTTimeout when a PINGREQ went
        unanswered for `timeout_ms` (a half-open connection), MQTTConnectionError if the link
        broke; either way the client is then disconnected.
        """
        if self._t is None:
            raise MQTTConnectionError("not connected")
        now = ticks_ms()
        if self._ping_at is not None and ticks_diff(now, self._ping_at) > self.timeout_ms:
            self.close()
            raise MQTTTimeout("no PINGRESP within %d ms: connection is half-open" % self.timeout_ms)
        if (
            self.keepalive_ms
            and self._ping_at is None
            and ticks_diff(now, self._last_tx) >= self.keepalive_ms // 2
        ):
            self._ping_at = now
            self._send(PINGREQ_PACKET, ticks_add(now, self.timeout_ms))
        count = 0
        deadline = ticks_add(ticks_ms(), max(0, timeout_ms))
        while True:
            pkt = self._read_packet(deadline if count == 0 else ticks_ms(), "packet", True)
            if pkt is None:
                break
            self._handle(pkt[0], pkt[1], pkt[2], ticks_add(ticks_ms(), self.timeout_ms))
            count += 1
        if self._ping_at is not None and ticks_diff(ticks_ms(), self._ping_at) > self.timeout_ms:
            self.close()
            raise MQTTTimeout("no PINGRESP within %d ms: connection is half-open" % self.timeout_ms)
        return count

    def ping(self):
        """Round trip PINGREQ/PINGRESP within timeout_ms; MQTTTimeout on a half-open link."""
        if self._t is None:
            raise MQTTConnectionError("not connected")
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        self._ping_at = ticks_ms()
        self._send(PINGREQ_PACKET, deadline)
        while self._ping_at is not None:
            pkt = self._read_packet(deadline, "PINGRESP", True)
            if pkt is None:
                self.close()
                raise MQTTTimeout(
                    "no PINGRESP within %d ms: connection is half-open" % self.timeout_ms
                )
            self._handle(pkt[0], pkt[1], pkt[2], deadline)

    def disconnect(self):
        """Say goodbye (best effort, bounded) and close."""
        if self._t is not None:
            try:
                self._send(DISCONNECT_PACKET, ticks_add(ticks_ms(), min(self.timeout_ms, 1000)))
            except MQTTError:
                pass
        self.close()
