"""A local KPN Things emulator: the ingestion endpoint a device talks to, plus a small JSON API.

It answers like KPN Things does (see PROTOCOL.md), so the firmware and the client can be tested
against every outcome on 127.0.0.1:

``POST /ingestion/ip/senml/v1`` checks, in this order:

1. the body is a SenML pack whose base name is ``urn:dev:DVNUUID:<uuid>:``, else **400**;
2. the device is registered, else **404**;
3. ``Things-Message-Token`` equals sha256(body + secret), compared in constant time, else **401**.

Then **200**, with at most one queued downlink pack as the body (empty body when none is queued);
that downlink is marked delivered. Framing errors get their own 4xx: 411 without a usable
``Content-Length``, 413 above ``max_body`` bytes, 400 for a body that is not JSON.

``GET /`` is the bench-test dashboard (``static/``: index.html, app.js, app.css and the vendored
uPlot chart library); it reads the JSON API below, for people and for tests:

- ``GET  /api/devices``                        registered devices: name, last seen, last outcome;
- ``GET  /api/devices/<uuid>``                 one of them;
- ``GET  /api/devices/<uuid>/messages``        requests from that device, oldest first;
- ``GET  /api/messages``                       every request, also those no device owns;
- ``GET  /api/devices/<uuid>/downlinks``       the queue: queued or delivered, and when, and
  what the device answered (below);
- ``POST /api/devices/<uuid>/downlinks``       queue a SenML JSON pack (201); from a browser
  (a request with ``Origin``) only when sent by the page itself, opened by IP or localhost (403).

A device answers a downlink in its next accepted uplink with a record named ``downlink``
(docs/downlinks.md): ``{"n":"downlink","vs":"led=applied; relay=refused: unknown actuator"}``.
Each queue entry says what came of it: ``result`` is ``queued``, ``waiting`` (delivered, not
answered yet), ``applied``, ``refused``, ``partly refused``, or ``never answered`` (no answer
in the ``ANSWER_UPLINKS`` accepted uplinks after the delivery, or the next downlink went out
first); ``answer`` the text and ``answer_message_id`` the message it came in; ``commands``
one ``{"n", "value", "result", "reason"}`` per command of the pack.

The message lists take ``?since=<id>`` (only newer messages, for polling) and ``?limit=<n>``
(default 100, at most 1000; the newest ``n`` are returned, oldest first).

With an API token (``serve(api_token=...)``; ``kpnthings mock-server`` makes one whenever it
listens beyond this machine), every ``/api/`` request must carry ``Authorization: Bearer
<token>``, else **401**: on a LAN, no one else lists the readings or queues downlinks. The
dashboard's files hold no data and are served to anyone; the page takes the token from its
address (``/#token=<token>``) and sends it with each API request. The device endpoint never
needs it: a device proves itself with its Things-Message-Token, as at KPN.

A message is ``{"id", "received_at", "dvnuuid", "status", "outcome", "reason", "token_check",
"body", "records", "response_body", "downlink_id"}``:

- ``received_at``: ISO 8601 UTC with milliseconds, e.g. ``2026-11-25T16:54:52.123Z``;
- ``outcome``: ``accepted``, ``malformed``, ``unknown device`` or ``unauthorized``
  (the classes of PROTOCOL.md), ``status`` the HTTP status sent;
- ``token_check``: ``ok``, ``mismatch``, ``missing`` or ``not checked`` (rejected before it);
- ``body``: the raw body as text (exact when it is UTF-8, which every accepted body is); a body
  that is not UTF-8 also comes as ``body_base64``;
- ``response_body``: the body answered: the downlink pack delivered (empty when none was
  queued), or for a refused request the reason sent with its 4xx;
- ``records``: the resolved SenML records (``senml.decode``), or ``null`` when the body was
  rejected as malformed. Byte values (``vd``) are written the way SenML writes them: base64url
  without padding;
- ``duplicates``: how many of an accepted message's records this device had sent before with
  the same name and time (delivery is at least once: a pack goes again when its answer was
  lost); records without a time of their own (no ``bt`` or ``t`` in the pack, or a time
  relative to "now": they take the arrival time) never count. Each such message is also
  logged, and the dashboard marks it.
- ``time_source`` and ``undated``: how an accepted message's times were obtained, from the
  records the firmware ends a pack with (docs/resilience.md, "Time quality"): ``ntp`` (times,
  and no ``timeQuality`` record), ``ticks`` (``timeQuality`` 1: dated from ticks once NTP
  answered), ``rtc`` (2: an RTC kept through a reset), ``none`` (no times: the arrival time);
  ``undated`` the value of its ``undatedReadings`` record (0 without one). None for a message
  not accepted. A device (``/api/devices``) has the ``time_source`` of its last accepted message
  and ``undated_readings``, the sum of ``undated`` over all of them; the dashboard shows both.

Secrets are kept in memory only, never written to the database, and every line this module
logs and every API answer is scrubbed of them, so not even a device that sends its own secret as
a value can make the emulator show it: ``body_base64`` is scrubbed as bytes, and a body whose
JSON strings spell a secret with escapes is listed decoded, scrubbed.
"""

import base64
import hmac
import ipaddress
import json
import re
import secrets
import socket
import sqlite3
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kpnthings import auth, senml

INGEST_PATH = "/ingestion/ip/senml/v1"
DEFAULT_MAX_BODY = 16 * 1024
# An oversize body is read and thrown away up to this size before answering 413: closing a
# socket with unread data makes Linux send RST, and the client would lose the 413 itself.
_DRAIN_LIMIT = 1024 * 1024
_BASE_NAME = re.compile(r"^urn:dev:DVNUUID:([^:]*):$")
_CONTENT_LENGTH = re.compile(r"^[0-9]{1,12}$")
_TOKEN = re.compile(r"^[0-9a-f]{64}$")

ACCEPTED = "accepted"
MALFORMED = "malformed"
UNKNOWN_DEVICE = "unknown device"
UNAUTHORIZED = "unauthorized"
# What the token check found (``token_check`` in a message).
CHECK_OK = "ok"
CHECK_MISMATCH = "mismatch"
CHECK_MISSING = "missing"
CHECK_SKIPPED = "not checked"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    dvnuuid TEXT,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    token_check TEXT NOT NULL,
    body BLOB NOT NULL,
    records TEXT,
    response_body BLOB NOT NULL,
    downlink_id INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_device ON messages (dvnuuid, id);
CREATE TABLE IF NOT EXISTS downlinks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dvnuuid TEXT NOT NULL,
    body BLOB NOT NULL,
    queued_at REAL NOT NULL,
    delivered_at REAL,
    message_id INTEGER
);
CREATE INDEX IF NOT EXISTS downlinks_by_device ON downlinks (dvnuuid, id);
CREATE TABLE IF NOT EXISTS seen (
    dvnuuid TEXT NOT NULL,
    name TEXT NOT NULL,
    t REAL NOT NULL,
    PRIMARY KEY (dvnuuid, name, t)
);
CREATE TABLE IF NOT EXISTS duplicates (
    message_id INTEGER PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS times (
    message_id INTEGER PRIMARY KEY,
    dvnuuid TEXT NOT NULL,
    source TEXT NOT NULL,
    undated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS times_by_device ON times (dvnuuid, message_id);
"""

# How a pack's times were obtained (docs/resilience.md, "Time quality"): the firmware ends a
# pack whose times are not all NTP's with a record saying so, and a pack without times with
# the count of its readings (KPN stamps them with their arrival).
QUALITY_RECORD = "timeQuality"
UNDATED_RECORD = "undatedReadings"
TIME_SOURCES = {0: "ntp", 1: "ticks", 2: "rtc"}


def time_notes(base_name, body):
    """(source, undated) of an accepted pack, from its body as sent: source "ntp", "ticks" or
    "rtc" for a pack with times (its timeQuality record; none: NTP's), "none" without (KPN
    takes the arrival time); undated the value of its undatedReadings record (0 without)."""
    try:
        pack = json.loads(bytes(body))
    except ValueError:
        return "none", 0
    quality = undated = None
    timed = False
    bn = ""
    for rec in pack if isinstance(pack, list) else ():
        if not isinstance(rec, dict):
            continue
        timed = timed or "bt" in rec or "t" in rec
        bn = rec.get("bn", bn)
        value = rec.get("v")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        name = "%s%s" % (bn, rec.get("n", ""))
        if name == base_name + QUALITY_RECORD:
            quality = int(value)
        elif name == base_name + UNDATED_RECORD:
            undated = int(value)
    if not timed:
        return "none", undated or 0
    return TIME_SOURCES.get(quality or 0, "unknown"), undated or 0


# The record a device answers a downlink with, and how many accepted uplinks after a delivery
# the emulator waits for it. The firmware answers in the very next one; the slack covers
# uplinks from elsewhere under the same identity (`kpnthings send` during a bench test).
ANSWER_RECORD = "downlink"
ANSWER_UPLINKS = 3
# One answer in the text: "led=applied", "led=refused: <why>", "refused: <why>" (the whole
# pack), or "and 3 more" (answers that did not fit in the record, counted).
_ANSWER_ITEM = re.compile(
    r"^(?:(?P<n>[A-Za-z0-9\-:./_]*)=(?P<r>applied|refused)(?:: (?P<why>.*))?"
    r"|(?P<all>refused): (?P<allwhy>.*)|and (?P<more>[0-9]+) more)$"
)
_ANSWER_SPLIT = re.compile(
    r"; (?=[A-Za-z0-9\-:./_]*=(?:applied|refused)|refused: |and [0-9]+ more$)"
)


def parse_answer(text):
    """A device's answer text -> ([{"n", "result", "reason"}, ...], count of answers only
    counted). ``n`` is None for an answer about the whole pack; an item the emulator cannot
    read comes back as result ``unreadable`` with the item as its reason."""
    items = []
    more = 0
    for part in _ANSWER_SPLIT.split(text) if text else ():
        m = _ANSWER_ITEM.match(part)
        if m is None:
            items.append({"n": None, "result": "unreadable", "reason": part})
        elif m.group("more"):
            more += int(m.group("more"))
        elif m.group("all"):
            items.append({"n": None, "result": "refused", "reason": m.group("allwhy")})
        else:
            items.append(
                {"n": m.group("n"), "result": m.group("r"), "reason": m.group("why") or ""}
            )
    return items, more


class EmulatorError(ValueError):
    """A request the emulator refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status, reason, dvnuuid=None):
        ValueError.__init__(self, reason)
        self.status = status
        self.reason = reason
        # The device a malformed message names, when it names one: it is filed under it.
        self.dvnuuid = dvnuuid


def iso_time(t):
    """Unix seconds -> ``2026-11-25T16:54:52.123Z``."""
    ms = round(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jsonable_records(records):
    """Resolved records -> JSON-ready dicts (bytes become base64url without padding)."""
    out = []
    for record in records:
        item = {}
        for key, value in record.items():
            item[key] = _b64url(value) if isinstance(value, (bytes, bytearray)) else value
        out.append(item)
    return out


def base_name_uuid(bn):
    """The lowercase DvnUUID in a ``urn:dev:DVNUUID:<uuid>:`` base name, or None."""
    if not isinstance(bn, str):
        return None
    m = _BASE_NAME.match(bn)
    if not m:
        return None
    try:
        return auth.check_dvnuuid(m.group(1))
    except ValueError:
        return None


def parse_uplink(body, now):
    """Check an uplink body; return (dvnuuid, resolved records) or raise EmulatorError(400).

    Once the base name is readable, the error carries its uuid, so a malformed message can
    still be shown under its device.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EmulatorError(400, "body is not UTF-8 JSON") from None
    try:
        pack = json.loads(text)
    except ValueError as e:
        raise EmulatorError(400, "body is not JSON: %s" % e) from None
    except RecursionError:
        raise EmulatorError(400, "body is not JSON: nested too deeply") from None
    if not isinstance(pack, list) or not pack:
        raise EmulatorError(400, "body must be a non-empty SenML pack (a JSON array)")
    first = pack[0]
    if not isinstance(first, dict) or "bn" not in first:
        raise EmulatorError(400, "the first record must hold the base name bn")
    dvnuuid = base_name_uuid(first["bn"])
    if dvnuuid is None:
        raise EmulatorError(
            400, "base name bn must be urn:dev:DVNUUID:<uuid>: with a valid UUID and trailing colon"
        )
    for record in pack[1:]:
        # A pack belongs to one device: a second base name could smuggle in another one.
        if isinstance(record, dict) and "bn" in record and base_name_uuid(record["bn"]) != dvnuuid:
            raise EmulatorError(400, "every bn in the pack must name the same device", dvnuuid)
    try:
        records = senml.decode(body, now=now)
    except (ValueError, TypeError) as e:
        raise EmulatorError(400, "not a valid SenML pack: %s" % e, dvnuuid) from None
    return dvnuuid, records


def device_dated(body):
    """Per record of an accepted body: True when the pack gives it a time of its own (bt + t
    at least 2**28, RFC 8428 4.5.3). A record without one takes the arrival time, and one with
    a time relative to "now" is dated by its arrival too: a resend of either arrives at another
    time, so neither can be told from a new reading. Read from the pack, not by comparing the
    record's time with the arrival second: a reading sent, and sent again, in the second it
    was taken is dated by the device all the same."""
    return [rec.get("t", 0) >= 268435456 for rec in senml.decode(body, now=0)]


def _scrub(text, secrets):
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "[secret]")
    return text


class Emulator:
    """The emulator's state: registered devices (in memory) and a SQLite store of messages.

    ``devices`` is a mapping or an iterable of ``(dvnuuid, secret)`` pairs, or of
    ``(dvnuuid, secret, name)`` with the device's name (shown beside its UUID). ``db_path`` may be
    ``":memory:"``. ``log`` takes one line of text (default: stderr); secrets are scrubbed first.
    """

    def __init__(self, db_path, devices=(), max_body=DEFAULT_MAX_BODY, log=None, refuse=()):
        self.max_body = int(max_body)
        # Record names answered with 400, as KPN refuses a pack for one record it will not
        # store: the device must then find that record and dead-letter it alone (`--refuse`).
        self.refuse = set(refuse)
        self._secrets = {}
        self._names = {}
        self._log = log
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        entries = devices.items() if hasattr(devices, "items") else devices
        for entry in entries:
            self.add_device(*entry)

    # -- devices -------------------------------------------------------------------------------

    def add_device(self, dvnuuid, secret, name=None):
        """Register a device (with its name, if it has one); raises ValueError naming the
        field (never showing the secret)."""
        dvnuuid = auth.check_dvnuuid(dvnuuid)
        auth.check_secret(secret)
        if name is not None and not isinstance(name, str):
            raise ValueError("device name must be text")
        with self._lock:
            self._secrets[dvnuuid] = secret
            self._names[dvnuuid] = name or None
        return dvnuuid

    def device_name(self, dvnuuid):
        """The registered device's name, or None."""
        with self._lock:
            return self._names.get(dvnuuid)

    def device_ids(self):
        with self._lock:
            return sorted(self._secrets)

    def _registered(self, dvnuuid):
        try:
            dvnuuid = auth.check_dvnuuid(dvnuuid)
        except ValueError:
            return None
        with self._lock:
            return dvnuuid if dvnuuid in self._secrets else None

    def scrub(self, text):
        """Replace every registered secret found in text."""
        with self._lock:
            secrets = list(self._secrets.values())
        return _scrub(text, secrets)

    def log(self, line):
        line = self.scrub(line)
        if self._log is not None:
            self._log(line)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    # -- the ingestion endpoint ----------------------------------------------------------------

    def ingest(self, body, token, now=None):
        """Handle one uplink body; return ``(status, response_body, message)``."""
        if now is None:
            now = time.time()
        dvnuuid = None
        records = None
        verdict = CHECK_SKIPPED
        try:
            dvnuuid, records = parse_uplink(body, int(now))
            with self._lock:
                secret = self._secrets.get(dvnuuid)
            if secret is None:
                raise EmulatorError(404, "device %s is not registered" % dvnuuid)
            if not token:
                verdict = CHECK_MISSING
                raise EmulatorError(401, "Things-Message-Token header is missing")
            expected = auth.message_token(body, secret)
            # Constant time, and on bytes: compare_digest refuses non-ASCII str.
            given = token.strip().encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected.encode("ascii")):
                verdict = CHECK_MISMATCH
                if not _TOKEN.match(token.strip()):
                    raise EmulatorError(401, "Things-Message-Token must be 64 lowercase hex")
                raise EmulatorError(401, "Things-Message-Token does not match body and secret")
            verdict = CHECK_OK
            base = "urn:dev:DVNUUID:%s:" % dvnuuid
            for rec in records:
                name = str(rec.get("n", ""))
                if name.startswith(base) and name[len(base) :] in self.refuse:
                    raise EmulatorError(400, "record %s refused (--refuse)" % name[len(base) :])
        except EmulatorError as e:
            if dvnuuid is None:
                dvnuuid = e.dvnuuid
            outcome = {400: MALFORMED, 404: UNKNOWN_DEVICE, 401: UNAUTHORIZED}[e.status]
            reply = (e.reason + "\n").encode("utf-8")
            message, _ = self._record(
                now,
                dvnuuid,
                e.status,
                outcome,
                e.reason,
                verdict,
                body,
                records if e.status != 400 else None,
                reply=reply,
            )
            return e.status, reply, message
        message, response = self._record(
            now,
            dvnuuid,
            200,
            ACCEPTED,
            "",
            verdict,
            body,
            records,
            deliver=True,
            dated=device_dated(body),
        )
        if message["duplicates"]:
            self.log(
                "%s: message %d holds %d records already stored (same name and time):"
                " duplicates" % (dvnuuid, message["id"], message["duplicates"])
            )
        return 200, response, message

    def reject_request(self, status, reason, body=b"", now=None):
        """Record a request refused before its body was read (411, 413, ...)."""
        if now is None:
            now = time.time()
        reply = (reason + "\n").encode("utf-8")
        return self._record(
            now, None, status, MALFORMED, reason, CHECK_SKIPPED, body, None, reply=reply
        )[0]

    def _record(
        self,
        now,
        dvnuuid,
        status,
        outcome,
        reason,
        token_check,
        body,
        records,
        deliver=False,
        reply=b"",
        dated=(),
    ):
        """Store one request with the body answered (``reply``, or the downlink delivered).
        ``dated`` says, per record, whether the device gave it its own time (device_dated)."""
        records_json = None if records is None else json.dumps(jsonable_records(records))
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                downlink_id = None
                response = reply
                if deliver:
                    row = cur.execute(
                        "SELECT id, body FROM downlinks WHERE dvnuuid = ? AND delivered_at IS NULL"
                        " ORDER BY id LIMIT 1",
                        (dvnuuid,),
                    ).fetchone()
                    if row is not None:
                        downlink_id, response = row[0], bytes(row[1])
                cur.execute(
                    "INSERT INTO messages (received_at, dvnuuid, status, outcome, reason,"
                    " token_check, body, records, response_body, downlink_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        now,
                        dvnuuid,
                        status,
                        outcome,
                        reason,
                        token_check,
                        bytes(body),
                        records_json,
                        response,
                        downlink_id,
                    ),
                )
                message_id = cur.lastrowid
                if outcome == ACCEPTED and records:
                    # A record the device timed itself that was stored before, same name and
                    # time: a duplicate, counted and shown.
                    dups = 0
                    for rec, own in zip(records, dated, strict=True):
                        t = rec.get("t")
                        if t is None or not own:
                            continue
                        cur.execute(
                            "INSERT OR IGNORE INTO seen (dvnuuid, name, t) VALUES (?, ?, ?)",
                            (dvnuuid, str(rec.get("n")), float(t)),
                        )
                        dups += cur.rowcount == 0
                    if dups:
                        cur.execute(
                            "INSERT INTO duplicates (message_id, count) VALUES (?, ?)",
                            (message_id, dups),
                        )
                    source, undated = time_notes(auth.base_name(dvnuuid), body)
                    cur.execute(
                        "INSERT INTO times (message_id, dvnuuid, source, undated)"
                        " VALUES (?, ?, ?, ?)",
                        (message_id, dvnuuid, source, undated),
                    )
                if downlink_id is not None:
                    cur.execute(
                        "UPDATE downlinks SET delivered_at = ?, message_id = ? WHERE id = ?",
                        (now, message_id, downlink_id),
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            row = cur.execute(_MESSAGE_SELECT + " WHERE id = ?", (message_id,)).fetchone()
        # The exact bytes for the device, beside the listing form (which decodes them as text).
        return _message_dict(row), response

    # -- downlinks -----------------------------------------------------------------------------

    def queue_downlink(self, dvnuuid, body, validate=True, now=None):
        """Queue a downlink pack for a registered device; return the queue entry.

        ``body`` is SenML JSON (bytes or str). When its first record has no ``bn`` the device's
        base name is put in front, as KPN does. With ``validate=False`` the bytes are queued as
        they are, so tests can send a device a malformed downlink on purpose.
        """
        registered = self._registered(dvnuuid)
        if registered is None:
            raise EmulatorError(404, "device %s is not registered" % dvnuuid)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if validate:
            body = self._checked_downlink(registered, body)
        if now is None:
            now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO downlinks (dvnuuid, body, queued_at) VALUES (?, ?, ?)",
                (registered, bytes(body), now),
            )
            row = self._db.execute(_DOWNLINK_SELECT + " WHERE id = ?", (cur.lastrowid,)).fetchone()
            entry = self._with_answer(_downlink_dict(row))
        return self._scrub_raw(entry)

    def _checked_downlink(self, dvnuuid, body):
        try:
            pack = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise EmulatorError(400, "downlink is not JSON: %s" % e) from None
        if not isinstance(pack, list) or not pack or not all(isinstance(r, dict) for r in pack):
            raise EmulatorError(400, "downlink must be a non-empty SenML pack of records")
        bn = pack[0].get("bn")
        if bn is None:
            first = {"bn": auth.base_name(dvnuuid)}
            first.update(pack[0])
            pack[0] = first
        elif base_name_uuid(bn) != dvnuuid:
            raise EmulatorError(400, "downlink bn must be the device's base name, or left out")
        # Host code: CPython keeps dict order, so bn stays first; compact as KPN sends it.
        body = json.dumps(pack, separators=(",", ":")).encode("utf-8")
        try:
            senml.decode(body)
        except (ValueError, TypeError) as e:
            raise EmulatorError(400, "downlink is not a valid SenML pack: %s" % e) from None
        return body

    def downlinks(self, dvnuuid):
        registered = self._registered(dvnuuid)
        if registered is None:
            raise EmulatorError(404, "device %s is not registered" % dvnuuid)
        with self._lock:
            rows = self._db.execute(
                _DOWNLINK_SELECT + " WHERE dvnuuid = ? ORDER BY id", (registered,)
            ).fetchall()
            entries = [self._with_answer(_downlink_dict(r)) for r in rows]
        return [self._scrub_raw(e) for e in entries]

    def _answer_to(self, dvnuuid, message_id):
        """(answer text, its message id, accepted uplinks looked at, window closed) for the
        downlink delivered with ``message_id``: the device's ``downlink`` record in one of the
        next ANSWER_UPLINKS accepted uplinks, up to the one that delivered the next downlink
        (whose body was written before that one arrived). Called with the lock held."""
        rows = self._db.execute(
            "SELECT id, records, downlink_id FROM messages WHERE dvnuuid = ? AND id > ?"
            " AND outcome = ? ORDER BY id LIMIT ?",
            (dvnuuid, message_id, ACCEPTED, ANSWER_UPLINKS),
        ).fetchall()
        name = auth.base_name(dvnuuid) + ANSWER_RECORD
        seen = 0
        for mid, records, next_downlink in rows:
            seen += 1
            for rec in json.loads(records or "[]"):
                if rec.get("n") == name and isinstance(rec.get("vs"), str):
                    return rec["vs"], mid, seen, True
            if next_downlink is not None:
                return None, None, seen, True
        return None, None, seen, seen >= ANSWER_UPLINKS

    def _with_answer(self, entry):
        """A queue entry with what the device answered: result, answer, commands."""
        base = auth.base_name(entry["dvnuuid"])
        commands = []
        for rec in _downlink_commands(entry["body"]):
            full = rec["bn"] + rec["n"]
            commands.append(
                {
                    "n": full[len(base) :] if full.startswith(base) else full,
                    "value": rec["value"],
                    "result": "queued",
                    "reason": "",
                }
            )
        entry.update(answer=None, answer_message_id=None, uplinks_since=0, commands=commands)
        if entry["message_id"] is None:
            entry["result"] = "queued"
            return entry
        text, mid, seen, closed = self._answer_to(entry["dvnuuid"], entry["message_id"])
        entry["uplinks_since"] = seen
        if text is None:
            entry["result"] = "never answered" if closed else "waiting"
            for command in commands:
                command["result"] = entry["result"]
            return entry
        entry["answer"] = text
        entry["answer_message_id"] = mid
        items, more = parse_answer(text)
        whole = [i for i in items if i["n"] is None and i["result"] == "refused"]
        for command in commands:
            match = next((i for i in items if i["n"] == command["n"]), None)
            if match is not None:
                items.remove(match)
                command["result"], command["reason"] = match["result"], match["reason"]
            elif whole:
                command["result"], command["reason"] = "refused", whole[0]["reason"]
            elif more:
                command["result"] = "answered, not shown"
                command["reason"] = "the answer only counts it (and %d more)" % more
            else:
                command["result"] = "not answered"
        results = {c["result"] for c in commands}
        if results == {"applied"}:
            entry["result"] = "applied"
        elif results == {"refused"} or (not commands and whole):
            entry["result"] = "refused"
        elif "applied" in results and "refused" in results:
            entry["result"] = "partly refused"
        elif "refused" in results:
            entry["result"] = "refused"
        else:
            entry["result"] = "answered"
        return entry

    # -- listings ------------------------------------------------------------------------------

    def messages(self, dvnuuid=None, since=0, limit=100):
        """Stored messages, oldest first: the newest ``limit`` with id above ``since``.

        ``dvnuuid=None`` lists every message, including those no registered device owns.
        """
        limit = max(1, min(int(limit), 1000))
        with self._lock:
            if dvnuuid is None:
                rows = self._db.execute(
                    _MESSAGE_SELECT + " WHERE id > ? ORDER BY id DESC LIMIT ?", (since, limit)
                ).fetchall()
            else:
                rows = self._db.execute(
                    _MESSAGE_SELECT + " WHERE dvnuuid = ? AND id > ? ORDER BY id DESC LIMIT ?",
                    (dvnuuid, since, limit),
                ).fetchall()
        return [self._scrub_raw(_message_dict(r)) for r in reversed(rows)]

    def _unescaped_scrub(self, text):
        # A secret written with JSON escapes ("\u0053eCr...") passes a plain text scrub: when the
        # decoded JSON holds a secret, show the decoded form, scrubbed, instead of the raw text.
        if "\\" not in text:
            return text
        try:
            flat = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
        except (ValueError, RecursionError):
            return text
        scrubbed = self.scrub(flat)
        return scrubbed if scrubbed != flat else text

    def _scrub_raw(self, message):
        # body_base64 is the raw body, which the text scrub of an API answer cannot see into:
        # scrub it as bytes, or a device that sent its secret in a non-UTF-8 body would show it.
        for key in ("body", "response_body"):
            if key in message:
                message[key] = self._unescaped_scrub(message[key])
        if message.get("answer"):
            message["answer"] = self.scrub(message["answer"])
        raw = message.get("body_base64")
        if raw is not None:
            data = base64.b64decode(raw)
            with self._lock:
                secrets = list(self._secrets.values())
            for secret in secrets:
                data = data.replace(secret.encode("utf-8"), b"[secret]")
            message["body_base64"] = base64.b64encode(data).decode("ascii")
        return message

    def device_messages(self, dvnuuid, since=0, limit=100):
        registered = self._registered(dvnuuid)
        if registered is None:
            raise EmulatorError(404, "device %s is not registered" % dvnuuid)
        return self.messages(registered, since, limit)

    def device_info(self, dvnuuid):
        """A device as the API shows it: no secret, last seen, last outcome, queue length."""
        registered = self._registered(dvnuuid)
        if registered is None:
            raise EmulatorError(404, "device %s is not registered" % dvnuuid)
        with self._lock:
            last = self._db.execute(
                "SELECT received_at, status, outcome, reason, token_check FROM messages"
                " WHERE dvnuuid = ? ORDER BY id DESC LIMIT 1",
                (registered,),
            ).fetchone()
            count = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE dvnuuid = ?", (registered,)
            ).fetchone()[0]
            queued = self._db.execute(
                "SELECT COUNT(*) FROM downlinks WHERE dvnuuid = ? AND delivered_at IS NULL",
                (registered,),
            ).fetchone()[0]
            source = self._db.execute(
                "SELECT source FROM times WHERE dvnuuid = ? ORDER BY message_id DESC LIMIT 1",
                (registered,),
            ).fetchone()
            undated = self._db.execute(
                "SELECT COALESCE(SUM(undated), 0) FROM times WHERE dvnuuid = ?", (registered,)
            ).fetchone()[0]
        info = {
            "dvnuuid": registered,
            "name": self.device_name(registered),
            "base_name": auth.base_name(registered),
            "messages": count,
            "queued_downlinks": queued,
            "last_seen": None,
            "last_status": None,
            "last_outcome": None,
            "last_reason": None,
            "last_token_check": None,
            # how the times of its last accepted message were obtained, and how many readings
            # all its accepted messages carried without a time (time_notes)
            "time_source": source[0] if source else None,
            "undated_readings": undated,
        }
        if last is not None:
            info["last_seen"] = iso_time(last[0])
            info["last_status"] = last[1]
            info["last_outcome"] = last[2]
            info["last_reason"] = last[3]
            info["last_token_check"] = last[4]
        return info

    def devices(self):
        return [self.device_info(d) for d in self.device_ids()]

    def close(self):
        with self._lock:
            self._db.close()

    def serve(
        self,
        host="127.0.0.1",
        port=0,
        ssl_context=None,
        tls_cert=None,
        tls_key=None,
        api_token=None,
    ):
        """Start serving in a background thread; return an :class:`EmulatorServer`.

        HTTPS when ``ssl_context`` is given, or ``tls_cert`` (+ ``tls_key``) PEM files.
        ``api_token``: the token every ``/api/`` request must bring (None: no token asked).
        """
        if ssl_context is None and tls_cert:
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(tls_cert, tls_key)
        return EmulatorServer(self, host, port, ssl_context, api_token)


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


# The dashboard's files, found once: only what is in static/ can be served, so no request path
# can reach another file. Looked up beside this module, which is how the package ships them.
_STATIC_DIR = Path(__file__).resolve().parent / "static"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_STATIC_FILES = {
    "/static/" + p.relative_to(_STATIC_DIR).as_posix(): p
    for p in (sorted(_STATIC_DIR.rglob("*")) if _STATIC_DIR.is_dir() else ())
    if p.is_file() and p.suffix in _CONTENT_TYPES
}
# Scripts and styles from this origin only, data via fetch to this origin only: even a value a
# device sends that slipped into the page as markup could not run or load anything.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_MESSAGE_SELECT = (
    "SELECT id, received_at, dvnuuid, status, outcome, reason, token_check, body, records,"
    " response_body, downlink_id,"
    " COALESCE((SELECT count FROM duplicates WHERE message_id = messages.id), 0),"
    " (SELECT source FROM times WHERE message_id = messages.id),"
    " COALESCE((SELECT undated FROM times WHERE message_id = messages.id), 0) FROM messages"
)
_DOWNLINK_SELECT = "SELECT id, dvnuuid, body, queued_at, delivered_at, message_id FROM downlinks"


def _answer_in(message):
    """The text of the downlink answer an accepted message carries, or None."""
    if message["outcome"] != ACCEPTED or not message["records"] or not message["dvnuuid"]:
        return None
    name = auth.base_name(message["dvnuuid"]) + ANSWER_RECORD
    for rec in message["records"]:
        if rec.get("n") == name and isinstance(rec.get("vs"), str):
            return rec["vs"]
    return None


def _text(data):
    data = bytes(data)
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), base64.b64encode(data).decode("ascii")


def _message_dict(row):
    body, body_b64 = _text(row[7])
    response, _ = _text(row[9])
    message = {
        "id": row[0],
        "received_at": iso_time(row[1]),
        "dvnuuid": row[2],
        "status": row[3],
        "outcome": row[4],
        "reason": row[5],
        "token_check": row[6],
        "body": body,
        "records": None if row[8] is None else json.loads(row[8]),
        "response_body": response,
        "downlink_id": row[10],
        # records the device had sent before, same name and time (at-least-once delivery)
        "duplicates": row[11],
        # how its times were obtained (time_notes), for an accepted message; else None
        "time_source": row[12],
        "undated": row[13],
    }
    if body_b64 is not None:
        message["body_base64"] = body_b64
    return message


def _downlink_commands(body):
    """The commands of a queued downlink body: [{"bn", "n", "value"}], bn resolved as SenML
    does (a body queued with validate=False may be anything: then [])."""
    try:
        pack = json.loads(body)
    except ValueError:
        return []
    if not isinstance(pack, list):
        return []
    out = []
    bn = ""
    for rec in pack:
        if not isinstance(rec, dict):
            return []
        if isinstance(rec.get("bn"), str):
            bn = rec["bn"]
        if not isinstance(rec.get("n"), str):
            continue
        value = next((rec[k] for k in ("vb", "v", "vs", "vd") if k in rec), None)
        out.append({"bn": bn, "n": rec["n"], "value": value})
    return out


def _downlink_dict(row):
    body, _ = _text(row[2])
    return {
        "id": row[0],
        "dvnuuid": row[1],
        "body": body,
        "state": "queued" if row[4] is None else "delivered",
        "queued_at": iso_time(row[3]),
        "delivered_at": None if row[4] is None else iso_time(row[4]),
        "message_id": row[5],
    }


class _Handler(BaseHTTPRequestHandler):
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
            answer = _answer_in(message)
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
        page = _STATIC_FILES.get("/static/index.html" if split.path == "/" else split.path)
        if page is not None:
            self._static(page)
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

    def _static(self, path):
        """Send one of the dashboard's files, with a policy that allows only this origin."""
        with open(path, "rb") as f:
            body = f.read()
        headers = (
            ("Content-Security-Policy", _PAGE_POLICY),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-cache"),
        )
        self._respond(200, body, _CONTENT_TYPES[path.suffix], scrub=False, headers=headers)

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

    def _discard_body(self):
        # A body we did not read would be parsed as the next request: read it away (so the
        # close does not turn into a RST that eats this answer) and drop the connection.
        if self.command == "POST":
            length = (self.headers.get("Content-Length") or "").strip()
            if _CONTENT_LENGTH.match(length):
                self._drain(min(int(length), _DRAIN_LIMIT))
            self.close_connection = True

    def _not_found(self):
        self._discard_body()
        self._respond(404, "no such endpoint: %s %s\n" % (self.command, self.path))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, emulator, ssl_context, api_token=None):
        self.emulator = emulator
        self.ssl_context = ssl_context
        self.api_token = api_token
        self._connections = set()
        self._connections_lock = threading.Lock()
        ThreadingHTTPServer.__init__(self, address, _Handler)

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


class EmulatorServer:
    """A running emulator: ``.url``, ``.host``, ``.port``, ``.shutdown()``; a context manager.

    ``shutdown()`` stops serving, drops open keep-alive connections and closes the database.
    """

    def __init__(self, emulator, host, port, ssl_context=None, api_token=None):
        self.emulator = emulator
        self.api_token = api_token
        self._server = _Server((host, port), emulator, ssl_context, api_token)
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
