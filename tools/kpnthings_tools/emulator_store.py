"""The emulator's store: every request and the downlink queue in SQLite, and how they are listed.

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

Secrets are never written here: the emulator keeps them in memory. The store takes no lock of
its own; ``emulator.Emulator`` holds its lock around every call.
"""

import base64
import json
import sqlite3
import time

from kpnthings import auth
from kpnthings_tools.emulator_answers import ANSWER_RECORD, ANSWER_UPLINKS
from kpnthings_tools.emulator_ingest import ACCEPTED, time_notes

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

_MESSAGE_SELECT = (
    "SELECT id, received_at, dvnuuid, status, outcome, reason, token_check, body, records,"
    " response_body, downlink_id,"
    " COALESCE((SELECT count FROM duplicates WHERE message_id = messages.id), 0),"
    " (SELECT source FROM times WHERE message_id = messages.id),"
    " COALESCE((SELECT undated FROM times WHERE message_id = messages.id), 0) FROM messages"
)
_DOWNLINK_SELECT = "SELECT id, dvnuuid, body, queued_at, delivered_at, message_id FROM downlinks"


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


class Store:
    """The SQLite database at ``db_path`` (may be ``":memory:"``), its tables made if new."""

    def __init__(self, db_path):
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)

    def record(
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
        """Store one request with the body answered (``reply``, or the downlink delivered);
        return (the message as listed, the exact bytes to answer with).
        ``dated`` says, per record, whether the device gave it its own time (device_dated)."""
        records_json = None if records is None else json.dumps(jsonable_records(records))
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
                    "INSERT INTO times (message_id, dvnuuid, source, undated) VALUES (?, ?, ?, ?)",
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

    def queue_downlink(self, dvnuuid, body, now):
        """Queue a checked downlink body; return its queue entry (without the answer)."""
        cur = self._db.execute(
            "INSERT INTO downlinks (dvnuuid, body, queued_at) VALUES (?, ?, ?)",
            (dvnuuid, bytes(body), now),
        )
        row = self._db.execute(_DOWNLINK_SELECT + " WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _downlink_dict(row)

    def downlinks(self, dvnuuid):
        """A device's queue entries, oldest first (without the answers)."""
        rows = self._db.execute(
            _DOWNLINK_SELECT + " WHERE dvnuuid = ? ORDER BY id", (dvnuuid,)
        ).fetchall()
        return [_downlink_dict(r) for r in rows]

    def answer_to(self, dvnuuid, message_id):
        """(answer text, its message id, accepted uplinks looked at, window closed) for the
        downlink delivered with ``message_id``: the device's ``downlink`` record in one of the
        next ANSWER_UPLINKS accepted uplinks, up to the one that delivered the next downlink
        (whose body was written before that one arrived). (emulator_answers.with_answer)"""
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

    def messages(self, dvnuuid=None, since=0, limit=100):
        """Stored messages, oldest first: the newest ``limit`` with id above ``since``.

        ``dvnuuid=None`` lists every message, including those no registered device owns.
        """
        limit = max(1, min(int(limit), 1000))
        if dvnuuid is None:
            rows = self._db.execute(
                _MESSAGE_SELECT + " WHERE id > ? ORDER BY id DESC LIMIT ?", (since, limit)
            ).fetchall()
        else:
            rows = self._db.execute(
                _MESSAGE_SELECT + " WHERE dvnuuid = ? AND id > ? ORDER BY id DESC LIMIT ?",
                (dvnuuid, since, limit),
            ).fetchall()
        return [_message_dict(r) for r in reversed(rows)]

    def device_summary(self, dvnuuid):
        """(last message: (received_at, status, outcome, reason, token_check) or None, message
        count, downlinks queued, time source of the last accepted message or None, undated
        readings in all of them)."""
        last = self._db.execute(
            "SELECT received_at, status, outcome, reason, token_check FROM messages"
            " WHERE dvnuuid = ? ORDER BY id DESC LIMIT 1",
            (dvnuuid,),
        ).fetchone()
        count = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE dvnuuid = ?", (dvnuuid,)
        ).fetchone()[0]
        queued = self._db.execute(
            "SELECT COUNT(*) FROM downlinks WHERE dvnuuid = ? AND delivered_at IS NULL",
            (dvnuuid,),
        ).fetchone()[0]
        source = self._db.execute(
            "SELECT source FROM times WHERE dvnuuid = ? ORDER BY message_id DESC LIMIT 1",
            (dvnuuid,),
        ).fetchone()
        undated = self._db.execute(
            "SELECT COALESCE(SUM(undated), 0) FROM times WHERE dvnuuid = ?", (dvnuuid,)
        ).fetchone()[0]
        return last, count, queued, source[0] if source else None, undated

    def close(self):
        self._db.close()
