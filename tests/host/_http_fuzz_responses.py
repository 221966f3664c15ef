"""Hypothesis strategies for test_http_fuzz.py: hostile HTTP responses, mostly HTTP-shaped, then
perhaps truncated or mutated, delivered in the pieces a network might split them into.

Imports tests/portable/_http_fake, so tests/portable must be on sys.path (the test puts it there).
"""

from _http_fake import UUID
from hypothesis import strategies as st

DOWNLINK = b'[{"bn":"urn:dev:DVNUUID:%s:","n":"led","vb":true}]' % UUID.encode()

# --- strategies -----------------------------------------------------------------------------

_digits = st.integers(0, 99999).map(lambda i: str(i).encode())
_versions = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.x", b"HTTP/1.1 ", b"http/1.1"]
)
_codes = st.one_of(
    st.sampled_from(
        [b"200", b"201", b"204", b"304", b"100", b"101", b"400", b"401", b"404", b"503"]
    ),
    st.integers(0, 1000).map(lambda i: str(i).encode()),
    st.binary(max_size=4),
)
_status_line = st.one_of(
    st.builds(
        lambda v, c, r: v + b" " + c + r,
        _versions,
        _codes,
        st.sampled_from([b"", b" OK", b" \xff"]),
    ),
    st.binary(max_size=40),
)
_names = st.sampled_from(
    [
        b"Content-Length",
        b"content-length",
        b"CONTENT-LENGTH",
        b"Transfer-Encoding",
        b"Connection",
        b"X-Other",
        b"Content-Length ",
        b" Content-Length",
        b"",
        b"Set-Cookie",
    ]
)
_values = st.one_of(
    _digits,
    st.sampled_from(
        [
            b"chunked",
            b"gzip, chunked",
            b"chunked, gzip",
            b"close",
            b"keep-alive",
            b"-1",
            b"+5",
            b"1_0",
            b"0x10",
            b" 12 ",
            b"99999999999",
            b"\t3",
        ]
    ),
    st.binary(max_size=20),
)
_header = st.one_of(
    st.builds(
        lambda n, sep, v: n + sep + v, _names, st.sampled_from([b":", b": ", b" : ", b""]), _values
    ),
    st.binary(max_size=60),
)
_eol = st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r"])


@st.composite
def _chunked_body(draw):
    parts = []
    for data in draw(st.lists(st.binary(max_size=300), max_size=6)):
        size = draw(st.sampled_from(["exact", "exact", "more", "less", "junk"]))
        n = {"exact": len(data), "more": len(data) + 5, "less": max(0, len(data) - 3)}.get(size)
        head = b"zz" if n is None else (b"%x" % n)
        if draw(st.booleans()):
            head += b";ext=1"
        parts.append(head + b"\r\n" + data + draw(_eol))
    if draw(st.booleans()):
        parts.append(b"0\r\n" + draw(st.sampled_from([b"", b"Trailer: x\r\n"])) + b"\r\n")
    return b"".join(parts)


@st.composite
def responses(draw):
    """One response's bytes: mostly HTTP-shaped, then perhaps truncated or mutated."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2000))
    eol = draw(_eol)
    lines = [draw(_status_line)] + draw(st.lists(_header, max_size=8))
    framing = draw(st.sampled_from(["length", "chunked", "none", "random"]))
    if framing == "chunked":
        body = draw(_chunked_body())
        lines.insert(draw(st.integers(1, len(lines))), b"Transfer-Encoding: chunked")
    else:
        body = draw(
            st.one_of(
                st.binary(max_size=600),
                st.sampled_from([b"", b"[]", DOWNLINK]),
                st.integers(4000, 9000).map(lambda n: b"x" * n),
            )
        )
        if framing == "length":  # a Content-Length that fits the body, as real servers send
            lines.insert(draw(st.integers(1, len(lines))), b"Content-Length: %d" % len(body))
        elif framing == "random":
            body = draw(_chunked_body()) if draw(st.booleans()) else body
    data = eol.join(lines) + eol + eol + body
    mutation = draw(st.sampled_from(["none", "none", "truncate", "flip", "insert", "repeat"]))
    if mutation == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    elif mutation == "insert":
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.binary(min_size=1, max_size=20)) + data[i:]
    elif mutation == "repeat":
        data = data * draw(st.integers(2, 3))  # pipelined extra answers
    return data


@st.composite
def deliveries(draw):
    """(chunks, hang, cap): the response split where the network might split it."""
    data = draw(responses())
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    chunks, last = [], 0
    for c in [*cuts, len(data)]:
        if c > last:
            chunks.append(data[last:c])
            last = c
    return chunks, draw(st.booleans()), draw(st.sampled_from([4096, 4096, 64, 0, 1000]))
