"""Reading one HTTP/1.1 response, bounded in every dimension, for kpnthings.http_client.

Headers are read one bounded line at a time and only the framing headers are kept; the body is
capped (bytes beyond a cap are an error, never a reason to allocate more). Framing:
`Content-Length`, `Transfer-Encoding: chunked` (kpnthings.http_chunked, loaded at the first
such answer) and read-until-close; 1xx, 204 and 304 have no body. Every failure is an
`HTTPError`, so a hostile or broken server can raise nothing else.
"""

from kpnthings.compat import const
from kpnthings.socket_io import HTTPError, _DeadConnection, _err

_MAX_LINE = const(2048)  # one status, header or chunk-size line
_MAX_HEAD = const(8192)  # the whole header block of one response
_MAX_HEADERS = const(64)
_RECV = const(512)  # bytes asked of the socket at a time: bounds the reader's buffer
_MAX_INTERIM = const(4)  # 1xx answers skipped before the real one


class Response:
    """A complete HTTP answer: `status` (int) and `body` (bytes, at most max_response)."""

    def __init__(self, status, body):
        self.status = status
        self.body = body


class _Reader:
    """Bounded buffered reading from a transport, until the request's deadline."""

    def __init__(self, transport, deadline):
        self._t = transport
        self._deadline = deadline
        self._buf = b""
        self.got_any = False
        self.status = None

    def _recv(self):
        try:
            return self._t.recv(_RECV, self._deadline)
        except _DeadConnection as e:
            if self.got_any:  # part of an answer came: the server saw the request, no resend
                raise _err(HTTPError, str(e), self.status) from None
            raise
        except HTTPError as e:
            if e.status is None:
                e.status = self.status  # a timeout after the status line still reports it
            raise

    def _fill(self):
        data = self._recv()
        if not data:
            if not self.got_any:
                raise _err(_DeadConnection, "connection closed before any response")
            raise _err(HTTPError, "connection closed early: truncated response", self.status)
        self.got_any = True
        self._buf = self._buf + data if self._buf else bytes(data)

    def expect_prefix(self, prefix):
        """Fail as soon as the first bytes cannot start `prefix`: a non-HTTP peer (a TLS alert,
        an SSH banner) is refused at once instead of at the deadline or a line cap."""
        while True:
            n = min(len(self._buf), len(prefix))
            if self._buf[:n] != prefix[:n]:
                raise _err(HTTPError, "not an HTTP/1.x response")
            if n == len(prefix):
                return
            self._fill()

    def readline(self):
        """One line without its CRLF (a bare LF is tolerated), at most _MAX_LINE bytes."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                if i > _MAX_LINE:
                    break
                line = self._buf[:i]
                self._buf = self._buf[i + 1 :]
                if line.endswith(b"\r"):
                    line = line[:-1]
                return line
            if len(self._buf) > _MAX_LINE:
                break
            self._fill()
        raise _err(HTTPError, "response line longer than %d bytes" % _MAX_LINE, self.status)

    def read_exact(self, n, parts):
        """Append exactly n bytes to `parts` (a list)."""
        while n > 0:
            if not self._buf:
                self._fill()
            piece = self._buf[:n]
            self._buf = self._buf[len(piece) :]
            parts.append(piece)
            n -= len(piece)

    def read_to_close(self, cap, parts):
        """Append everything up to end of stream; more than `cap` bytes is an error."""
        total = len(self._buf)
        if self._buf:
            parts.append(self._buf)
            self._buf = b""
        while total <= cap:
            data = self._recv()
            if not data:
                return
            total += len(data)
            parts.append(bytes(data))
        raise _err(HTTPError, "response body over %d bytes" % cap, self.status)


_DIGITS = {10: b"0123456789", 16: b"0123456789abcdefABCDEF"}


def _number(digits, base, what, status):
    """Strict unsigned integer from ASCII bytes: no sign, no spaces, no underscores, no 0x."""
    # strip() with the allowed characters leaves something exactly when another one is there:
    # one C-level pass, then int() (which alone would accept " +0x_1").
    if not digits or len(digits) > 9 or digits.strip(_DIGITS[base]):
        raise _err(HTTPError, "bad %s" % what, status)
    return int(digits, base)


def _parse_status_line(line):
    # b"HTTP/1.1 200 OK"; the reason phrase is optional and ignored.
    if not line.startswith(b"HTTP/1.") or len(line) < 12 or line[8:9] != b" ":
        raise _err(HTTPError, "not an HTTP/1.x response")
    minor = line[7:8]
    if minor not in (b"0", b"1"):
        raise _err(HTTPError, "unsupported HTTP version")
    if len(line) > 12 and line[12:13] != b" ":
        raise _err(HTTPError, "bad status code")
    status = _number(line[9:12], 10, "status code", None)
    if status < 100 or status > 599:
        raise _err(HTTPError, "bad status code")
    return status, minor == b"1"


def _strip(value):
    # Optional white space around a header value (RFC 9110 5.5): spaces and tabs only.
    return value.strip(b" \t")


def _has_token(value, token):
    for part in value.split(b","):
        if _strip(part).lower() == token:
            return True
    return False


def _read_head(reader):
    """Status line and headers of one response: (status, length or None, chunked, keep_alive)."""
    reader.expect_prefix(b"HTTP/1.")
    line = reader.readline()
    status, http11 = _parse_status_line(line)
    reader.status = status
    length = None
    chunked = False
    te = False
    keep_alive = http11
    used = len(line)
    count = 0
    while True:
        line = reader.readline()
        if not line:
            break
        used += len(line) + 2
        count += 1
        if used > _MAX_HEAD or count > _MAX_HEADERS:
            raise _err(HTTPError, "response headers too large", status)
        colon = line.find(b":")
        if colon <= 0 or line[0] in (32, 9):
            # No name, or obsolete line folding (RFC 9112 5.2): refused.
            raise _err(HTTPError, "malformed response header", status)
        name = line[:colon].lower()
        if name[-1] in (32, 9):
            raise _err(HTTPError, "malformed response header", status)
        value = _strip(line[colon + 1 :])
        if name == b"content-length":
            n = _number(value, 10, "Content-Length", status)
            if length is not None and n != length:
                raise _err(HTTPError, "conflicting Content-Length", status)
            length = n
        elif name == b"transfer-encoding":
            te = True
            codings = value.lower().split(b",")
            chunked = _strip(codings[-1]) == b"chunked"
        elif name == b"connection":
            if _has_token(value, b"close"):
                keep_alive = False
            elif not http11 and _has_token(value, b"keep-alive"):
                keep_alive = True
    if te:
        # RFC 9112 6.3: Transfer-Encoding overrides Content-Length; the pair smells of request
        # smuggling, so do not reuse the connection after it.
        if length is not None:
            keep_alive = False
        length = None
        if not chunked:
            keep_alive = False
    elif length is None and status >= 200 and status != 204 and status != 304:
        keep_alive = False  # read to the close; 1xx, 204 and 304 never have a body
    return status, length, chunked, keep_alive


def read_response(reader, cap):
    """Read one complete response; returns (Response, keep_alive). Raises HTTPError only."""
    for _ in range(_MAX_INTERIM + 1):
        status, length, chunked, keep_alive = _read_head(reader)
        if status >= 200:
            break
        if status == 101:
            raise _err(HTTPError, "unexpected protocol switch", status)
    else:
        raise _err(HTTPError, "too many interim responses", status)
    parts = []
    try:
        if status == 204 or status == 304:
            pass  # never a body (RFC 9112 6.3)
        elif chunked:
            # KPN frames its answers with Content-Length; a proxy may re-frame them as chunks,
            # and then does so every time: loaded at the first such answer, and kept.
            from kpnthings.http_chunked import read_chunked

            read_chunked(reader, cap, parts, status)
        elif length is not None:
            if length > cap:
                raise _err(HTTPError, "response body over %d bytes" % cap, status)
            reader.read_exact(length, parts)
        else:
            reader.read_to_close(cap, parts)
    except HTTPError:
        if 200 <= status < 300:
            raise
        # An error answer is decided by its status; its body (an HTML page, say) is not needed,
        # so a large or broken one must not turn a clear 4xx into a retry.
        return Response(status, b""), False
    body = b"".join(parts)
    if reader._buf:
        keep_alive = False  # bytes nobody asked for: do not trust this connection further
    return Response(status, body), keep_alive
