"""An offered release downloaded, checked and switched to (docs/updates.md), loaded by
kpnthings.update_boot only when an offer names a newer version, and unloaded after.

1. The staging folder is the version folder the marker does not name (u/a or u/b), emptied
   first: what a cut download left there is never booted, so it is simply thrown away.
2. manifest.json and manifest.sig are fetched (small, in RAM) and the signature checked
   against the public key of config update.key (kpnthings.update_verify) before any file is
   fetched; then the manifest's version and board.
3. Each file streams into the staging folder through SHA-256, a socket read at a time (never a
   whole file in RAM), over verified TLS with the uplink's CA (kpnthings.dial); its size and
   hash must be the manifest's.
4. Every file is hashed again from flash, then the marker (kpnthings.update_boot) is written,
   last: the switch is that one rename. The board resets into the new version, on trial.
Any failure before step 4's rename leaves the marker, so the board, as it was.
"""

import hashlib
import os
from binascii import hexlify

from kpnthings import __version__, dial, update_boot
from kpnthings.compat import ticks_add, ticks_ms
from kpnthings.http_response import _read_head, _Reader

_MAX_MANIFEST = 16384
_READ = 512


def _empty(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:
            _empty(p)
            os.rmdir(p)
        else:
            os.remove(p)


def _mkdirs(path):
    at = ""
    for part in path.split("/")[:-1]:
        at = at + "/" + part if at else part
        try:
            os.mkdir(at)
        except OSError:
            pass  # there already


def _hash_file(path):
    h = hashlib.sha256()
    n = 0
    buf = bytearray(_READ)
    with open(path, "rb") as f:
        while True:
            got = f.readinto(buf)
            if not got:
                break
            h.update(memoryview(buf)[:got])
            n += got
    return n, hexlify(h.digest()).decode()


class _Fetch:
    """GETs to the release's host, one connection kept alive while the server allows it."""

    def __init__(self, cfg, url, cadata, feed):
        tls, self.host, self.port, self.prefix = dial.split_url(url)
        if not tls and not cfg["url"].startswith("http://"):
            raise ValueError("update url must be https:// (the uplink's is)")
        self.ctx = dial.make_tls_context(cadata, cfg["tls_insecure"]) if tls else None
        self.ms = cfg["timeout_s"] * 1000
        self.t = None
        self.feed = feed  # the watchdog: a download of many files outlasts its period

    def _get(self, path):
        deadline = ticks_add(ticks_ms(), self.ms)
        if self.t is None:
            self.t = dial.open_socket(self.host, self.port, self.ctx, deadline)
        head = "GET %s/%s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (
            self.prefix,
            path,
            self.host,
            self.port,
        )
        self.t.send_all(head.encode(), deadline)
        r = _Reader(self.t, deadline)
        status, length, _chunked, keep = _read_head(r)
        if status != 200 or length is None:
            raise ValueError("%s: HTTP %d%s" % (path, status, "" if length else ", no length"))
        return r, length, keep

    def _piece(self, r, left):
        if not r._buf:
            if self.feed is not None:
                self.feed()
            r._deadline = ticks_add(ticks_ms(), self.ms)  # each read its own deadline
            r._fill()
        piece = r._buf[:left]
        r._buf = r._buf[len(piece) :]
        return piece

    def _done(self, r, keep):
        if not keep or r._buf:
            self.close()

    def small(self, path, cap):
        r, length, keep = self._get(path)
        if length > cap:
            raise ValueError("%s: over %d bytes" % (path, cap))
        parts = []
        while length:
            parts.append(self._piece(r, length))
            length -= len(parts[-1])
        self._done(r, keep)
        return b"".join(parts)

    def file(self, path, dest, size, digest):
        r, length, keep = self._get(path)
        if length != size:
            raise ValueError("%s: %d bytes, the manifest says %d" % (path, length, size))
        h = hashlib.sha256()
        _mkdirs(dest)
        with open(dest, "wb") as f:
            while length:
                piece = self._piece(r, length)
                h.update(piece)
                f.write(piece)
                length -= len(piece)
        self._done(r, keep)
        if hexlify(h.digest()).decode() != digest:
            raise ValueError("%s: sha256 differs from the manifest" % path)

    def close(self):
        t = self.t
        self.t = None
        if t is not None:
            t.close()


def _check(doc, version, board):
    if doc["version"] != version:
        raise ValueError("manifest is for version %s, not %s" % (doc["version"], version))
    if doc["board"] != board:
        raise ValueError("release is for board %s" % doc["board"])
    for path, size, digest in doc["files"]:
        if (
            path.startswith("/")
            or ".." in path
            or not (path.startswith("kpnthings/") or path.startswith("boards/"))
            or type(size) is not int
            or len(digest) != 64
        ):
            raise ValueError("manifest file entry %s refused" % path[:40])


def apply(dev, version, url, cadata, base, w, log):
    """Fetch, check and switch to `version` from `url`, then reset; ValueError or OSError with
    nothing switched. `w`: the marker's fields now (None: the base runs)."""
    cfg = dev.config
    want = cfg["update"]
    path = want["key"]
    if base and not path.startswith("/"):
        path = base.rstrip("/") + "/" + path
    with open(path, "rb") as f:
        key = f.read()
    stage = "u/b" if w is not None and w[1] == "u/a" else "u/a"
    _mkdirs(stage + "/")
    _empty(stage)
    log("[update] %s offered: fetching into %s" % (version, stage))
    fetch = _Fetch(cfg, url, cadata, dev.feed)
    try:
        manifest = fetch.small("manifest.json", _MAX_MANIFEST)
        sig = fetch.small("manifest.sig", 64)
        from kpnthings import update_verify

        if not update_verify.verify(hashlib.sha256(manifest).digest(), sig, key):
            raise ValueError("the manifest's signature does not verify")
        import json

        doc = json.loads(manifest)
        manifest = None
        _check(doc, version, cfg["board"])
        for name, size, digest in doc["files"]:
            fetch.file(name, stage + "/" + name, size, digest)
    finally:
        fetch.close()
    for name, size, digest in doc["files"]:  # again, as flash holds them
        if _hash_file(stage + "/" + name) != (size, digest):
            raise ValueError("%s: changed on flash" % name)
    gen = str(int(w[0]) + 1) if w is not None else "1"
    old = w[1:3] if w is not None else ["-", __version__]
    boots = str(want.get("boots") or 3)
    update_boot.write([gen, stage, version, "0", boots, old[0], old[1]])
    log("[update] %s checked and switched to: restarting into it, on trial" % version)
    import machine

    machine.reset()
