"""MQTT config keys and MQTTTransport's Results, over the scripted link of test_mqtt_packets."""

from test_mqtt_packets import FakeLink, _acks_all, publish_packet

from _support import raises
from kpnthings import client, mqtt, mqtt_config
from kpnthings import mqtt_packets as packets
from kpnthings.mqtt_transport import MQTTTransport

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
URN = "urn:dev:DVNUUID:" + UUID + ":"
PW = "Pw-should-never-show-9"


def _cfg(**kw):
    cfg = {
        "dvnuuid": UUID,
        "secret": "Zq8TnV3kLp2RwX9yHb4mJc7dFg5sAe6u",
        "mqtt_host": "broker.test",
        "mqtt_uplink_topic": "kpn/{dvnuuid}/up",
    }
    cfg.update(kw)
    return cfg


def _field_error(cfg, field):
    e = raises(ValueError, mqtt_config.validate, cfg)
    assert str(e).startswith(field + ":"), str(e)
    assert PW not in str(e)
    return e


# -- config --------------------------------------------------------------------------------------


def test_config_defaults():
    cfg = mqtt_config.validate(_cfg())
    assert cfg["mqtt_tls"] is True and cfg["mqtt_port"] == 8883
    assert cfg["mqtt_client_id"] == UUID
    assert cfg["mqtt_username"] == URN
    assert cfg["mqtt_password"] is None
    assert cfg["mqtt_uplink_topic"] == "kpn/%s/up" % UUID
    assert cfg["mqtt_downlink_topic"] is None
    assert cfg["mqtt_keepalive_s"] == 60 and cfg["mqtt_qos"] == 1
    assert cfg["mqtt_token"] is False
    assert mqtt_config.validate(_cfg(mqtt_tls=False))["mqtt_port"] == 1883
    assert mqtt_config.validate(_cfg(interval_s=300))["mqtt_keepalive_s"] == 600
    assert mqtt_config.validate(_cfg(interval_s=10))["mqtt_keepalive_s"] == 60
    assert mqtt_config.validate(_cfg(interval_s=300, mqtt_keepalive_s=20))["mqtt_keepalive_s"] == 20
    down = mqtt_config.validate(_cfg(mqtt_downlink_topic="kpn/{dvnuuid}/down/#"))
    assert down["mqtt_downlink_topic"] == "kpn/%s/down/#" % UUID


def test_config_errors_name_the_field_never_the_password():
    # The board's short check; the host's full check adds more (tests/host/test_config_check.py).
    missing = _field_error(_cfg(mqtt_host=None, mqtt_password=PW), "mqtt_host")
    assert "Portal" in str(missing)
    _field_error(_cfg(mqtt_uplink_topic=None), "mqtt_uplink_topic")
    _field_error(_cfg(mqtt_uplink_topic="kpn/+/up", mqtt_password=PW), "mqtt_uplink_topic")
    _field_error(_cfg(mqtt_port=0), "mqtt_port")
    _field_error(_cfg(mqtt_port="1883"), "mqtt_port")
    _field_error(_cfg(mqtt_keepalive_s=0), "mqtt_keepalive_s")
    _field_error(_cfg(mqtt_qos=2), "mqtt_qos")
    _field_error(_cfg(mqtt_qos=True), "mqtt_qos")
    _field_error(_cfg(mqtt_tls="yes"), "mqtt_tls")
    _field_error(_cfg(mqtt_token_in="header"), "mqtt_token_in")
    _field_error(_cfg(mqtt_username="", mqtt_password=PW), "mqtt_password")
    _field_error(_cfg(mqtt_password=12345678), "mqtt_password")


def test_config_py_runs_the_mqtt_hook():
    from kpnthings import config

    merged = config.validate(_cfg(board="unix", transport="mqtt", mqtt_password=PW))
    assert merged["mqtt_username"] == URN and merged["mqtt_port"] == 8883
    e = raises(
        config.ConfigError, config.validate, _cfg(board="unix", transport="mqtt", mqtt_port=-1)
    )
    assert "mqtt_port" in str(e)


# -- the transport -------------------------------------------------------------------------------


def _transport(reply, **kw):
    links = []

    def connect(host, port, tls, deadline):
        link = FakeLink(reply)
        links.append(link)
        return link

    kw.setdefault("timeout_s", 0.4)
    cfg = _cfg(mqtt_tls=False, mqtt_downlink_topic="kpn/{dvnuuid}/down", **kw)
    return MQTTTransport(cfg, connect=connect), links


def _with_downlink(payload):
    def reply(data, link):
        answer = _acks_all(data, link)
        if data[0] & 0xF0 == packets.PUBLISH and data[0] & 0x06:
            # The downlink arrives just before the PUBACK, on the same stream.
            topic = b"kpn/%s/down" % UUID.encode()
            n = len(topic)
            body = bytes((n >> 8, n & 0xFF)) + topic + payload
            head = bytearray(5)
            end = packets.encode_length(head, 1, len(body))
            head[0] = 0x30
            answer = bytes(head[:end]) + body + answer
        return answer

    return reply


def test_send_accepted_and_downlink_in_the_result():
    t, links = _transport(_with_downlink(b'[{"bn":"' + URN.encode() + b'","n":"led","vb":true}]'))
    r = t.send(b"[1]")
    assert r.outcome == client.ACCEPTED and r.status is None and r.error is None
    assert r.downlink == [{"n": URN + "led", "vb": True}]
    sent = links[0].sent
    assert sent[0][0] == packets.CONNECT and sent[1][0] == 0x82  # subscribed before the uplink
    assert b"[1]" in sent
    assert isinstance(r, client.Result)


def test_malformed_downlink_reported_not_raised():
    t, _ = _transport(_with_downlink(b"[{not json"))
    r = t.send(b"[1]")
    assert r.outcome == client.ACCEPTED and r.downlink == []
    assert r.error.startswith("downlink refused")


def test_downlinks_bounded_and_counted():
    t, _ = _transport(_acks_all)
    t.max_downlinks = 2
    for i in range(4):
        t._on_message("kpn/down", b'[{"n":"x%d","v":1}]' % i)
    assert t.dropped_downlinks == 2
    assert [r["n"] for r in t.poll()] == ["x2", "x3"]
    assert t.poll() == []


def test_send_outcomes_for_broker_failures():
    t, _ = _transport(lambda data, link: b"\x20\x02\x00\x05")
    r = t.send(b"[1]")
    assert r.outcome == client.UNAUTHORIZED and "CONNACK 5" in r.error
    r = t.send(b"[1]")  # backing off: no new connection attempt, still kept
    assert r.outcome == client.RETRY and "backing off" in r.error

    t, links = _transport(
        lambda data, link: b"\x20\x02\x00\x00" if data[0] == packets.CONNECT else b""
    )
    r = t.send(b"[1]")  # SUBACK never comes
    assert r.outcome == client.RETRY and "SUBACK" in r.error
    assert links[0].closed


def test_refused_subscription_does_not_block_uplinks():
    def refuse(data, link):
        if data[0] & 0xF0 == packets.SUBSCRIBE:
            return b"\x90\x03" + data[2:4] + b"\x80"
        return _acks_all(data, link)

    t, _ = _transport(refuse)
    r = t.send(b"[1]")
    assert r.outcome == client.ACCEPTED
    assert "refused the subscription to kpn/%s/down" % UUID in r.error


def test_oversized_retained_downlink_does_not_stop_uplinks():
    # Issue 17 #13: the broker sends a retained 4 KB downlink after every SUBACK. It is dropped
    # (and counted); the uplinks go on over the one connection, and later downlinks still come.
    topic = "kpn/%s/down" % UUID

    def reply(data, link):
        answer = _acks_all(data, link)
        if data[0] & 0xF0 == packets.SUBSCRIBE:
            answer += publish_packet(topic, b"[" + b" " * 4000 + b"]", 1, 77)
        return answer

    t, links = _transport(reply)
    t.client.log = lambda line: None
    for _ in range(3):
        r = t.send(b"[1]")
        assert r.outcome == client.ACCEPTED and r.error is None, r.error
    assert len(links) == 1 and t.client.oversized == 1
    assert b"\x40\x02\x00\x4d" in links[0].sent  # the broker may forget it: PUBACKed
    links[0].inbox += publish_packet(topic, b'[{"n":"led","vb":true}]', 1, 78)
    assert t.poll(50) == [{"n": "led", "vb": True}]


def test_tls_needs_a_ca():
    e = raises(ValueError, MQTTTransport, _cfg())
    assert str(e).startswith("mqtt_ca_file:")


def test_client_backoff_grows_and_gates_attempts():
    attempts = []

    def refuse(host, port, tls, deadline):
        attempts.append(1)
        raise OSError("connect refused")

    c = mqtt.MQTTClient("h", 1883, "id", connect=refuse, backoff_ms=1000, backoff_max_ms=8000)
    delays = []
    for _ in range(5):
        raises(mqtt.MQTTConnectionError, c.connect)
        delays.append(c.retry_in_ms())
    # Each delay lies in [d/2, d] for d = 1, 2, 4, 8, 8 s (jitter), so the floor doubles.
    floors = (500, 1000, 2000, 4000, 4000)
    for i in range(5):
        d, floor = delays[i], floors[i]
        assert floor - 50 <= d <= 2 * floor, delays
    e = raises(mqtt.MQTTConnectionError, c.ensure_connected)
    assert "backing off" in str(e) and len(attempts) == 5


def test_token_placement():
    from kpnthings import auth

    body = b'[{"n":"x","v":1}]'
    token = auth.message_token(body, _cfg()["secret"])
    t, _ = _transport(_acks_all, mqtt_token=True)
    assert t._payload(body) == ("kpn/%s/up/%s" % (UUID, token), body)  # appended
    t, _ = _transport(_acks_all, mqtt_token=True, mqtt_uplink_topic="t/{token}/{dvnuuid}")
    assert t._payload(body) == ("t/%s/%s" % (token, UUID), body)  # placed
    t, _ = _transport(_acks_all, mqtt_token=True, mqtt_token_in="wrapper")
    wrapped = b'{"token":"' + token.encode() + b'","body":' + body + b"}"
    assert t._payload(body) == ("kpn/%s/up" % UUID, wrapped)
    t, _ = _transport(_acks_all)
    assert t._payload(body) == ("kpn/%s/up" % UUID, body)  # no token unless asked


def test_a_slow_puback_gets_no_dup_on_the_same_connection():
    # Issue 18, item 4: the transport made its client resend a QoS 1 PUBLISH with DUP after
    # half of timeout_s on the same live connection, so a busy broker forwarded two copies.
    # MQTT 3.1.1 section 4.4 resends only after a reconnect.
    from test_mqtt_packets import _lossy

    t, links = _transport(_lossy, timeout_s=1.2)
    r = t.send(b"[1]")
    assert r.outcome == client.RETRY and "PUBACK" in r.error
    publishes = [d for d in links[0].sent if d[0] & 0xF0 == packets.PUBLISH]
    assert len(publishes) == 1, publishes
    assert links[0].closed  # the reading stays queued; the next send reconnects
