"""The baseline beside the full-cycle figures: one cycle as a user would write it without this
firmware, from micropython-senml and MicroPython's own HTTPS client example (socket + ssl), but
verified as ours is: build the pack, sign it, POST it over TLS checked against the CA (DER),
read the reply and decode the downlink it carries. No outbox, no retries, no config checks.

Run by kpnthings_tools.bench (full_cycle.baseline_ok) with KPN_BENCH_URL (https://host:port),
KPN_BENCH_UUID, KPN_BENCH_SECRET and KPN_BENCH_CA (a DER file). Prints "@@BASELINE <status>
<led>", led being the downlink's value for "led" (None without one).
"""

import hashlib
import json
import os
import socket
import ssl
from binascii import hexlify

from senml import SenmlPack, SenmlRecord

READINGS = (("temperature", "Cel", 21.5), ("humidity", "%RH", 45.6), ("batteryVoltage", "V", 3.7))
PATH = "/ingestion/ip/senml/v1"


def main():
    host, port = os.getenv("KPN_BENCH_URL")[len("https://") :].split(":")
    uuid, secret = os.getenv("KPN_BENCH_UUID"), os.getenv("KPN_BENCH_SECRET")
    with open(os.getenv("KPN_BENCH_CA"), "rb") as f:
        cadata = f.read()

    pack = SenmlPack("urn:dev:DVNUUID:%s:" % uuid)
    for n, u, v in READINGS:
        pack.add(SenmlRecord(n, unit=u, value=v))
    body = pack.to_json().encode()
    h = hashlib.sha256(body)
    h.update(secret.encode())
    token = hexlify(h.digest()).decode()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=cadata)
    addr = socket.getaddrinfo(host, int(port), 0, socket.SOCK_STREAM)[0][-1]
    s = socket.socket()
    s.settimeout(5)
    s.connect(addr)
    s = ctx.wrap_socket(s, server_hostname=host)
    s.write(
        (
            "POST %s HTTP/1.0\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
            "Things-Message-Token: %s\r\nContent-Length: %d\r\n\r\n"
        )
        % (PATH, host, port, token, len(body))
    )
    s.write(body)
    reply = b""
    while True:
        chunk = s.read(512)
        if not chunk:
            break
        reply += chunk
    s.close()
    head, _, payload = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    led = None
    if payload:
        for rec in json.loads(payload):
            if rec.get("n") == "led":
                led = rec.get("vb")
    print("@@BASELINE %d %s" % (status, led))


main()
