"""Replays the saved hostile-response corpus (tests/data/http_corpus.json) on every runtime.

The corpus holds responses found by the hypothesis fuzzer (tests/host/test_http_fuzz.py) plus
hand-written seeds, each with what CPython's run made of it. Here the parser and the client must
do exactly the same under MicroPython: same Response or same HTTPError, same Result.
"""

import binascii
import gc

from _http_fake import FakeNetwork, FakeTransport

from _support import load_json
from kpnthings import client, http_client

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"


def _chunks(case):
    return [binascii.unhexlify(x) for x in case["chunks"]]


def _parse(case):
    t = FakeTransport(_chunks(case), hang=case["hang"])
    conn = http_client.Connection("h.test", 80, connect=FakeNetwork(t), max_response=case["cap"])
    try:
        r = conn.request(
            "POST", "/ingestion/ip/senml/v1", (("Content-Type", "application/json"),), b"[]"
        )
    except http_client.HTTPError as e:
        assert t.closed, case["name"]
        return {"kind": "error", "status": e.status, "error": str(e)}
    assert len(r.body) <= case["cap"]
    return {"kind": "response", "status": r.status, "body": binascii.hexlify(r.body).decode()}


def _send(case):
    t = FakeTransport(_chunks(case), hang=case["hang"])
    c = client.Client(
        UUID, SECRET, url="http://h.test", connect=FakeNetwork(t), max_response=case["cap"]
    )
    r = c.send(b"[]")
    return {
        "outcome": r.outcome,
        "status": r.status,
        "downlink": len(r.downlink),
        "result_error": r.error,
    }


def _cases():
    cases = load_json("http_corpus.json")["cases"]
    assert len(cases) >= 60
    return cases


def test_parser_replays_corpus():
    for case in _cases():
        got = _parse(case)
        want = case["expect"]
        for key in got:
            assert got[key] == want[key], (case["name"], key, got[key], want[key])
        gc.collect()


def test_client_replays_corpus():
    for case in _cases():
        got = _send(case)
        want = case["expect"]
        for key in got:
            assert got[key] == want[key], (case["name"], key, got[key], want[key])
        assert got["outcome"] in (
            client.ACCEPTED,
            client.MALFORMED,
            client.UNAUTHORIZED,
            client.UNKNOWN_DEVICE,
            client.RETRY,
        )
        gc.collect()
