"""The emulator's HTTP/1.1 plumbing: a threaded server and the framing every answer shares.

Keep-alive (the device client keeps its TLS connection open between packs), the TLS handshake
in the handler's thread, ``Content-Length`` checked and oversize bodies drained before the 4xx,
one scrubbed log line an answer, and a 500 instead of a dropped connection when the emulator
has a bug. What each path does is emulator_api's.
"""

import json
import re
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# An oversize body is read and thrown away up to this size before answering 413: closing a
# socket with unread data makes Linux send RST, and the client would lose the 413 itself.
_DRAIN_LIMIT = 1024 * 1024
_CONTENT_LENGTH = re.compile(r"^[0-9]{1,12}$")


class FramedHandler(BaseHTTPRequestHandler):
    """Answers with Content-Length, reads bodies by it, logs each answer; subclasses route
    ``_post`` and ``_get``."""

    # HTTP/1.1 so the device client can keep its (TLS) connection open between packs; every
    # answer therefore carries Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "KPNThingsEmulator/0.1"
    sys_version = ""
    # An idle keep-alive connection is dropped after this, so threads do not pile up.
    timeout = 30
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
    # client's delayed ACK would add ~40 ms to every answer.
    disable_nagle_algorithm = True

    @property
    def emulator(self):
        return self.server.emulator

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        self.server.track(self.connection, True)

    def finish(self):
        try:
            BaseHTTPRequestHandler.finish(self)
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format, *args):
        # The stock log goes to stderr unscrubbed and without outcome; we log in _respond.
        pass

    def _respond(
        self,
        status,
        body: "bytes | str" = b"",
        content_type="text/plain; charset=utf-8",
        close=False,
        note="",
        scrub=True,
        headers=(),
    ):
        if isinstance(body, str):
            body = body.encode("utf-8")
        if scrub and body:
            # Error reasons may quote a value from the request, and a value may be a secret.
            body = self.emulator.scrub(body.decode("utf-8", "replace")).encode("utf-8")
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if close:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        self.emulator.log(
            "%s %s %s %d%s"
            % (
                time.strftime("%H:%M:%S"),
                self.command,
                self.path.split("?", 1)[0],
                status,
                (" " + note) if note else "",
            )
        )

    def _json(self, status, value, note=""):
        text = self.emulator.scrub(json.dumps(value, indent=1, sort_keys=True))
        self._respond(status, text + "\n", "application/json", note=note)

    def _read_body(self):
        """The request body, or None after answering a framing error."""
        if self.headers.get("Transfer-Encoding"):
            reason = "send the body with Content-Length; Transfer-Encoding is not accepted"
            self.emulator.reject_request(411, reason)
            self._respond(411, reason + "\n", close=True, note="length required")
            return None
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            reason = "Content-Length header is required"
            self.emulator.reject_request(411, reason)
            self._respond(411, reason + "\n", note="length required")
            return None
        if len(lengths) != 1 or not _CONTENT_LENGTH.match(lengths[0].strip()):
            reason = "Content-Length must be one decimal number"
            self.emulator.reject_request(400, reason)
            self._respond(400, reason + "\n", close=True, note="bad content-length")
            return None
        length = int(lengths[0].strip())
        if length > self.emulator.max_body:
            reason = "body of %d bytes is above the %d byte limit" % (
                length,
                self.emulator.max_body,
            )
            self._drain(min(length, _DRAIN_LIMIT))
            self.emulator.reject_request(413, reason)
            self._respond(413, reason + "\n", close=True, note="too large")
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            # The peer went away mid-body: nobody is left to answer.
            self.close_connection = True
            return None
        return body

    def _drain(self, n):
        try:
            while n > 0:
                chunk = self.rfile.read(min(n, 65536))
                if not chunk:
                    break
                n -= len(chunk)
        except OSError:
            pass

    def do_POST(self):
        self._guarded(self._post)

    def do_GET(self):
        self._guarded(self._get)

    def _guarded(self, handler):
        try:
            handler()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            raise
        except Exception as e:
            # A bug must not look like a network failure to the device: answer 500 and close.
            self.emulator.log("internal error: %s: %s" % (type(e).__name__, e))
            try:
                self._respond(500, "internal emulator error\n", close=True)
            except OSError:
                self.close_connection = True

    def _discard_body(self):
        # A body we did not read would be parsed as the next request: read it away (so the
        # close does not turn into a RST that eats this answer) and drop the connection.
        if self.command == "POST":
            length = (self.headers.get("Content-Length") or "").strip()
            if _CONTENT_LENGTH.match(length):
                self._drain(min(int(length), _DRAIN_LIMIT))
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, emulator, ssl_context, api_token, handler):
        self.emulator = emulator
        self.ssl_context = ssl_context
        self.api_token = api_token
        self._connections = set()
        self._connections_lock = threading.Lock()
        ThreadingHTTPServer.__init__(self, address, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # The handshake happens in the handler thread (first read), under the handler's
            # timeout, so one stalled client cannot block accept() for everybody.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def track(self, conn, alive):
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self):
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # A client that hangs up or fails the TLS handshake is normal here: one line, no trace.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError, OSError)):
            self.emulator.log("connection from %s ended: %s" % (client_address[0], exc))
        else:
            self.emulator.log(
                "error handling request from %s: %s: %s"
                % (client_address[0], type(exc).__name__, exc)
            )
