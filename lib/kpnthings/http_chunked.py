"""Chunked transfer coding (RFC 9112 section 7.1), decoded within the body cap: the rare
framing (KPN answers with Content-Length; a proxy may re-frame), loaded at the first such answer.
"""

from kpnthings.compat import const
from kpnthings.http_response import _number, _strip
from kpnthings.socket_io import HTTPError, _err

_MAX_HEAD = const(8192)  # as kpnthings.http_response's: the whole header block of one response


def read_chunked(reader, cap, parts, status):
    total = 0
    while True:
        line = reader.readline()
        semi = line.find(b";")
        if semi >= 0:
            line = line[:semi]
        size = _number(_strip(line), 16, "chunk size", status)
        if size == 0:
            break
        total += size
        if total > cap:
            raise _err(HTTPError, "response body over %d bytes" % cap, status)
        reader.read_exact(size, parts)
        if reader.readline():
            raise _err(HTTPError, "bad chunk ending", status)
    # Trailer section: read and ignore, bounded like headers.
    used = 0
    while True:
        line = reader.readline()
        if not line:
            return
        used += len(line) + 2
        if used > _MAX_HEAD:
            raise _err(HTTPError, "response trailers too large", status)
