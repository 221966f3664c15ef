"""One downlink case through the real path, the same on every runtime.

An HTTP answer carrying `body` goes through a Client over a fake transport, and the downlink in
the Result is applied to an allow-list of actuators whose pins only record what is done to
them. `run_mqtt` hands the same body to MQTTTransport as a received PUBLISH payload instead
(the MQTT downlink path), for the same actuators. Shared by tests/host/test_downlink_fuzz.py
(hypothesis, CPython) and tests/portable/test_downlink_corpus.py (the saved corpus, every
runtime).
"""

import binascii

from _http_fake import FakeNetwork, FakeTransport

from kpnthings import client, downlink, mqtt_transport

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "Dl9fUzzSecretNeverPrinted0x7Qk2Wm4"
BN = "urn:dev:DVNUUID:" + UUID + ":"
OTHER_BN = "urn:dev:DVNUUID:0b3c4d5e-6f70-4182-9384-a5b6c7d8e9f0:"
# The allow-list: two digital outputs (one active low), two PWM outputs (int and float range,
# one on a named pin). "door" and the rest are not in it.
SPEC = {
    "led": {"type": "digital", "pin": 2},
    "relay": {"type": "digital", "pin": 4, "active_low": True},
    "fan": {"type": "pwm", "pin": 5, "min": 0, "max": 100},
    "dimmer": {"type": "pwm", "pin": "GP15", "min": -2.5, "max": 7.5, "freq": 500},
}
STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad"}


class RecordingPin:
    """Stands in for machine.Pin / machine.PWM: every call is appended to `log`."""

    def __init__(self, log, kind, pin):
        self.log = log
        self.kind = kind
        self.pin = pin

    def value(self, x):
        assert self.kind == "digital", "value() on a pwm output"
        self.log.append([self.pin, "value", x])

    def duty_u16(self, d):
        assert self.kind == "pwm", "duty_u16() on a digital output"
        self.log.append([self.pin, "duty", d])


def response(status, body, framing="length"):
    """The bytes of one HTTP answer carrying `body`."""
    head = b"HTTP/1.1 %d %s\r\n" % (status, STATUS_TEXT.get(status, "X").encode())
    if framing == "chunked":
        out = [head, b"Transfer-Encoding: chunked\r\n\r\n"]
        for i in range(0, len(body), 700):
            part = body[i : i + 700]
            out.append(b"%x\r\n" % len(part) + part + b"\r\n")
        out.append(b"0\r\n\r\n")
        return b"".join(out)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def plain(x):
    """A decoded value in JSON-ready form (vd bytes as {"hex": ...})."""
    if isinstance(x, (bytes, bytearray)):
        return {"hex": binascii.hexlify(x).decode()}
    if isinstance(x, dict):
        return dict((k, plain(x[k])) for k in x)
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


def run(body, status=200, framing="length", cap=4096):
    """Send one uplink, get `body` back, apply its downlink. Returns what happened."""
    log = []
    t = FakeTransport([response(status, body, framing)])
    c = client.Client(UUID, SECRET, url="http://h.test", connect=FakeNetwork(t), max_response=cap)
    r = c.send(b"[]")
    acts = downlink.Actuators(
        SPEC, pin_factory=lambda kind, pin, entry: RecordingPin(log, kind, pin)
    )
    applied = []
    if r.outcome == client.ACCEPTED:  # what the device does (kpnthings.device)
        applied = acts.apply(r.downlink, c.base_name)
    return {
        "outcome": r.outcome,
        "status": r.status,
        "error": r.error,
        "downlink": plain(r.downlink),
        "applied": [[n, ok, reason] for n, ok, reason in applied],
        "pins": log,
        "state": [[n, v] for n, v in acts.state_records()],
        "result_repr": repr(r),
    }


MQTT_CONFIG = {
    "dvnuuid": UUID,
    "secret": SECRET,
    "transport": "mqtt",
    "mqtt_host": "127.0.0.1",
    "mqtt_tls": False,
    "mqtt_uplink_topic": "kpn/{dvnuuid}/up",
    "mqtt_downlink_topic": "kpn/{dvnuuid}/down",
}


def run_mqtt(body):
    """The same body as a PUBLISH payload on the downlink topic (no network: the client's
    on_message callback is what a received PUBLISH calls), applied like the HTTP case."""
    log = []
    t = mqtt_transport.MQTTTransport(MQTT_CONFIG, connect=lambda *a: None)
    t.client.on_message(("kpn/%s/down" % UUID).encode(), body)
    records = t.poll(0)
    acts = downlink.Actuators(
        SPEC, pin_factory=lambda kind, pin, entry: RecordingPin(log, kind, pin)
    )
    applied = acts.apply(records, BN)
    return {
        "error": t.downlink_error,
        "downlink": plain(records),
        "applied": [[n, ok, reason] for n, ok, reason in applied],
        "pins": log,
        "state": [[n, v] for n, v in acts.state_records()],
        "result_repr": repr(t),
    }
