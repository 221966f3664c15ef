"""MQTT 3.1.1 packets for kpnthings.mqtt: the packet types, the errors, and the codec.

Each builder writes one whole packet into a caller's bytearray and returns its length, so the
client sends memoryview slices without allocating; each parser checks one packet's body and
raises MQTTProtocolError for bytes that are not valid MQTT 3.1.1. No I/O here: the session
(kpnthings.mqtt_session) and the client (kpnthings.mqtt) do that.
"""

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
