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

The connection is here; the socket with deadlines and the errors are kpnthings.socket_io's
(shared with MQTT), the response reader kpnthings.http_response's. `HTTPError`, `HTTPTimeout`
and `Response` are importable from here as before.
"""

from kpnthings.compat import const, ticks_add, ticks_diff, ticks_ms
from kpnthings.http_response import Response, _Reader, read_response  # noqa: F401 (Response)
from kpnthings.socket_io import HTTPError, HTTPTimeout, _DeadConnection  # noqa: F401 (HTTPTimeout)

_MAX_RESPONSE = const(4096)  # body bytes; a KPN answer holds at most one small downlink pack


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
