"""MQTT 3.1.1 packets byte for byte, hostile input refused, the client over a scripted link."""

from _support import raises
from kpnthings import mqtt, socket_io
from kpnthings import mqtt_packets as packets
from kpnthings.compat import sleep_ms, ticks_add, ticks_diff, ticks_ms


def _built(fn, *args, **kw):
    buf = bytearray(256)
    n = fn(buf, *args, **kw)
    return bytes(buf[:n])


# -- encoding ------------------------------------------------------------------------------------


def test_connect_with_credentials_byte_exact():
    got = _built(packets.connect_packet, "dev1", 60, "u", "p")
    assert got == (
        b"\x10\x16"  # CONNECT, remaining length 22
        b"\x00\x04MQTT\x04"  # protocol name, level 4 (3.1.1)
        b"\xc2"  # user name, password, clean session
        b"\x00\x3c"  # keepalive 60 s
        b"\x00\x04dev1\x00\x01u\x00\x01p"
    )


def test_connect_anonymous_persistent_session():
    got = _built(packets.connect_packet, "c", 0, clean_session=False)
    assert got == b"\x10\x0d\x00\x04MQTT\x04\x00\x00\x00\x00\x01c"


def test_connect_password_needs_user_name():
    e = raises(ValueError, _built, packets.connect_packet, "c", 60, None, "secretpw")
    assert "mqtt_password" in str(e)
    assert "secretpw" not in str(e)


def test_publish_headers_byte_exact():
    assert _built(packets.publish_header, "a/b", 5) == b"\x30\x0a\x00\x03a/b"
    assert _built(packets.publish_header, "a/b", 5, 0, retain=True) == b"\x31\x0a\x00\x03a/b"
    assert _built(packets.publish_header, "a/b", 5, 1, 10) == b"\x32\x0c\x00\x03a/b\x00\x0a"
    assert _built(packets.publish_header, "a/b", 5, 1, 10, True) == b"\x3a\x0c\x00\x03a/b\x00\x0a"
    # 2 + 1 + 200 = 203 needs two length bytes: 0xcb 0x01.
    assert _built(packets.publish_header, "t", 200) == b"\x30\xcb\x01\x00\x01t"


def test_publish_header_refuses_bad_arguments():
    raises(ValueError, _built, packets.publish_header, "t", 1, 2, 1)  # QoS 2 unsupported
    raises(ValueError, _built, packets.publish_header, "t", 1, 1, 0)  # QoS 1 needs an id
    raises(ValueError, _built, packets.publish_header, "t", 1, 1, 65536)
    raises(ValueError, packets.publish_header, bytearray(8), "a-long-topic", 1)  # does not fit


def test_subscribe_puback_pingreq_disconnect_byte_exact():
    assert _built(packets.subscribe_packet, 1, "down/x", 1) == b"\x82\x0b\x00\x01\x00\x06down/x\x01"
    assert _built(packets.puback_packet, 0x1234) == b"\x40\x02\x12\x34"
    assert packets.PINGREQ_PACKET == b"\xc0\x00"
    assert packets.DISCONNECT_PACKET == b"\xe0\x00"


def test_topic_checks_name_the_field():
    e = raises(ValueError, packets.check_topic, "a/+/b", "mqtt_uplink_topic")
    assert str(e).startswith("mqtt_uplink_topic:")
    raises(ValueError, packets.check_topic, "", "t")
    raises(ValueError, packets.check_topic, "a\x00b", "t")
    assert packets.check_topic("a/+/#", "t", wildcards=True) == b"a/+/#"


# -- remaining length ----------------------------------------------------------------------------

_LENGTHS = (
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16383, b"\xff\x7f"),
    (16384, b"\x80\x80\x01"),
    (2097151, b"\xff\xff\x7f"),
    (2097152, b"\x80\x80\x80\x01"),
    (268435455, b"\xff\xff\xff\x7f"),
)


def test_remaining_length_edges_round_trip():
    for value, encoded in _LENGTHS:
        buf = bytearray(5)
        end = packets.encode_length(buf, 1, value)
        assert bytes(buf[1:end]) == encoded, value
        assert packets.decode_length(b"\x30" + encoded) == (value, 1 + len(encoded))


def test_remaining_length_out_of_range():
    raises(ValueError, packets.encode_length, bytearray(6), 0, 268435456)
    raises(ValueError, packets.encode_length, bytearray(6), 0, -1)


def test_remaining_length_malformed():
    raises(mqtt.MQTTProtocolError, packets.decode_length, b"\x30\xff\xff\xff\xff\x01")  # 5 bytes
    raises(mqtt.MQTTProtocolError, packets.decode_length, b"\x30\x80")  # cut short
    raises(mqtt.MQTTProtocolError, packets.decode_length, b"\x30")
    raises(mqtt.MQTTProtocolError, packets.decode_length, b"\x30\x80\x00")  # not minimal


# -- decoding ------------------------------------------------------------------------------------


def test_decode_packets():
    ptype, flags, body = packets.decode_packet(b"\x20\x02\x01\x00")
    assert (ptype, flags) == (packets.CONNACK, 0)
    assert packets.parse_connack(flags, body) == (True, 0)
    ptype, flags, body = packets.decode_packet(b"\x40\x02\x00\x07")
    assert ptype == packets.PUBACK and packets.parse_ack(flags, body) == 7
    ptype, flags, body = packets.decode_packet(b"\x90\x03\x00\x01\x01")
    assert packets.parse_suback(flags, body) == (1, 1)
    ptype, flags, body = packets.decode_packet(b"\x32\x0a\x00\x03a/b\x00\x05hi!")
    topic, qos, pid, payload = packets.parse_publish(flags, body)
    assert (ptype, topic, qos, pid, bytes(payload)) == (packets.PUBLISH, "a/b", 1, 5, b"hi!")
    ptype, flags, body = packets.decode_packet(b"\x30\x05\x00\x01tok")
    assert packets.parse_publish(flags, body)[2] is None


def test_malformed_packets_refused():
    bad = mqtt.MQTTProtocolError
    raises(bad, packets.decode_packet, b"\x20")
    raises(bad, packets.decode_packet, b"\x20\x02\x00")  # truncated
    raises(bad, packets.decode_packet, b"\x20\x02\x00\x00\x00")  # trailing byte
    raises(bad, packets.parse_connack, 1, b"\x00\x00")  # reserved flags
    raises(bad, packets.parse_connack, 0, b"\x02\x00")  # reserved ack bits
    raises(bad, packets.parse_connack, 0, b"\x00")
    raises(bad, packets.parse_ack, 0, b"\x00\x00")  # packet id 0
    raises(bad, packets.parse_ack, 0, b"\x00\x01\x00")
    raises(bad, packets.parse_suback, 0, b"\x00\x01\x05")  # unknown return code
    raises(bad, packets.parse_publish, 6, b"\x00\x01t\x00\x01")  # QoS 3
    raises(bad, packets.parse_publish, 4, b"\x00\x01t\x00\x01")  # QoS 2: never subscribed
    raises(bad, packets.parse_publish, 0, b"\x00\x09t")  # topic past the end
    raises(bad, packets.parse_publish, 2, b"\x00\x01t\x00\x00")  # packet id 0
    raises(bad, packets.parse_publish, 2, b"\x00\x01t\x00")  # packet id cut short
    assert issubclass(bad, mqtt.MQTTError) and issubclass(mqtt.MQTTError, OSError)


# -- the client over a scripted transport ----------------------------------------------------------


class FakeLink:
    """Stands in for socket_io.SocketTransport. `reply(sent_bytes)` returns what the broker
    answers to each send; recv without data waits until the deadline, as a socket does."""

    def __init__(self, reply):
        self.sent = []
        self.inbox = b""
        self.reply = reply
        self.closed = False
        self.asked = []  # the size of every recv, to show what the client reads at once

    def send_all(self, data, deadline):
        data = bytes(data)
        self.sent.append(data)
        self.inbox += self.reply(data, self) or b""

    def recv(self, size, deadline):
        self.asked.append(size)
        if not self.inbox:
            left = ticks_diff(deadline, ticks_ms())
            if left > 0:
                sleep_ms(left)
            raise socket_io.HTTPTimeout("timed out")
        data, self.inbox = self.inbox[:size], self.inbox[size:]
        return data

    def close(self):
        self.closed = True


def _client(reply, **kw):
    links = []

    def connect(host, port, tls, deadline):
        link = FakeLink(reply)
        links.append(link)
        return link

    kw.setdefault("timeout_ms", 400)
    c = mqtt.MQTTClient("broker.test", 1883, "dev1", "u", "pw-not-logged", connect=connect, **kw)
    return c, links


def _acks_all(data, link):
    if data[0] == packets.CONNECT:
        return b"\x20\x02\x00\x00"
    if data[0] & 0xF0 == packets.PUBLISH and data[0] & 0x06:
        return b"\x40\x02" + data[-2:]  # header only: the id ends the header
    if data[0] & 0xF0 == packets.SUBSCRIBE:
        return b"\x90\x03" + data[2:4] + b"\x01"
    if data[0] == packets.PINGREQ:
        return b"\xd0\x00"
    return b""


def test_client_connect_publish_subscribe():
    c, links = _client(_acks_all)
    c.subscribe("down/dev1", 1)  # remembered, made on connect
    c.connect()
    sent = links[0].sent
    assert sent[0] == _built(packets.connect_packet, "dev1", 60, "u", "pw-not-logged")
    assert sent[1] == b"\x82\x0e\x00\x01\x00\x09down/dev1\x01"
    c.publish("up/dev1", b"[1]", 1)
    assert sent[2] == b"\x32\x0e\x00\x07up/dev1\x00\x02" and sent[3] == b"[1]"
    assert "pw-not-logged" not in repr(c)


def _lossy(data, link):
    if data[0] & 0xF0 == packets.PUBLISH:
        # The first copy is "lost" (or its PUBACK is slow); the broker answers a DUP resend.
        return b"\x40\x02" + data[-2:] if data[0] & 0x08 else b""
    return _acks_all(data, link)


def test_client_sends_a_qos1_publish_once_per_connection():
    # Issue 18, item 4: MQTT 3.1.1 section 4.4 resends only after a reconnect; a DUP on the
    # same live connection, when the PUBACK is merely slow, makes a busy broker forward two.
    c, links = _client(_lossy)
    c.connect()
    raises(mqtt.MQTTTimeout, c.publish, "t", b"x", 1)
    assert len([d for d in links[0].sent if d[0] & 0xF0 == packets.PUBLISH]) == 1
    assert links[0].closed  # the next send goes on a new connection


def test_client_resends_with_dup_until_puback_when_asked():
    c, links = _client(_lossy, resend_ms=150)
    c.connect()
    c.publish("t", b"x", 1)
    heads = [d for d in links[0].sent if d[0] & 0xF0 == packets.PUBLISH]
    assert heads[0][0] == 0x32 and heads[1][0] == 0x3A
    assert heads[0][1:] == heads[1][1:]  # same packet id


def test_client_puback_deadline_closes_link():
    def silent(data, link):
        return b"\x20\x02\x00\x00" if data[0] == packets.CONNECT else b""

    c, links = _client(silent, resend_ms=150)
    c.connect()
    e = raises(mqtt.MQTTTimeout, c.publish, "t", b"x", 1)
    assert "PUBACK" in str(e)
    assert links[0].closed and not c.connected
    # Bounded resends: at most timeout/resend + 1 copies.
    assert len([d for d in links[0].sent if d[0] & 0xF0 == packets.PUBLISH]) <= 4


def test_client_bad_credentials():
    for code in (4, 5):
        c, links = _client(lambda data, link, code=code: b"\x20\x02\x00" + bytes((code,)))
        e = raises(mqtt.MQTTAuthError, c.connect)
        assert e.code == code
        assert "pw-not-logged" not in str(e)
        assert not c.connected and links[0].closed
        # Credentials are fixed in the Portal: no reconnect storm.
        assert c.retry_in_ms() > 0
        raises(mqtt.MQTTConnectionError, c.ensure_connected)
    c, _ = _client(lambda data, link: b"\x20\x02\x00\x03")
    e = raises(mqtt.MQTTConnectionError, c.connect)
    assert not isinstance(e, mqtt.MQTTAuthError) and "server unavailable" in str(e)


def test_client_garbage_instead_of_connack():
    c, links = _client(lambda data, link: b"\x40\x02\x00\x01")
    raises(mqtt.MQTTProtocolError, c.connect)
    assert links[0].closed


def test_client_downlink_and_puback():
    got = []

    def reply(data, link):
        if data[0] == packets.CONNECT:
            return b"\x20\x02\x00\x00\x32\x0c\x00\x04down\x00\x09[{}]"
        return b""

    c, links = _client(reply, on_message=lambda t, p: got.append((t, p)))
    c.connect()
    assert c.poll(50) == 1
    assert got == [("down", b"[{}]")]
    assert links[0].sent[-1] == b"\x40\x02\x00\x09"


def test_client_keepalive_and_half_open():
    c, links = _client(_acks_all, keepalive_s=2)
    c.connect()
    c._last_tx = ticks_add(ticks_ms(), -1500)  # quiet for over half the keepalive
    c.poll(50)
    assert links[0].sent[-1] == b"\xc0\x00" and c._ping_at is None  # PINGRESP handled

    def deaf(data, link):
        return b"\x20\x02\x00\x00" if data[0] == packets.CONNECT else b""

    c, links = _client(deaf, keepalive_s=2)
    c.connect()
    c._last_tx = ticks_add(ticks_ms(), -1500)
    c.poll(0)
    assert links[0].sent[-1] == b"\xc0\x00"
    e = raises(mqtt.MQTTTimeout, c.poll, 500)
    assert "half-open" in str(e) and not c.connected


def test_client_resubscribes_after_reconnect():
    c, links = _client(_acks_all)
    c.subscribe("down/+", 1)
    c.connect()
    c.close()
    c.ensure_connected()
    assert len(links) == 2
    assert [d for d in links[1].sent if d[0] == 0x82] == [b"\x82\x0b\x00\x02\x00\x06down/+\x01"]


def test_client_oversized_packet_refused():
    # Only a PUBLISH can be read off and dropped; any other packet this long is garbage.
    c, _ = _client(
        lambda data, link: b"\x20\x02\x00\x00\x40\xff\x7f" if data[0] == packets.CONNECT else b"",
        max_packet=1024,
    )
    c.connect()
    raises(mqtt.MQTTProtocolError, c.poll, 50)
    assert not c.connected


def publish_packet(topic, payload, qos=0, pid=0):
    """A whole PUBLISH as a broker sends it (also used by test_mqtt_transport)."""
    head = bytearray(9 + len(topic))
    n = packets.publish_header(head, topic, len(payload), qos, pid)
    return bytes(head[:n]) + payload


def test_oversized_publish_read_off_acked_and_connection_kept():
    # Issue 17 #13: a downlink over max_packet, retained or queued, arrives right after every
    # SUBACK; closing the link for it made every later connection fail the same way.
    big = b"S" * 3000

    def reply(data, link):
        answer = _acks_all(data, link)
        if data[0] & 0xF0 == packets.SUBSCRIBE:
            answer += publish_packet("down", big)  # QoS 0: nothing to acknowledge
            answer += publish_packet("down", big, 1, 9)
            answer += publish_packet("down", b"[{}]", 1, 10)  # must still be read in step
        return answer

    got = []
    lines = []
    c, links = _client(reply, on_message=lambda t, p: got.append((t, p)))
    c.log = lines.append
    c.subscribe("down", 1)
    c.connect()
    link = links[0]
    assert c.poll(50) == 3
    assert c.connected and c.oversized == 2
    assert got == [("down", b"[{}]")]
    assert [d for d in link.sent if d[0] == packets.PUBACK] == [
        b"\x40\x02\x00\x09",
        b"\x40\x02\x00\x0a",
    ]
    assert max(link.asked) <= 256  # read in small pieces, never the whole payload at once
    assert len(lines) == 2 and "3006" in lines[0] and "topic 4" in lines[0], lines
    assert "SSS" not in "".join(lines)
    c.publish("up", b"[1]", 1)  # the same link goes on
    assert len(links) == 1 and c.connected
    # A PUBLISH whose topic would run past its own end cannot be skipped in step: refused.
    c, links = _client(_acks_all, max_packet=64)
    c.connect()
    links[0].inbox = b"\x30\xc8\x01\x01\x00"  # 200 bytes, topic length 256
    raises(mqtt.MQTTProtocolError, c.poll, 50)
    assert not c.connected


def test_poll_waits_for_the_rest_of_a_split_packet():
    got = []
    c, links = _client(_acks_all, on_message=lambda t, p: got.append(p))
    c.connect()
    link = links[0]
    packet = b"\x30\x0a\x00\x04downdata"
    link.inbox = packet[:3]  # a TCP segment boundary inside the packet
    late = [packet[3:]]
    plain_recv = link.recv

    def recv(size, deadline):
        if not link.inbox and late:
            sleep_ms(30)  # the rest arrives after poll(0)'s own deadline
            if ticks_diff(deadline, ticks_ms()) < 0:
                raise socket_io.HTTPTimeout("timed out")  # as a socket would
            link.inbox = late.pop()
        return plain_recv(size, deadline)

    link.recv = recv
    assert c.poll(0) == 1
    assert got == [b"data"] and c.connected
