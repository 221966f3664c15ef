"""A connected socket whose every wait ends at a deadline, and the errors every transport
raises: the HTTPS client's connections (kpnthings.http_client) and the MQTT session's
(kpnthings.mqtt_session) both read and write through SocketTransport, and kpnthings.dial makes
one when it opens a connection.

Sockets run non-blocking and every wait is a `select.poll` with the time that is left, because
MicroPython's SSL sockets have no `settimeout` and a per-call timeout would let a slow-drip
server stretch a request forever. The errors keep their HTTP names (users catch
`kpnthings.http_client.HTTPError`, which is this class); each is an `OSError`, so a broken peer
can raise nothing else, and no message echoes request data.
"""

from kpnthings.compat import ticks_diff, ticks_ms


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


def _err(cls, msg, status=None):
    e = cls(msg)
    e.status = status
    return e


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
