"""The emulator's routes: the device endpoint, the JSON API for people and tests, the dashboard.

``POST /ingestion/ip/senml/v1`` is the device's (emulator_ingest), ``GET /`` the dashboard
(emulator_dashboard); the JSON API:

- ``GET  /api/devices``                        registered devices: name, last seen, last outcome,
  and the health panel of their health records (emulator_health);
- ``GET  /api/devices/<uuid>``                 one of them;
- ``GET  /api/devices/<uuid>/messages``        requests from that device, oldest first;
- ``GET  /api/messages``                       every request, also those no device owns;
- ``GET  /api/devices/<uuid>/downlinks``       the queue: queued or delivered, and when, and
  what the device answered (emulator_answers);
- ``POST /api/devices/<uuid>/downlinks``       queue a SenML JSON pack (201); from a browser
  (a request with ``Origin``) only when sent by the page itself, opened by IP or localhost (403).

The message lists take ``?since=<id>`` (only newer messages, for polling) and ``?limit=<n>``
(default 100, at most 1000; the newest ``n`` are returned, oldest first).

With an API token (``serve(api_token=...)``; ``kpnthings mock-server`` makes one whenever it
listens beyond this machine), every ``/api/`` request must carry ``Authorization: Bearer
<token>``, else **401**: on a LAN, no one else lists the readings or queues downlinks. The
dashboard's files hold no data and are served to anyone; the page takes the token from its
address (``/#token=<token>``) and sends it with each API request. The device endpoint never
needs it: a device proves itself with its Things-Message-Token, as at KPN.
"""

import hmac
import ipaddress
import secrets
import threading
from urllib.parse import parse_qs, urlsplit

from kpnthings_tools import emulator_dashboard, emulator_updates
from kpnthings_tools.emulator_answers import answer_in
from kpnthings_tools.emulator_http import FramedHandler, Server
from kpnthings_tools.emulator_ingest import INGEST_PATH, EmulatorError


def is_loopback(host):
    """Whether `host` (an address to bind) reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_api_token():
    """A fresh API token: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


class _Handler(FramedHandler):
    """The routes of the device endpoint, the API and the dashboard."""

    def _post(self):
        path = urlsplit(self.path).path
        if path == INGEST_PATH:
            body = self._read_body()
            if body is None:
                return
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                reason = "Content-Type must be application/json"
                self.emulator.reject_request(400, reason, body)
                self._respond(400, reason + "\n", note="malformed")
                return
            token = self.headers.get("Things-Message-Token")
            status, response, message = self.emulator.ingest(body, token)
            note = "%s device=%s" % (message["outcome"], message["dvnuuid"] or "-")
            answer = answer_in(message)
            if answer is not None:
                note += " answer=%r" % answer
            if message["downlink_id"] is not None:
                note += " downlink=%d" % message["downlink_id"]
            if status == 200:
                # The queued downlink goes to its own device byte for byte.
                self._respond(200, response, "application/json", note=note, scrub=False)
            else:
                self._respond(status, response, note=note + " (" + message["reason"] + ")")
            return
        if emulator_updates.handle_post(self, path):
            return
        if not self._api_allowed(path):
            return
        parts = self._api_parts(path)
        if parts is not None and len(parts) == 3 and parts[2] == "downlinks":
            if not self._same_origin():
                reason = (
                    "downlinks may be queued from the emulator's own page only, opened at"
                    " its IP address or localhost"
                )
                self._discard_body()
                self._respond(403, reason + "\n", close=True, note="cross-origin refused")
                return
            body = self._read_body()
            if body is None:
                return
            try:
                entry = self.emulator.queue_downlink(parts[1], body)
            except EmulatorError as e:
                self._respond(e.status, e.reason + "\n", note="downlink refused")
                return
            self._json(201, entry, note="downlink %d queued" % entry["id"])
            return
        self._not_found()

    def _get(self):
        split = urlsplit(self.path)
        page = emulator_dashboard.page_for(split.path)
        if page is not None:
            body, content_type, headers = emulator_dashboard.page(page)
            self._respond(200, body, content_type, scrub=False, headers=headers)
            return
        if emulator_updates.handle_get(self, split):
            return
        if split.path == "/":
            # An install without the package data: say so rather than a bare 404.
            self._respond(404, "the dashboard files (kpnthings_tools/static) are not installed\n")
            return
        if not self._api_allowed(split.path):
            return
        parts = self._api_parts(split.path)
        query = parse_qs(split.query)
        try:
            since = int(query.get("since", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
        except ValueError:
            self._respond(400, "since and limit must be integers\n")
            return
        try:
            if split.path == "/api/messages":
                self._json(200, self.emulator.messages(None, since, limit))
            elif parts == ["devices"]:
                self._json(200, self.emulator.devices())
            elif parts is not None and len(parts) == 2 and parts[0] == "devices":
                self._json(200, self.emulator.device_info(parts[1]))
            elif parts is not None and len(parts) == 3 and parts[2] == "messages":
                self._json(200, self.emulator.device_messages(parts[1], since, limit))
            elif parts is not None and len(parts) == 3 and parts[2] == "downlinks":
                self._json(200, self.emulator.downlinks(parts[1]))
            else:
                self._not_found()
        except EmulatorError as e:
            self._respond(e.status, e.reason + "\n")

    def _api_allowed(self, path):
        """True, or False after answering 401: with an API token set, every /api/ request
        must bring it (compared in constant time)."""
        token = self.server.api_token
        if token is None or not path.startswith("/api/"):
            return True
        given = self.headers.get("Authorization") or ""
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode("utf-8", "replace"), token.encode("utf-8")
        ):
            return True
        self._discard_body()
        self._respond(
            401,
            "the emulator's API needs its token: send Authorization: Bearer <token> (the"
            " mock-server printed it at start; the dashboard takes it from /#token=<token>)\n",
            note="no API token" if not given else "wrong API token",
            headers=(("WWW-Authenticate", 'Bearer realm="kpnthings emulator"'),),
        )
        return False

    def _api_parts(self, path):
        """["devices", "<uuid>", ...] for an /api/devices path, else None."""
        if not path.startswith("/api/devices"):
            return None
        parts = [p for p in path[len("/api/") :].split("/") if p]
        return parts if parts and parts[0] == "devices" else None

    def _same_origin(self):
        """False for a browser request sent by another site's page.

        Browsers put ``Origin`` on every POST; a page elsewhere on the web could otherwise
        queue downlinks to a bench device through the visitor's browser. Tools and devices
        send no ``Origin`` and are not affected. The page must also be addressed by an IP
        address or ``localhost``: a site that re-points its own name at 127.0.0.1 (DNS
        rebinding) would otherwise count as the same origin.
        """
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        host = self.headers.get("Host") or ""
        scheme = "https" if getattr(self.server, "ssl_context", None) is not None else "http"
        if origin != "%s://%s" % (scheme, host):
            return False
        name = urlsplit(origin).hostname or ""
        if name == "localhost":
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def _not_found(self):
        self._discard_body()
        self._respond(404, "no such endpoint: %s %s\n" % (self.command, self.path))


class EmulatorServer:
    """A running emulator: ``.url``, ``.host``, ``.port``, ``.shutdown()``; a context manager.

    ``shutdown()`` stops serving, drops open keep-alive connections and closes the database.
    """

    def __init__(self, emulator, host, port, ssl_context=None, api_token=None):
        self.emulator = emulator
        self.api_token = api_token
        self._server = Server((host, port), emulator, ssl_context, api_token, _Handler)
        self.host = host
        self.port = self._server.server_address[1]
        scheme = "https" if ssl_context is not None else "http"
        shown = "[%s]" % host if ":" in host else host
        self.url = "%s://%s:%d" % (scheme, shown, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="kpnthings-emulator",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False

    def shutdown(self):
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(5)
        self.emulator.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
