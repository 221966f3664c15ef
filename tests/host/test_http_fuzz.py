"""Hostile responses (issue 5.3): hypothesis drives the HTTP response parser and the client.

At least 10 000 generated responses in all, split at random points as a network would deliver
them. Whatever arrives, the parser returns a Response within the cap or raises HTTPError, closes
the transport on every error, and the client turns it into a Result; nothing else escapes.
Memory stays bounded even for a stream of megabytes.

`python tests/host/test_http_fuzz.py --write-corpus` regenerates tests/data/http_corpus.json,
which tests/portable/test_http_corpus.py replays under CPython and MicroPython.
"""

import binascii
import json
import sys
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "portable"))

import _fuzz_corpus  # noqa: E402
from _http_fake import SECRET, UUID, FakeNetwork, FakeTransport  # noqa: E402
from _http_fuzz_responses import DOWNLINK, deliveries  # noqa: E402

from kpnthings import client, http_client  # noqa: E402

CORPUS = HERE.parent / "data" / "http_corpus.json"
OUTCOMES = {
    client.ACCEPTED,
    client.MALFORMED,
    client.UNAUTHORIZED,
    client.UNKNOWN_DEVICE,
    client.RETRY,
}
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

# --- running one case -----------------------------------------------------------------------


def parse(chunks, hang=False, cap=4096):
    """Drive Connection.request over a fake transport; returns (expectation dict, transport)."""
    t = FakeTransport(chunks, hang=hang)
    conn = http_client.Connection("h.test", 80, connect=FakeNetwork(t), max_response=cap)
    try:
        r = conn.request(
            "POST", "/ingestion/ip/senml/v1", (("Content-Type", "application/json"),), b"[]"
        )
    except http_client.HTTPError as e:
        assert t.closed, "transport left open after an error"
        assert isinstance(str(e), str)
        return {"kind": "error", "status": e.status, "error": str(e)}, t
    assert isinstance(r.status, int) and 200 <= r.status <= 599
    assert isinstance(r.body, bytes)
    assert len(r.body) <= cap
    return {"kind": "response", "status": r.status, "body": r.body.hex()}, t


def send(chunks, hang=False, cap=4096):
    t = FakeTransport(chunks, hang=hang)
    c = client.Client(UUID, SECRET, url="http://h.test", connect=FakeNetwork(t), max_response=cap)
    r = c.send(b"[]")
    assert r.outcome in OUTCOMES
    assert r.status is None or (isinstance(r.status, int) and 100 <= r.status <= 599)
    assert isinstance(r.downlink, list)
    assert r.error is None or isinstance(r.error, str)
    if r.outcome != client.ACCEPTED:
        assert r.downlink == []
    assert SECRET not in repr(r)
    return {
        "outcome": r.outcome,
        "status": r.status,
        "downlink": len(r.downlink),
        "result_error": r.error,
    }


# --- the fuzz tests (7000 + 3000 + 2000 = 12 000 cases) -------------------------------------


@settings(FUZZ, max_examples=7000)
@given(deliveries())
def test_parser_never_raises_anything_else(case):
    chunks, hang, cap = case
    parse(chunks, hang, cap)


@settings(FUZZ, max_examples=3000)
@given(deliveries())
def test_client_always_returns_a_result(case):
    chunks, hang, cap = case
    send(chunks, hang, cap)


@settings(FUZZ, max_examples=2000)
@given(st.lists(st.binary(max_size=700), max_size=8), st.booleans())
def test_raw_bytes(chunks, hang):
    parse(chunks, hang)
    send(chunks, hang)


# --- bounded memory -------------------------------------------------------------------------


class EndlessTransport(FakeTransport):
    """Hands out `head` and then `filler` forever (counts what it handed out)."""

    def __init__(self, head, filler):
        super().__init__()
        self.head = head
        self.filler = filler
        self.handed = 0

    def recv(self, size, deadline):
        data = self.head[:size] if self.head else self.filler[:size]
        self.head = self.head[len(data) :]
        self.handed += len(data)
        return data


def _peak_while(transport, cap=4096):
    # The chunked decoder is imported on first use: a module import is not memory the stream
    # makes the client hold, so it happens before the measurement.
    import kpnthings.http_chunked  # noqa: F401

    conn = http_client.Connection("h.test", 80, connect=FakeNetwork(transport), max_response=cap)
    tracemalloc.start()
    try:
        try:
            conn.request("POST", "/", (), b"[]")
            raised = None
        except http_client.HTTPError as e:
            raised = e
        return tracemalloc.get_traced_memory()[1], raised
    finally:
        tracemalloc.stop()


def test_endless_streams_use_bounded_memory():
    cases = [
        (b"", b"A" * 4096),  # a status line that never ends
        (b"HTTP/1.1 200 OK\r\n", b"X-A: b\r\n" * 512),  # endless headers
        (b"HTTP/1.1 200 OK\r\n\r\n", b"z" * 4096),  # read-until-close that never closes
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n" * 700),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", b"z" * 4096),
    ]
    for head, filler in cases:
        t = EndlessTransport(head, filler)
        peak, raised = _peak_while(t)
        assert isinstance(raised, http_client.HTTPError), head
        assert t.closed
        # Stops reading soon after a cap instead of swallowing the stream ...
        assert t.handed < 64 * 1024, (head, t.handed)
        # ... and never holds much more than the cap at once.
        assert peak < 48 * 1024, (head, peak)


# --- the corpus ------------------------------------------------------------------------------

_SEEDS = [
    ("200 empty", [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]),
    (
        "200 downlink",
        [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(DOWNLINK), DOWNLINK)],
    ),
    ("200 bad downlink", [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n<html"]),
    ("204", [b"HTTP/1.1 204 No Content\r\n\r\n"]),
    ("400", [b"HTTP/1.1 400 Bad\r\nContent-Length: 3\r\n\r\nbad"]),
    ("401", [b"HTTP/1.1 401 No\r\nContent-Length: 0\r\n\r\n"]),
    ("403", [b"HTTP/1.1 403 No\r\n\r\n"]),
    ("404", [b"HTTP/1.1 404 Who\r\nContent-Length: 0\r\n\r\n"]),
    ("503", [b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"]),
    ("bare LF", [b"HTTP/1.1 200 OK\nContent-Length: 2\n\n[]"]),
    ("HTTP/1.0 until close", [b"HTTP/1.0 200 OK\r\n\r\n[]"]),
    ("chunked", [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n"]),
    ("chunked bad size", [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]),
    (
        "chunked missing CRLF",
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]xx0\r\n\r\n"],
    ),
    (
        "TE and CL",
        [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    ),
    ("two lengths", [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"]),
    ("negative length", [b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"]),
    ("plus length", [b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\na"]),
    ("underscore length", [b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n0123456789"]),
    ("huge length", [b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n"]),
    ("over cap", [b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000]),
    ("truncated body", [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]),
    ("truncated head", [b"HTTP/1.1 200 OK\r\nConte"]),
    ("nothing", []),
    ("timeout after status", [b"HTTP/1.1 200 OK\r\n"], True),
    ("folded header", [b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"]),
    ("no colon", [b"HTTP/1.1 200 OK\r\nnonsense\r\n\r\n"]),
    ("space before colon", [b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"]),
    (
        "100 then 200",
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ),
    ("101", [b"HTTP/1.1 101 Switching\r\n\r\n"]),
    ("five 100s", [b"HTTP/1.1 100 C\r\n\r\n" * 5 + b"HTTP/1.1 200 OK\r\n\r\n"]),
    ("HTTP/2", [b"HTTP/2 200\r\n\r\n"]),
    ("status 999", [b"HTTP/1.1 999 X\r\n\r\n"]),
    ("status 099", [b"HTTP/1.1 099 X\r\n\r\n"]),
    ("status letters", [b"HTTP/1.1 2OO OK\r\n\r\n"]),
    ("status no space", [b"HTTP/1.1 200OK\r\n\r\n"]),
    ("NUL and high bytes", [b"\x00\xff\xfe" * 40]),
    ("TLS alert bytes", [b"\x15\x03\x03\x00\x02\x02\x28"]),
    ("long line", [b"HTTP/1.1 200 OK\r\nX: " + b"a" * 3000 + b"\r\n\r\n"]),
    ("many headers", [b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * 70 + b"\r\n"]),
    ("pipelined extra", [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"]),
    ("one byte chunks", [bytes([b]) for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"]),
]


def _case_dict(name, chunks, hang=False, cap=4096):
    expect, _ = parse(chunks, hang, cap)
    expect.update(send(chunks, hang, cap))
    return {
        "name": name,
        "chunks": [binascii.hexlify(c).decode() for c in chunks],
        "hang": hang,
        "cap": cap,
        "expect": expect,
    }


def build_corpus(per_signature=2, examples=4000):
    """Seeds plus generated cases: a couple for every distinct (outcome, error) signature."""
    cases = [_case_dict(*seed) for seed in _SEEDS]

    def entry(case):
        chunks, hang, cap = case
        if sum(len(c) for c in chunks) > 6000:
            return None
        return _case_dict("generated", chunks, hang, cap)

    def signature(e):
        return (e["kind"], e.get("error", "")[:30], e["outcome"], e["status"] is None)

    _fuzz_corpus.add_generated(cases, deliveries(), entry, signature, per_signature, examples)
    return {
        "about": "HTTP responses and what kpnthings.http_client/client make of them; "
        "written by tests/host/test_http_fuzz.py --write-corpus",
        "cases": cases,
    }


def test_corpus_matches_cpython_behaviour():
    # The saved expectations are what CPython does today; MicroPython must match them
    # (tests/portable/test_http_corpus.py). Guard against a stale corpus here.
    corpus = json.loads(CORPUS.read_text())
    assert len(corpus["cases"]) >= 60
    for c in corpus["cases"]:
        chunks = [binascii.unhexlify(x) for x in c["chunks"]]
        again = _case_dict(c["name"], chunks, c["hang"], c["cap"])
        assert again["expect"] == c["expect"], c["name"]


if __name__ == "__main__":
    _fuzz_corpus.main(sys.argv[1:], build_corpus, CORPUS, __doc__)
