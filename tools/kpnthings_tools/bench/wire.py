"""Wire bytes: the body and the whole HTTP request for the reference reading set, ours beside
micropython-senml's, json.dumps' and the smallest compact encoding; and what batching saves in
TLS handshakes and request bytes per hour."""

import json
import socket
import threading

from kpnthings import auth

from . import per_message, runtimes

SAMPLE_EVERY_S = 60
FLUSH_EVERY_S = 600
TARGET_SINGLE = 0.92
TARGET_BATCH = 0.80
_SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"  # noqa: S105  (the fixed test identity of mp_bench)


def _float_text(x):
    return repr(x)  # CPython's repr is the shortest text that reads back to the same double


def minimal_encoding(rows):
    """The smallest compact JSON for these rows, built independently of kpnthings.senml: no white
    space, shortest floats, keys in SenML order, integer times relative to bt (0 left out), and
    the base fields in the first measurement's record rather than a record of their own."""
    parts = []
    rows = [rows[0] + rows[1]] + rows[2:]
    for row in rows:
        fields = []
        for k, v in row:
            if isinstance(v, str):
                fields.append('"%s":%s' % (k, json.dumps(v)))
            elif isinstance(v, float):
                fields.append('"%s":%s' % (k, _float_text(v)))
            else:
                fields.append('"%s":%d' % (k, v))
        parts.append("{" + ",".join(fields) + "}")
    return ("[" + ",".join(parts) + "]").encode()


def reference_rows(single):
    """Rows (ordered key/value pairs) of the reference set, mirroring bench/mp_bench.py."""
    bn = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"
    bt = 1700000000
    readings = (
        ("temperature", "Cel", 21.5),
        ("humidity", "%RH", 55.3),
        ("batteryVoltage", "V", 3.71),
    )
    if single:
        return [[("bn", bn), ("bt", bt)]] + [[("n", n), ("u", u), ("v", v)] for n, u, v in readings]
    rows = [[("bn", bn), ("bt", bt)]]
    for c in range(10):
        for i, (n, u, v) in enumerate(readings):
            row = [("n", n), ("u", u), ("v", round(v + (c * (i + 1)) * 0.1, 2))]
            if c:
                row.append(("t", c * 60))
            rows.append(row)
    return rows


class _Capture(threading.Thread):
    """A one-shot HTTP server on 127.0.0.1 that records the raw request bytes."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.data = b""

    def run(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(5)
            while b"\r\n\r\n" not in self.data:
                self.data += conn.recv(4096)
            head, _, rest = self.data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(rest) < length:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                rest += chunk
                self.data += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.sock.close()


def request_bytes(body):
    """Total bytes of the HTTP request our client sends for `body` (headers included), measured
    on the wire against a local socket; the Host header is normalised to KPN's host name."""
    from kpnthings.client import Client

    cap = _Capture()
    cap.start()
    uuid = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
    client = Client(uuid, _SECRET, "http://127.0.0.1:%d" % cap.port)
    try:
        client.send(body)
    finally:
        client.close()
    cap.join(5)
    local_host = b"127.0.0.1:%d" % cap.port
    return len(cap.data) - len(local_host) + len(b"prod.dm.kpnthings.com")


def measure_wire(ours_dir, base_dir):
    ours = per_message.mp_json(runtimes.MP64, [ours_dir], "ours", "wire")
    base = per_message.mp_json(runtimes.MP64, [base_dir], "baseline", "wire")
    single_min = minimal_encoding(reference_rows(True))
    batch_min = minimal_encoding(reference_rows(False))
    # The token each side sends must be the one KPN computes over exactly those bytes.
    assert ours["token"] == auth.message_token(ours["pack_single"], _SECRET)
    out = {}
    for key, minimal in (("single", single_min), ("batch", batch_min)):
        o, b = ours[key].encode(), base[key].encode()
        out[key] = {
            "ours": len(o),
            "micropython_senml": len(b),
            "json_dumps": len(base["json_dumps_" + key].encode()),
            "minimal": len(minimal),
            "ours_equals_minimal": o == minimal,
            "ratio": round(len(o) / len(b), 3),
            "request_ours": request_bytes(o),
            "request_micropython_senml": request_bytes(b),
        }
    out["single"]["target"] = TARGET_SINGLE
    out["batch"]["target"] = TARGET_BATCH
    out["single"]["pack_encode"] = len(ours["pack_single"].encode())
    out["samples"] = {
        "ours_single": ours["single"],
        "ours_pack_single": ours["pack_single"],
        "micropython_senml_single": base["single"],
    }
    return out


def measure_connections(wire):
    per_hour_samples = 3600 // SAMPLE_EVERY_S
    flushes = 3600 // FLUSH_EVERY_S
    per_flush = FLUSH_EVERY_S // SAMPLE_EVERY_S  # cycles per batch (10 = the reference batch)
    assert per_flush == 10, "the reference batch is 10 cycles"
    return {
        "schedule": "sample every %d s, flush every %d s" % (SAMPLE_EVERY_S, FLUSH_EVERY_S),
        "batched": {
            "tls_handshakes_per_hour": flushes,
            "request_bytes_per_hour": flushes * wire["batch"]["request_ours"],
        },
        "one_request_per_reading_set": {
            "tls_handshakes_per_hour": per_hour_samples,
            "request_bytes_per_hour": per_hour_samples * wire["single"]["request_ours"],
        },
        "micropython_senml_one_request_each": {
            "tls_handshakes_per_hour": per_hour_samples,
            "request_bytes_per_hour": per_hour_samples
            * wire["single"]["request_micropython_senml"],
        },
    }
