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

The client is layered, one concern a module: `mqtt_packets` (packet types, errors, the codec),
`mqtt_stream` (the byte stream against deadlines), `mqtt_session` (connect, keepalive,
reconnect), and this module's MQTTClient (publish, subscribe and their QoS 1 acknowledgements,
received PUBLISHes). The mqtt_* keys of config.json are checked and filled by
`mqtt_config.validate` (run by config.py when `transport` is "mqtt");
`mqtt_transport.MQTTTransport` turns them into the same `send(body) -> Result` uplink as the
HTTPS client.
"""

from kpnthings.compat import ticks_add, ticks_diff, ticks_ms
from kpnthings.mqtt_packets import (  # noqa: F401  (the errors: the client's public names)
    PINGRESP,
    PUBACK,
    PUBLISH,
    SUBACK,
    MQTTAuthError,
    MQTTConnectionError,
    MQTTError,
    MQTTProtocolError,
    MQTTTimeout,
    _b,
    check_topic,
    parse_ack,
    parse_publish,
    parse_suback,
    puback_packet,
    publish_header,
    subscribe_packet,
)
from kpnthings.mqtt_session import MQTTSession


class MQTTClient(MQTTSession):
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
        super().__init__(
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
        )
        self.resend_ms = resend_ms
        self.on_message = on_message
        self._pid = 0
        self._subs = []  # (topic bytes, qos), made again after every reconnect
        self._awaiting = 0  # packet id whose PUBACK/SUBACK we wait for
        self._acked = None
        self.subscribe_error = None  # set when the broker refused a subscription (SUBACK 0x80)
        self._sub_topic = b""

    def _connected(self):
        # After every CONNACK: the broker forgot our subscriptions with the old session.
        self.subscribe_error = None
        for topic, qos in self._subs:
            self._subscribe(topic, qos)

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
