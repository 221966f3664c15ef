"""Drives kpnthings.mqtt_transport against a real broker; runs under CPython and MicroPython.

Usage: <python> mqtt_driver.py SPEC.json   (with lib/ on the path)
SPEC: {"scenario": ..., "cfg": {...}, "ca": DER path or null, ...}. Prints one JSON object per
line; reads "go" lines on stdin where the test must act (publish a downlink, stop the broker).
"""

import json
import sys

from kpnthings import mqtt
from kpnthings.compat import sleep_ms, ticks_diff, ticks_ms
from kpnthings.mqtt_transport import MQTTTransport


def out(**kw):
    print(json.dumps(kw))
    try:
        sys.stdout.flush()
    except AttributeError:
        pass


def wait_go():
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit("expected go, got %r" % line)


def body_for(uuid, i):
    return ('[{"bn":"urn:dev:DVNUUID:%s:","n":"counter","v":%d}]' % (uuid, i)).encode()


def transport(spec):
    cadata = None
    if spec.get("ca"):
        with open(spec["ca"], "rb") as f:
            cadata = f.read()
    return MQTTTransport(spec["cfg"], cadata=cadata)


def result(r, **kw):
    out(
        event="result",
        outcome=r.outcome,
        status=r.status,
        error=r.error,
        downlink=[sorted(rec.items()) for rec in r.downlink],
        **kw,
    )


def publish_downlink(spec):
    uuid = spec["cfg"]["dvnuuid"]
    t = transport(spec)
    result(t.send(body_for(uuid, 1)))
    wait_go()  # the test published a downlink: it comes with the next Result
    result(t.send(body_for(uuid, 2)))
    wait_go()  # another downlink: this time poll() picks it up between uplinks
    start = ticks_ms()
    records = []
    while not records and ticks_diff(ticks_ms(), start) < 10000:
        records = t.poll(200)
    out(event="polled", downlink=[sorted(rec.items()) for rec in records])
    t.close()


def stream(spec):
    """Append readings 0..n-1 to an outbox, flush it; ack only on ACCEPTED."""
    from kpnthings.outbox import Outbox

    uuid = spec["cfg"]["dvnuuid"]
    n = spec["n"]
    box = Outbox(spec["outbox"])
    t = transport(spec)
    start = ticks_ms()
    acked = []
    retries = 0
    i = 0
    while len(acked) < n and ticks_diff(ticks_ms(), start) < spec.get("limit_ms", 60000):
        if i < n:
            box.append({"n": "counter", "v": i})
            i += 1
        for rec in box.peek(8):
            r = t.send(body_for(uuid, rec["v"]))
            if r.outcome != "accepted":
                retries += 1
                out(event="retry", error=r.error, queued=len(box))
                sleep_ms(100)
                break
            box.ack(1)
            acked.append(rec["v"])
            out(event="acked", v=rec["v"])
        sleep_ms(spec.get("pace_ms", 50))
    out(event="done", acked=acked, queued=len(box), retries=retries, connects=t.client.connects)
    t.close()


def stalled(spec):
    """One good send; the test SIGSTOPs the broker; then a send and a keepalive must time out."""
    uuid = spec["cfg"]["dvnuuid"]
    t = transport(spec)
    result(t.send(body_for(uuid, 1)))
    wait_go()
    start = ticks_ms()
    r = t.send(body_for(uuid, 2))
    result(r, elapsed_ms=ticks_diff(ticks_ms(), start), connected=t.client.connected)
    # Half-open detection without a publish: a fresh link, then only keepalive pings.
    wait_go()  # broker resumed
    sleep_ms(t.client.retry_in_ms())
    t.client.ensure_connected()
    out(event="reconnected", connected=t.client.connected)
    wait_go()  # broker stopped again
    start = ticks_ms()
    err = None
    limit = spec["cfg"]["mqtt_keepalive_s"] * 1000 * 4 + 10000
    while ticks_diff(ticks_ms(), start) < limit:
        try:
            t.client.poll(100)
        except mqtt.MQTTError as e:
            err = "%s: %s" % (type(e).__name__, e)
            break
    out(
        event="halfopen",
        error=err,
        elapsed_ms=ticks_diff(ticks_ms(), start),
        connected=t.client.connected,
    )
    t.client.close()


def send_once(spec):
    """Append one reading to an outbox and try to deliver it once; report what stayed queued."""
    from kpnthings.outbox import Outbox

    uuid = spec["cfg"]["dvnuuid"]
    box = Outbox(spec["outbox"])
    box.append({"n": "counter", "v": 7})
    try:
        t = transport(spec)
    except ValueError as e:
        out(event="config_error", error=str(e))
        return
    start = ticks_ms()
    r = t.send(body_for(uuid, box.peek(1)[0]["v"]))
    if r.outcome == "accepted":
        box.ack(1)
    result(r, elapsed_ms=ticks_diff(ticks_ms(), start), queued=len(box))
    t.close()


def oversized(spec):
    """A retained downlink over max_packet waits on the broker: two connections, then a poll."""
    uuid = spec["cfg"]["dvnuuid"]
    t = transport(spec)
    t.client.log = lambda line: out(event="log", line=line)
    result(t.send(body_for(uuid, 1)), oversized=t.client.oversized)
    t.client.close()  # a fresh connection: the broker sends the retained message again
    result(t.send(body_for(uuid, 2)), oversized=t.client.oversized, connects=t.client.connects)
    wait_go()  # the test published a small downlink
    start = ticks_ms()
    records = []
    while not records and ticks_diff(ticks_ms(), start) < 10000:
        records = t.poll(200)
    out(event="polled", downlink=[sorted(rec.items()) for rec in records])
    t.close()


SCENARIOS = {
    "publish_downlink": publish_downlink,
    "stream": stream,
    "stalled": stalled,
    "send_once": send_once,
    "oversized": oversized,
}


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    SCENARIOS[spec["scenario"]](spec)


main()
