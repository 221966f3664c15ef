"""A local KPN Things emulator: the ingestion endpoint a device talks to, plus a small JSON API.

It answers like KPN Things does (see PROTOCOL.md), so the firmware and the client can be tested
against every outcome on 127.0.0.1. ``Emulator`` holds the registered devices and applies the
checks; the rest is split by concern:

- emulator_ingest: the KPN contract, what an uplink must be and what each failure is answered;
- emulator_store: the SQLite store of messages and downlinks, and what a message lists;
- emulator_answers: what a device answered to a downlink;
- emulator_api and emulator_http: the HTTP server, its routes and the API token;
- emulator_dashboard: the bench-test page's files.

The names callers use (``Emulator``, ``INGEST_PATH``, ``DEFAULT_MAX_BODY``, ``ANSWER_UPLINKS``,
``EmulatorError``, ``is_loopback``, ``new_api_token``, ...) stay importable from here.

Secrets are kept in memory only, never written to the database, and every line this module
logs and every API answer is scrubbed of them, so not even a device that sends its own secret as
a value can make the emulator show it: ``body_base64`` is scrubbed as bytes, and a body whose
JSON strings spell a secret with escapes is listed decoded, scrubbed.
"""

import base64
import json
import ssl
import sys
import threading
import time

from kpnthings import auth
from kpnthings_tools import emulator_health
from kpnthings_tools.emulator_answers import (  # noqa: F401 (re-exported)
    ANSWER_RECORD,
    ANSWER_UPLINKS,
    parse_answer,
    with_answer,
)
from kpnthings_tools.emulator_api import EmulatorServer, is_loopback, new_api_token  # noqa: F401
from kpnthings_tools.emulator_ingest import (  # noqa: F401 (re-exported)
    ACCEPTED,
    CHECK_MISMATCH,
    CHECK_MISSING,
    CHECK_OK,
    CHECK_SKIPPED,
    DEFAULT_MAX_BODY,
    INGEST_PATH,
    MALFORMED,
    QUALITY_RECORD,
    TIME_SOURCES,
    UNAUTHORIZED,
    UNDATED_RECORD,
    UNKNOWN_DEVICE,
    EmulatorError,
    base_name_uuid,
    checked_downlink,
    device_dated,
    parse_uplink,
    time_notes,
    token_verdict,
)
from kpnthings_tools.emulator_store import Store, iso_time, jsonable_records  # noqa: F401
from kpnthings_tools.emulator_updates import Updates


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

    def __init__(
        self, db_path, devices=(), max_body=DEFAULT_MAX_BODY, log=None, refuse=(), releases=None
    ):
        self.max_body = int(max_body)
        # Record names answered with 400, as KPN refuses a pack for one record it will not
        # store: the device must then find that record and dead-letter it alone (`--refuse`).
        self.refuse = set(refuse)
        self._secrets = {}
        self._names = {}
        self._log = log
        self._lock = threading.Lock()
        self._store = Store(db_path)
        # the update host: signed releases from `releases`, offers, versions (emulator_updates)
        self.updates = Updates(releases)
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
            verdict, reason = token_verdict(body, token, secret)
            if verdict != CHECK_OK:
                raise EmulatorError(401, reason)
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

    def _record(self, *args, **kwargs):
        """Store one request (emulator_store.Store.record) under the lock."""
        with self._lock:
            return self._store.record(*args, **kwargs)

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
            body = checked_downlink(registered, body)
        if now is None:
            now = time.time()
        with self._lock:
            entry = self._store.queue_downlink(registered, body, now)
            entry = with_answer(entry, self._store.answer_to)
        return self._scrub_raw(entry)

    def downlinks(self, dvnuuid):
        registered = self._registered(dvnuuid)
        if registered is None:
            raise EmulatorError(404, "device %s is not registered" % dvnuuid)
        with self._lock:
            entries = [
                with_answer(e, self._store.answer_to) for e in self._store.downlinks(registered)
            ]
        return [self._scrub_raw(e) for e in entries]

    # -- listings ------------------------------------------------------------------------------

    def messages(self, dvnuuid=None, since=0, limit=100):
        """Stored messages, oldest first: the newest ``limit`` with id above ``since``.

        ``dvnuuid=None`` lists every message, including those no registered device owns.
        """
        with self._lock:
            listed = self._store.messages(dvnuuid, since, limit)
        return [self._scrub_raw(m) for m in listed]

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
            last, count, queued, source, undated = self._store.device_summary(registered)
            recent = self._store.messages(registered, 0, 1000)
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
            "time_source": source,
            "undated_readings": undated,
            # the health records of its recent messages, with warnings (emulator_health)
            "health": emulator_health.panel(auth.base_name(registered), recent),
        }
        info["version"], info["update_offered"] = self.updates.device(registered)
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
            self._store.close()

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
