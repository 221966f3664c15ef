"""The emulator's update host (docs/updates.md): it serves signed releases and the offer each
device polls at boot, remembers the version each device runs, and lets a user offer a version to
one device or to all of them (the API, `kpnthings update --offer`, the dashboard).

    GET  /updates/<dvnuuid>?v=<running>  200 {"version", "url"} when a signed release is offered
                                         to it (or to all), else 204; notes the version it runs
    GET  /releases/<version>/<path>      a release's file, from --releases DIR (release build)
    GET  /api/updates                    {"offers", "versions", "releases"}
    POST /api/updates                    {"version": V, "devices": [uuid, ...] | "all"}
                                         (or "version": null: the offer is withdrawn)

Offers and reported versions live in memory; the releases are the folder's. `truncate` (a test
hook: {"<version>/<path>": n}) serves only the first n bytes of a file, then closes.
"""

import json
import threading
from pathlib import Path
from urllib.parse import parse_qs

from .release import MANIFEST, SIGNATURE, VERSION, version_tuple

ALL = "all"


class Updates:
    def __init__(self, releases_dir=None):
        self.root = Path(releases_dir).resolve() if releases_dir else None
        self.offers = {}  # dvnuuid or ALL -> version
        self.versions = {}  # dvnuuid -> the version it said it runs
        self.polled = {}  # dvnuuid -> times it asked
        self.truncate = {}
        self._lock = threading.Lock()

    def releases(self):
        """Signed releases in the folder, oldest version first."""
        if self.root is None or not self.root.is_dir():
            return []
        found = [
            p.name
            for p in self.root.iterdir()
            if VERSION.match(p.name) and (p / MANIFEST).is_file() and (p / SIGNATURE).is_file()
        ]
        return sorted(found, key=version_tuple)

    def offer(self, version, devices):
        """Offer `version` (None: withdraw) to a list of devices or to ALL; ValueError if no
        signed release of it is there."""
        if version is not None and version not in self.releases():
            raise ValueError("no signed release %s in the releases folder" % version)
        targets = [ALL] if devices == ALL else list(devices)
        with self._lock:
            if devices == ALL:
                self.offers.clear()
            for d in targets:
                if version is None:
                    self.offers.pop(d, None)
                else:
                    self.offers[d] = version
        return self.state()

    def state(self):
        with self._lock:
            return {
                "offers": dict(self.offers),
                "versions": dict(self.versions),
                "releases": self.releases(),
            }

    def device(self, dvnuuid):
        """(version it reported, version offered to it) for the device list."""
        with self._lock:
            return self.versions.get(dvnuuid), self.offers.get(dvnuuid, self.offers.get(ALL))

    def poll(self, dvnuuid, running):
        """The offer for one device's poll, or None."""
        with self._lock:
            if running:
                self.versions[dvnuuid] = running
            self.polled[dvnuuid] = self.polled.get(dvnuuid, 0) + 1
            version = self.offers.get(dvnuuid, self.offers.get(ALL))
        if version is None or version not in self.releases():
            return None
        # Offered as asked, even an older version: the board refuses a downgrade itself, which
        # is what the tests check (and a real update host may be wrong too).
        return version

    def file(self, rel):
        """(bytes, n to send or None) of a release file; None when it is not one."""
        if self.root is None or ".." in rel.split("/"):
            return None
        path = (self.root / rel).resolve()
        if self.root not in path.parents or not path.is_file():
            return None
        return path.read_bytes(), self.truncate.get(rel)


def handle_get(handler, split):
    """Answer the update host's GET routes; False when the path is none of them."""
    updates = handler.emulator.updates
    path = split.path
    if path.startswith("/updates/"):
        dvnuuid = path[len("/updates/") :].strip("/").lower()
        running = parse_qs(split.query).get("v", [""])[0][:20]
        version = updates.poll(dvnuuid, running)
        if version is None:
            handler._respond(204, note="no update for %s" % dvnuuid)
            return True
        scheme = "https" if getattr(handler.server, "ssl_context", None) is not None else "http"
        host = handler.headers.get("Host") or "%s:%d" % handler.server.server_address[:2]
        body = {"version": version, "url": "%s://%s/releases/%s" % (scheme, host, version)}
        handler._respond(200, json.dumps(body), "application/json", note="offered " + version)
        return True
    if path.startswith("/releases/"):
        got = updates.file(path[len("/releases/") :])
        if got is None:
            handler._not_found()
            return True
        data, cut = got
        if cut is None:
            handler._respond(200, data, "application/octet-stream", scrub=False)
            return True
        # the test hook: a download cut short (Content-Length says all, fewer bytes come)
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data[:cut])
        handler.wfile.flush()
        handler.close_connection = True
        return True
    if path == "/api/updates":
        if handler._api_allowed(path):
            handler._json(200, updates.state())
        return True
    return False


def handle_post(handler, path):
    """POST /api/updates; False for any other path."""
    if path != "/api/updates":
        return False
    if not handler._api_allowed(path):
        return True
    if not handler._same_origin():
        handler._discard_body()
        handler._respond(403, "updates may be offered from the emulator's own page only\n")
        return True
    body = handler._read_body()
    if body is None:
        return True
    try:
        req = json.loads(body)
        devices = req.get("devices", ALL)
        if devices != ALL and not (
            isinstance(devices, list) and all(isinstance(d, str) for d in devices)
        ):
            raise ValueError('devices: a list of DvnUUIDs or "all"')
        if devices != ALL:
            devices = [d.lower() for d in devices]
        state = handler.emulator.updates.offer(req.get("version"), devices)
    except (ValueError, AttributeError) as e:
        handler._respond(400, "%s\n" % e, note="update offer refused")
        return True
    handler._json(200, state, note="update offered: %s" % req.get("version"))
    return True
