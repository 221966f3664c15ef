"""A small MQTT 3.1.1 client for the device (MicroPython on ESP32/rp2/unix, and CPython).

Why not the firmware's own `umqtt.simple`: its `wait_msg()` calls `sock.setblocking(True)` after
the first byte, which wipes any timeout, so a QoS 1 publish that never gets its PUBACK blocks
forever (and trips the watchdog). It also has no deadline on DNS, connect or CONNACK, never
retransmits, checks the broker's packets with `assert`, cannot take a verifying SSL context for
every port, and is not in the unix port we test on. Making it safe means rewriting it, so this is
a client of our own, built on the same deadline-aware sockets as the HTTPS uplink
(`dial.open_socket`, `dial.make_tls_context`):

- every blocking step ends at a deadline (`timeout_ms`, below the RP2040's 8.3 s watchdog):
  DNS (checked right after the lookup; an IP literal needs none), TCP connect, TLS handshake,
  CONNACK, PUBACK, SUBACK and every read of a packet;
- QoS 0 and 1; a QoS 1 PUBLISH waits for its PUBACK until the deadline and is not sent again
  on the same connection (section 4.4; `resend_ms` > 0 opts in to DUP resends every that many
  ms, which a busy broker forwards as a second copy);
- a received PUBLISH over `max_packet` is read off in small pieces, acknowledged, logged and
  counted (`oversized`), and the connection goes on: the broker sends a retained or queued one
  again after every SUBSCRIBE, so closing would break every connection (issue 17 #13);
- keepalive: PINGREQ when the link has been quiet for half the keepalive; no PINGRESP within
  `timeout_ms` means a half-open connection, which is closed;
- reconnect with exponential backoff and jitter (`ensure_connected`), and every subscription is
  made again after a reconnect;
- TLS verified by default; bad credentials (CONNACK 4 or 5) raise `MQTTAuthError`;
- packets are built in one preallocated bytearray and sent as memoryview slices; a PUBLISH
  payload is written straight from the caller's bytes, never copied.

The mqtt_* keys of config.json are checked and filled by `mqtt_config.validate` (run by config.py
when `transport` is "mqtt"); `mqtt_transport.MQTTTransport` turns them into the same
`send(body) -> Result` uplink as the HTTPS client.
"""

from kpnthings.compat import ticks_add, ticks_diff, ticks_ms

# Packet types: the high nibble of the first byte (MQTT 3.1.1 section 2.2.1).
CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x80
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"
MAX_REMAINING = 268435455  # four varint bytes (section 2.2.3)

_CONNACK_TEXT = (
    "accepted",
    "protocol version refused",
    "client id refused",
    "server unavailable",
    "bad user name or password",
    "not authorized",
)


class MQTTError(OSError):
    """Any MQTT failure. Messages never contain the password or the payload."""


class MQTTProtocolError(MQTTError):
    """The broker (or a test vector) sent bytes that are not valid MQTT 3.1.1."""


class MQTTConnectionError(MQTTError):
    """No usable connection: DNS, TCP, TLS, a closed socket, or a refusal in CONNACK."""


class MQTTTimeout(MQTTConnectionError):
    """A deadline passed: connect, CONNACK, PUBACK, SUBACK, PINGRESP or a read."""


class MQTTAuthError(MQTTConnectionError):
    """CONNACK 4 (bad user name or password) or 5 (not authorized): fix the credentials.

    `code` holds the CONNACK return code.
    """

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Encoding: each builder writes one whole packet into `buf` (a bytearray) and returns its length,
# so the caller sends memoryview(buf)[:n] without allocating.


def _b(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def encode_length(buf, pos, n):
    """Write the remaining-length varint `n` at buf[pos]; return the position after it."""
    if n < 0 or n > MAX_REMAINING:
        raise ValueError("remaining length %d outside 0..%d" % (n, MAX_REMAINING))
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            buf[pos] = byte | 0x80
            pos += 1
        else:
            buf[pos] = byte
            return pos + 1


def _length_size(n):
    return 1 if n < 128 else 2 if n < 16384 else 3 if n < 2097152 else 4


def _header(buf, first, remaining):
    """Fixed header; ValueError if the whole packet cannot fit `buf`."""
    if 1 + _length_size(remaining) + remaining > len(buf):
        raise ValueError(
            "MQTT packet of %d bytes does not fit the %d-byte buffer" % (remaining, len(buf))
        )
    buf[0] = first
    return encode_length(buf, 1, remaining)


def _put_str(buf, pos, data):
    n = len(data)
    if n > 65535:
        raise ValueError("MQTT string longer than 65535 bytes")
    buf[pos] = n >> 8
    buf[pos + 1] = n & 0xFF
    buf[pos + 2 : pos + 2 + n] = data
    return pos + 2 + n


def _put_u16(buf, pos, v):
    buf[pos] = v >> 8
    buf[pos + 1] = v & 0xFF
    return pos + 2


def connect_packet(buf, client_id, keepalive_s, username=None, password=None, clean_session=True):
    """CONNECT (section 3.1). A password needs a user name, as 3.1.1 requires."""
    cid = _b(client_id)
    user = _b(username) if username is not None else None
    pw = _b(password) if password is not None else None
    if pw is not None and user is None:
        raise ValueError("mqtt_password needs mqtt_username (MQTT 3.1.1 section 3.1.2.9)")
    if not 0 <= keepalive_s <= 65535:
        raise ValueError("mqtt_keepalive_s must be 0-65535")
    flags = 0x02 if clean_session else 0
    remaining = 10 + 2 + len(cid)
    if user is not None:
        flags |= 0x80
        remaining += 2 + len(user)
    if pw is not None:
        flags |= 0x40
        remaining += 2 + len(pw)
    pos = _header(buf, CONNECT, remaining)
    pos = _put_str(buf, pos, b"MQTT")
    buf[pos] = 4  # protocol level 3.1.1
    buf[pos + 1] = flags
    pos = _put_u16(buf, pos + 2, keepalive_s)
    pos = _put_str(buf, pos, cid)
    if user is not None:
        pos = _put_str(buf, pos, user)
    if pw is not None:
        pos = _put_str(buf, pos, pw)
    return pos


def check_topic(topic, field="topic", wildcards=False):
    """Return the topic as bytes; ValueError naming `field` if MQTT forbids it."""
    t = _b(topic)
    if not t or len(t) > 65535:
        raise ValueError("%s: must be 1-65535 bytes" % field)
    if b"\x00" in t:
        raise ValueError("%s: must not contain NUL" % field)
    if not wildcards and (b"+" in t or b"#" in t):
        raise ValueError("%s: wildcards + and # are not allowed in a publish topic" % field)
    return t


def publish_header(buf, topic, payload_len, qos=0, packet_id=0, dup=False, retain=False):
    """PUBLISH (section 3.3) up to, not including, the payload, which the caller sends itself."""
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    t = _b(topic)
    first = PUBLISH | (qos << 1) | (1 if retain else 0)
    remaining = 2 + len(t) + payload_len
    if qos:
        if not 0 < packet_id < 65536:
            raise ValueError("packet id must be 1-65535")
        if dup:
            first |= 0x08
        remaining += 2
    head = 1 + _length_size(remaining) + 2 + len(t) + (2 if qos else 0)
    if head > len(buf):
        raise ValueError("MQTT topic does not fit the %d-byte buffer" % len(buf))
    if remaining > MAX_REMAINING:
        raise ValueError("MQTT payload too large")
    buf[0] = first
    pos = encode_length(buf, 1, remaining)
    pos = _put_str(buf, pos, t)
    if qos:
        pos = _put_u16(buf, pos, packet_id)
    return pos


def subscribe_packet(buf, packet_id, topic, qos=1):
    """SUBSCRIBE (section 3.8) for one topic filter."""
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    if not 0 < packet_id < 65536:
        raise ValueError("packet id must be 1-65535")
    t = _b(topic)
    pos = _header(buf, SUBSCRIBE | 0x02, 2 + 2 + len(t) + 1)
    pos = _put_u16(buf, pos, packet_id)
    pos = _put_str(buf, pos, t)
    buf[pos] = qos
    return pos + 1


def puback_packet(buf, packet_id):
    """PUBACK (section 3.4)."""
    buf[0] = PUBACK
    buf[1] = 2
    return _put_u16(buf, 2, packet_id)


# ---------------------------------------------------------------------------------------------
# Decoding. Every check raises MQTTProtocolError: a broker's bytes are never trusted.


def decode_length(data, pos=1):
    """Read a remaining-length varint at data[pos]; return (value, position after it)."""
    value = 0
    shift = 0
    for i in range(4):
        if pos + i >= len(data):
            raise MQTTProtocolError("truncated remaining length")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if i and byte == 0:
                # 3.1.1 section 1.5.3: the shortest encoding is the only valid one.
                raise MQTTProtocolError("remaining length not minimally encoded")
            return value, pos + i + 1
        shift += 7
    raise MQTTProtocolError("remaining length longer than 4 bytes")


def decode_packet(data):
    """Split one whole packet into (type, flags, body memoryview); extra or missing bytes raise."""
    if len(data) < 2:
        raise MQTTProtocolError("packet shorter than 2 bytes")
    length, pos = decode_length(data, 1)
    if pos + length != len(data):
        raise MQTTProtocolError(
            "remaining length %d but %d bytes follow" % (length, len(data) - pos)
        )
    return data[0] & 0xF0, data[0] & 0x0F, memoryview(data)[pos:]


def parse_connack(flags, body):
    """(session_present, return code) of a CONNACK body."""
    if flags or len(body) != 2 or body[0] & 0xFE:
        raise MQTTProtocolError("malformed CONNACK")
    return bool(body[0] & 1), body[1]


def parse_ack(flags, body):
    """Packet id of a PUBACK body."""
    if flags or len(body) != 2:
        raise MQTTProtocolError("malformed PUBACK")
    pid = body[0] << 8 | body[1]
    if not pid:
        raise MQTTProtocolError("PUBACK with packet id 0")
    return pid


def parse_suback(flags, body):
    """(packet id, granted QoS) of a one-topic SUBACK; 0x80 means refused."""
    if flags or len(body) != 3:
        raise MQTTProtocolError("malformed SUBACK")
    code = body[2]
    if code not in (0, 1, 2, 0x80):
        raise MQTTProtocolError("SUBACK return code %d" % code)
    return body[0] << 8 | body[1], code


def parse_publish(flags, body):
    """(topic str, qos, packet id or None, payload memoryview) of a PUBLISH body."""
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MQTTProtocolError("PUBLISH with QoS 3")
    if qos == 2:
        raise MQTTProtocolError("PUBLISH with QoS 2 (subscribed at most QoS 1)")
    if len(body) < 2:
        raise MQTTProtocolError("PUBLISH without topic")
    n = body[0] << 8 | body[1]
    pos = 2 + n
    if pos + (2 if qos else 0) > len(body):
        raise MQTTProtocolError("PUBLISH topic longer than the packet")
    try:
        topic = str(bytes(body[2:pos]), "utf-8")
    except UnicodeError:
        raise MQTTProtocolError("PUBLISH topic is not UTF-8") from None
    pid = None
    if qos:
        pid = body[pos] << 8 | body[pos + 1]
        if not pid:
            raise MQTTProtocolError("PUBLISH with packet id 0")
        pos += 2
    return topic, qos, pid, memoryview(body)[pos:]


# ---------------------------------------------------------------------------------------------
# The client.


def _describe(e):
    return (str(e) or type(e).__name__)[:120]


class MQTTClient:
    """One MQTT session to one broker.

    `on_message(topic, payload_bytes)` is called for every PUBLISH received (from `poll`,
    `publish` or `subscribe`, which all read the socket) up to `max_packet` bytes; a longer one
    only gets one line through `log` (print unless replaced) and a count in `oversized`.
    `tls_context` is an SSL context (see `dial.make_tls_context`) or None for plain TCP.
    `connect` replaces `dial.open_socket(host, port, tls_context, deadline)` in tests.
    """

    def __init__(
        self,
        host,
        port,
        client_id,
        username=None,
        password=None,
        keepalive_s=60,
        tls_context=None,
        timeout_ms=5000,
        resend_ms=0,
        clean_session=True,
        on_message=None,
        max_packet=2048,
        backoff_ms=1000,
        backoff_max_ms=60000,
        connect=None,
    ):
        if not isinstance(timeout_ms, int) or not 0 < timeout_ms < 8000:
            raise ValueError("timeout_ms must be 1-7999 (below the watchdog period)")
        self.host = host
        self.port = port
        self.client_id = client_id
        self.username = username
        self._password = password
        self.keepalive_ms = keepalive_s * 1000
        self._keepalive_s = keepalive_s
        self._tls = tls_context
        self.timeout_ms = timeout_ms
        self.resend_ms = resend_ms
        self.clean_session = clean_session
        self.on_message = on_message
        self._connect = connect
        creds = len(_b(client_id)) + len(_b(username or b"")) + len(_b(password or b""))
        self._buf = bytearray(max(256, 24 + creds))
        self._mv = memoryview(self._buf)
        self._small = bytearray(4)
        self._ackbuf = bytearray(4)  # PUBACKs we send: never disturbs a PUBLISH kept for resend
        self._max_packet = max_packet
        self._t = None
        self._pid = 0
        self._subs = []  # (topic bytes, qos), made again after every reconnect
        self._awaiting = 0  # packet id whose PUBACK/SUBACK we wait for
        self._acked = None
        self._last_tx = 0
        self._last_rx = 0
        self._ping_at = None  # ticks of the PINGREQ still unanswered, else None
        self.backoff_ms = backoff_ms
        self.backoff_max_ms = backoff_max_ms
        self._delay = 0
        self._next_try = ticks_ms()
        self.connects = 0  # successful CONNACKs, for logs and tests
        self.subscribe_error = None  # set when the broker refused a subscription (SUBACK 0x80)
        self._sub_topic = b""
        self.oversized = 0  # PUBLISHes over max_packet, dropped
        self.addresses = []  # the broker's, looked up once for every reconnect (dial.open_socket)
        self.log = print

    def __repr__(self):
        # Deliberately without the password.
        return "<MQTTClient %s@%s:%d %s>" % (
            self.client_id,
            self.host,
            self.port,
            "connected" if self._t else "disconnected",
        )

    __str__ = __repr__

    @property
    def connected(self):
        return self._t is not None

    # -- socket I/O, always against a deadline --------------------------------------------------

    def _send(self, data, deadline):
        from kpnthings import http_client

        try:
            self._t.send_all(data, deadline)
        except http_client.HTTPTimeout:
            self.close()
            raise MQTTTimeout("timed out sending to %s:%d" % (self.host, self.port)) from None
        except (OSError, ValueError) as e:
            self.close()
            raise MQTTConnectionError("send failed: %s" % _describe(e)) from None
        self._last_tx = ticks_ms()

    def _recv_exact(self, n, deadline, what):
        from kpnthings import http_client

        parts = []
        while n:
            try:
                data = self._t.recv(n, deadline)
            except http_client.HTTPTimeout:
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
        from kpnthings import http_client

        if idle_ok:
            try:
                first = self._t.recv(1, deadline)
            except http_client.HTTPTimeout:
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

    def _handle(self, ptype, flags, body, deadline):
        """Act on one packet received outside CONNECT; a malformed one ends the connection."""
        try:
            self._dispatch(ptype, flags, body, deadline)
        except MQTTProtocolError:
            self.close()
            raise

    def _dispatch(self, ptype, flags, body, deadline):
        if ptype == PUBLISH:
            if body is None:
                return  # over max_packet: already read off, acknowledged and counted
            topic, qos, pid, payload = parse_publish(flags, body)
            if self.on_message is not None:
                self.on_message(topic, bytes(payload))
            if qos == 1:
                puback_packet(self._ackbuf, pid)
                self._send(self._ackbuf, deadline)
        elif ptype == PUBACK:
            pid = parse_ack(flags, body)
            if pid == self._awaiting:
                self._acked = pid
        elif ptype == SUBACK:
            pid, code = parse_suback(flags, body)
            if pid == self._awaiting:
                self._acked = pid
                if code == 0x80:
                    # Not fatal: uplinks matter more than downlinks; the refusal is reported.
                    self.subscribe_error = "broker refused the subscription to %s" % (
                        str(self._sub_topic, "utf-8")
                    )
        elif ptype == PINGRESP:
            if flags or len(body):
                raise MQTTProtocolError("malformed PINGRESP")
            self._ping_at = None
        else:
            raise MQTTProtocolError("unexpected packet type 0x%02x" % ptype)

    def _room(self, size):
        # Sized at start for CONNECT; a longer topic is rare, so grow once rather than fail.
        if len(self._buf) < size:
            self._buf = bytearray(size)
            self._mv = memoryview(self._buf)

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    # -- connection -----------------------------------------------------------------------------

    def connect(self):
        """Open a session now: DNS, TCP, TLS, CONNECT/CONNACK, then every subscription again.

        Raises MQTTAuthError for bad credentials, MQTTTimeout or MQTTConnectionError otherwise;
        each failure also pushes back the next `ensure_connected` attempt (backoff).
        """
        from kpnthings import http_client

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
            except http_client.HTTPTimeout:
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
            self.subscribe_error = None
            for topic, qos in self._subs:
                self._subscribe(topic, qos)
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

    def subscribe(self, topic, qos=1):
        """Subscribe now if connected (waits for SUBACK) and again after every reconnect."""
        t = check_topic(topic, "topic", wildcards=True)
        for i in range(len(self._subs)):
            if self._subs[i][0] == t:
                self._subs[i] = (t, qos)
                break
        else:
            self._subs.append((t, qos))
        if self._t is not None:
            self._subscribe(t, qos)

    def _subscribe(self, topic, qos):
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        pid = self._next_pid()
        self._room(8 + len(topic))
        self._sub_topic = topic
        n = subscribe_packet(self._buf, pid, topic, qos)
        self._await(pid, self._mv[:n], None, deadline, "SUBACK", 0)

    def _await(self, pid, head, payload, deadline, what, resend_ms):
        """Send head(+payload), then read until the ack for `pid`; resend with DUP if asked."""
        self._awaiting = pid
        self._acked = None
        try:
            self._send(head, deadline)
            if payload is not None:
                self._send(payload, deadline)
            while self._acked != pid:
                left = ticks_diff(deadline, ticks_ms())
                if left <= 0:
                    self.close()
                    raise MQTTTimeout(
                        "no %s for packet %d within %d ms" % (what, pid, self.timeout_ms)
                    )
                wait = min(left, resend_ms) if resend_ms else left
                pkt = self._read_packet(ticks_add(ticks_ms(), wait), what, True)
                if pkt is not None:
                    self._handle(pkt[0], pkt[1], pkt[2], deadline)
                elif resend_ms and ticks_diff(deadline, ticks_ms()) > 0:
                    # Section 4.4 only demands a resend after a reconnect, but a broker that lost
                    # the packet on the way would otherwise leave us waiting: resend, marked DUP.
                    self._buf[0] |= 0x08
                    self._send(head, deadline)
                    self._send(payload, deadline)
        finally:
            self._awaiting = 0

    def publish(self, topic, payload, qos=1, retain=False):
        """Publish; for QoS 1 return only once the PUBACK came. Raises MQTTError otherwise.

        The whole call ends within `timeout_ms`; on a timeout the connection is closed, since
        its state is unknown, and the caller keeps the message (at-least-once delivery).
        """
        if self._t is None:
            raise MQTTConnectionError("not connected")
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        payload = (
            memoryview(payload) if not isinstance(payload, str) else memoryview(payload.encode())
        )
        pid = self._next_pid() if qos else 0
        self._room(9 + len(_b(topic)))
        n = publish_header(self._buf, topic, len(payload), qos, pid, False, retain)
        if not qos:
            self._send(self._mv[:n], deadline)
            self._send(payload, deadline)
            return
        self._await(pid, self._mv[:n], payload, deadline, "PUBACK", self.resend_ms)

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

    def close(self):
        t = self._t
        self._t = None
        self._ping_at = None
        if t is not None:
            try:
                t.close()
            except (OSError, ValueError):
                pass
