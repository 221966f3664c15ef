"""A tiny HTTP/1.1 client over `socket` + `ssl` for MicroPython (ESP32, rp2, unix) and CPython.

Why not the frozen `requests`: it cannot verify certificates, cannot take an SSL context and
cannot bound a request in time (micropython-lib#838). This module can:

- One deadline (`timeout_ms`) covers connect, TLS handshake, write and read. Sockets run
  non-blocking and every wait is a `select.poll` with the time that is left, because MicroPython's
  SSL sockets have no `settimeout` and a per-call timeout would let a slow-drip server stretch a
  request forever. DNS (`getaddrinfo`) cannot be interrupted on MicroPython; the deadline is
  checked right after it, and an IP literal needs no lookup at all.
- The response body is capped (`max_response`, 4096 bytes by default); headers are read one
  bounded line at a time and only the framing headers are kept. Bytes beyond a cap are an error,
  never a reason to allocate more.
- Framing: `Content-Length`, `Transfer-Encoding: chunked` (decoded, same cap) and read-until-close;
  1xx, 204 and 304 have no body, so they keep the connection without a length.
  KPN answers with Content-Length; chunked is supported because proxies re-frame answers.
- Keep-alive: the connection is reused while the server allows it (HTTP/1.1 default; honours
  `Connection: close`) and while it has been idle less than `max_idle_ms` (4 s: below the
  shortest usual server keep-alive, so a request never races a server closing it). If a
  reused connection proves dead before the first response byte, the request is sent once more
  on a fresh connection; that is safe because the server never saw it.
- The socket is closed on every error path. Every failure is an `HTTPError` (an `OSError`), so a
  hostile or broken server can raise nothing else.
"""

from kpnthings.compat import const, ticks_add, ticks_diff, ticks_ms

_MAX_RESPONSE = const(4096)  # body bytes; a KPN answer holds at most one small downlink pack
_MAX_LINE = const(2048)  # one status, header or chunk-size line
_MAX_HEAD = const(8192)  # the whole header block of one response
_MAX_HEADERS = const(64)
_RECV = const(512)  # bytes asked of the socket at a time: bounds the reader's buffer
_MAX_INTERIM = const(4)  # 1xx answers skipped before the real one


class HTTPError(OSError):
    """Any failure of a request: network, TLS, timeout or a response this module refuses.

    `status` holds the HTTP status when the status line had arrived before the failure.
    Messages never contain request headers or body (the token is derived from the secret).
    """

    status = None


class HTTPTimeout(HTTPError):
    """The request's deadline passed."""


class _DeadConnection(HTTPError):
    """The connection ended before the first response byte: a reused one may be retried."""


class Response:
    """A complete HTTP answer: `status` (int) and `body` (bytes, at most max_response)."""

    def __init__(self, status, body):
        self.status = status
        self.body = body


def _err(cls, msg, status=None):
    e = cls(msg)
    e.status = status
    return e


# ---------------------------------------------------------------------------------------------
# Transport: a connected socket with deadline-aware send/recv.


def _blocked_on(e):
    """If `e` means "try again later", return the poll event to wait for, else 0."""
    import errno
    import select

    name = type(e).__name__
    if name == "SSLWantReadError":  # CPython ssl
        return select.POLLIN
    if name == "SSLWantWriteError":
        return select.POLLOUT
    if name == "BlockingIOError":  # CPython plain socket
        return -1
    code = e.args[0] if e.args else None
    if code == errno.EAGAIN or code == getattr(errno, "EWOULDBLOCK", errno.EAGAIN):
        return -1  # direction decided by the caller
    return 0


class SocketTransport:
    """A connected (and possibly TLS-wrapped) non-blocking socket; every wait ends at a deadline."""

    def __init__(self, sock):
        import select

        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def wait(self, event, deadline):
        left = ticks_diff(deadline, ticks_ms())
        if left <= 0:
            raise _err(HTTPTimeout, "timed out")
        self._poll.modify(self._sock, event)
        ready = self._poll.poll(left)
        if not ready:
            raise _err(HTTPTimeout, "timed out")
        return ready[0][1]

    def handshake(self, deadline):
        """Finish a TLS handshake (CPython only: MicroPython does it inside the first write)."""
        import select

        do = getattr(self._sock, "do_handshake", None)
        if do is None:
            return
        while True:
            try:
                do()
                return
            except (OSError, ValueError) as e:
                ev = _blocked_on(e) if isinstance(e, OSError) else 0
                if not ev:
                    raise _err(HTTPError, "TLS handshake failed: %s" % _describe(e)) from None
                self.wait(select.POLLOUT if ev == select.POLLOUT else select.POLLIN, deadline)

    def send_all(self, data, deadline):
        import select

        view = memoryview(data)
        while len(view):
            try:
                n = self._sock.send(view)
            except ValueError as e:  # MicroPython reports certificate failures so
                raise _err(HTTPError, "TLS failed: %s" % _describe(e)) from None
            except OSError as e:
                ev = _blocked_on(e)
                if not ev:
                    raise _err(_DeadConnection, "send failed: %s" % _describe(e)) from None
                n = None
                if ev == select.POLLIN:
                    self.wait(select.POLLIN, deadline)
                    continue
            if n is None:  # MicroPython SSL socket: would block (also mid-handshake)
                self.wait(select.POLLOUT, deadline)
                continue
            view = view[n:]

    def recv(self, size, deadline):
        """Return up to `size` bytes; b"" at end of stream."""
        import select

        while True:
            try:
                data = self._sock.recv(size)
            except ValueError as e:  # MicroPython reports certificate failures so
                raise _err(HTTPError, "TLS failed: %s" % _describe(e)) from None
            except OSError as e:
                ev = _blocked_on(e)
                if not ev:
                    raise _err(_DeadConnection, "receive failed: %s" % _describe(e)) from None
                self.wait(select.POLLOUT if ev == select.POLLOUT else select.POLLIN, deadline)
                continue
            if data is None:  # MicroPython SSL socket: nothing yet
                self.wait(select.POLLIN, deadline)
                continue
            return data

    def idle_closed(self):
        """True if an idle kept-alive connection was closed (or got stray bytes) meanwhile."""
        import select

        try:
            self._poll.modify(self._sock, select.POLLIN)
            return bool(self._poll.poll(0))
        except (OSError, ValueError):
            return True

    def close(self):
        try:
            self._sock.close()
        except (OSError, ValueError):
            pass


def _describe(e):
    # OSError texts differ per port; keep them short and never echo request data.
    # mbedTLS messages on MicroPython come wrapped in newlines.
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:120]


# ---------------------------------------------------------------------------------------------
# Response parsing.


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


# ---------------------------------------------------------------------------------------------
# The connection.


# Bytes preallocated per connection for one request (headers + body); see Connection._write.
_WRITE_BUFFER = const(1536)
# A kept-alive connection idle longer than this is not reused: servers close idle connections
# after 5 s (Apache's default) to 75 s (nginx), and a request written while the server closes
# may be read, lost with the connection, and then sent again and stored twice.
MAX_IDLE_MS = 4000


class Connection:
    """Requests to one origin, reusing one connection while the server allows it.

    `connect(host, port, deadline)` returns a transport with `send_all(data, deadline)`,
    `recv(size, deadline)`, `idle_closed()` and `close()`; tests inject a fake one.
    """

    def __init__(
        self,
        host,
        port,
        tls_context=None,
        timeout_ms=5000,
        max_response=_MAX_RESPONSE,
        connect=None,
        write_buffer=_WRITE_BUFFER,
        addresses=None,
        max_idle_ms=MAX_IDLE_MS,
    ):
        if not isinstance(timeout_ms, int) or timeout_ms <= 0:
            raise ValueError("timeout_ms must be a positive integer")
        if not isinstance(max_response, int) or max_response < 0:
            raise ValueError("max_response must be a non-negative integer")
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self.max_response = max_response
        self._tls = tls_context
        self._connect = connect
        self._transport = None
        self.addresses = addresses  # the server's address, kept by our owner (dial.open_socket)
        self.max_idle_ms = max_idle_ms
        self._used_at = 0  # ticks when the kept connection last answered
        # The scheme's own port is left out of Host, as browsers do.
        self._host_header = (host if port in (80, 443) else "%s:%d" % (host, port)).encode()
        # Allocated once, while the heap is young: a request's own 1.5 KB block, every cycle
        # of a long run, is what a fragmented heap fails to find (seen in the 10 000-cycle run).
        self._buf = bytearray(write_buffer) if write_buffer else None

    def _open(self, deadline):
        if self._connect is not None:
            self._transport = self._connect(self.host, self.port, deadline)
            return
        from kpnthings import dial, unload

        try:
            self._transport = dial.open_socket(
                self.host, self.port, self._tls, deadline, self.addresses
            )
        finally:
            unload("dial")  # needed again only when this connection is gone

    def _write(self, method, path, headers, body, deadline):
        # One write per request: written piece by piece, the small writes wait for the
        # server's delayed ACK (Nagle: about 40 ms a request) and, over TLS, each becomes a
        # record of its own. The request is laid out in the connection's preallocated buffer;
        # one larger than that goes out as head, then body.
        parts = [method.encode(), b" ", path.encode(), b" HTTP/1.1\r\nHost: "]
        parts.append(self._host_header)
        for name, value in headers:
            if isinstance(value, str):
                value = value.encode()
            parts.append(b"\r\n")
            parts.append(name.encode())
            parts.append(b": ")
            parts.append(value)
        parts.append(b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        buf = self._buf
        size = len(body)
        for p in parts:
            size += len(p)
        if buf is None or size > len(buf):
            head = b"".join(parts)
            parts = None
            self._transport.send_all(head, deadline)
            if body:
                self._transport.send_all(body, deadline)
            return
        i = 0
        for p in parts:
            buf[i : i + len(p)] = p
            i += len(p)
        buf[i:size] = body
        parts = None
        self._transport.send_all(memoryview(buf)[:size], deadline)

    def _exchange(self, method, path, headers, body, deadline):
        self._write(method, path, headers, body, deadline)
        reader = _Reader(self._transport, deadline)
        return read_response(reader, self.max_response)

    def request(self, method, path, headers=(), body=b""):
        """Send one request and return its Response; raises HTTPError (or HTTPTimeout).

        `headers` is a sequence of (name, value) pairs written in that order, after Host and
        before Content-Length (both added here).
        """
        for name, value in headers:
            # CR or LF would let a value smuggle in headers of its own.
            if isinstance(value, str):
                broken = "\r" in value or "\n" in value
            else:
                broken = b"\r" in value or b"\n" in value
            if broken or "\r" in name or "\n" in name:
                raise ValueError("header %s must be one line" % name.split("\n")[0][:40])
        deadline = ticks_add(ticks_ms(), self.timeout_ms)
        try:
            reused = self._transport is not None
            if reused and (
                ticks_diff(ticks_ms(), self._used_at) > self.max_idle_ms
                or self._transport.idle_closed()
            ):
                self.close()  # idle past a server's keep-alive: it may be closing it now
                reused = False
            if self._transport is None:
                self._open(deadline)
            try:
                response, keep_alive = self._exchange(method, path, headers, body, deadline)
            except _DeadConnection as e:
                if not reused:
                    raise HTTPError(str(e)) from None
                # The server dropped the idle connection before reading this request.
                self.close()
                self._open(deadline)
                try:
                    response, keep_alive = self._exchange(method, path, headers, body, deadline)
                except _DeadConnection as e2:
                    raise HTTPError(str(e2)) from None
            if not keep_alive:
                self.close()
            self._used_at = ticks_ms()
            return response
        except BaseException:
            self.close()
            raise

    def close(self):
        t = self._transport
        self._transport = None
        if t is not None:
            t.close()
