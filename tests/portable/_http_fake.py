"""A fake transport for kpnthings.http_client: records what is sent, replays canned replies.

Shared by the portable HTTP tests (request bytes, response parsing, the fuzz corpus replay),
with the device they send as (UUID, SECRET) and helpers that build a client and an answer.
"""

from kpnthings import client, http_client

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
# A one-reading pack from UUID, as a device sends it.
BODY = (
    b'[{"bn":"urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:","bt":1700000000},'
    b'{"n":"temperature","u":"Cel","v":21.5}]'
)


class FakeTransport:
    """`replies` are byte chunks handed out one per recv(); then b"" (end of stream), or a
    timeout when `hang` is true, or `error` raised when given. `dead_on_idle` makes
    idle_closed() report a dropped connection."""

    def __init__(self, replies=(), hang=False, dead_on_idle=False, chunk=None, error=None):
        self.sent = []
        self.replies = list(replies)
        if chunk:
            self.replies = _rechunk(self.replies, chunk)
        self.hang = hang
        self.error = error
        self.dead_on_idle = dead_on_idle
        self.closed = False
        self.recv_calls = 0

    def send_all(self, data, deadline):
        if self.closed:
            raise http_client.HTTPError("send on closed fake")
        self.sent.append(bytes(data))

    def recv(self, size, deadline):
        self.recv_calls += 1
        if self.closed:
            raise http_client.HTTPError("recv on closed fake")
        if not self.replies:
            if self.error is not None:
                raise self.error
            if self.hang:
                raise http_client.HTTPTimeout("timed out")
            return b""
        data = self.replies[0]
        if len(data) > size:
            self.replies[0] = data[size:]
            return data[:size]
        self.replies.pop(0)
        return data

    def idle_closed(self):
        return self.dead_on_idle

    def close(self):
        self.closed = True

    def sent_bytes(self):
        return b"".join(self.sent)


def _rechunk(replies, size):
    data = b"".join(replies)
    return [data[i : i + size] for i in range(0, len(data), size)]


class FakeNetwork:
    """A `connect` callable for Client/Connection: hands out the given transports in order;
    an exception instance in the list is raised instead (e.g. a refused connection)."""

    def __init__(self, *transports):
        self.transports = list(transports)
        self.opened = []

    def __call__(self, host, port, deadline):
        if not self.transports:
            raise http_client.HTTPError("connect to %s:%d refused" % (host, port))
        t = self.transports.pop(0)
        if isinstance(t, Exception):
            raise t
        self.opened.append((host, port, t))
        return t


def http_reply(status, body=b"", extra=b""):
    """An HTTP/1.1 answer with this status, its Content-Length and `body`; `extra` adds header
    lines (each ending in CRLF)."""
    head = "HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (status, len(body))
    return head.encode() + extra + b"\r\n" + body


def fake_client(*transports, url="http://127.0.0.1:8080", **kw):
    """(a client.Client for UUID over FakeNetwork(*transports), that network)."""
    net = FakeNetwork(*transports)
    return client.Client(UUID, SECRET, url=url, connect=net, **kw), net


def send_once(reply_bytes, body=BODY, **kw):
    """(the Result of sending `body` once when the server answers reply_bytes, the transport);
    `kw` goes to FakeTransport."""
    t = FakeTransport([reply_bytes], **kw)
    c, _ = fake_client(t)
    return c.send(body), t
