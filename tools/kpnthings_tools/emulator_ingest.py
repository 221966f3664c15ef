"""The emulator's ingestion contract: what KPN Things checks in an uplink, and what it answers.

``POST /ingestion/ip/senml/v1`` checks, in this order (see PROTOCOL.md):

1. the body is a SenML pack whose base name is ``urn:dev:DVNUUID:<uuid>:``, else **400**;
2. the device is registered, else **404**;
3. ``Things-Message-Token`` equals sha256(body + secret), compared in constant time, else **401**.

Then **200**, with at most one queued downlink pack as the body (empty body when none is queued);
that downlink is marked delivered. Framing errors get their own 4xx: 411 without a usable
``Content-Length``, 413 above ``max_body`` bytes, 400 for a body that is not JSON.

Here are the checks as functions of the body (``parse_uplink``, ``token_verdict``), the notes
the emulator keeps on an accepted pack (``device_dated`` for duplicates, ``time_notes``), and
the check of a downlink pack before it is queued (``checked_downlink``); ``emulator.Emulator``
applies them in order and stores what came of it.
"""

import hmac
import json
import re

from kpnthings import auth, senml

INGEST_PATH = "/ingestion/ip/senml/v1"
DEFAULT_MAX_BODY = 16 * 1024
_BASE_NAME = re.compile(r"^urn:dev:DVNUUID:([^:]*):$")
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


class EmulatorError(ValueError):
    """A request the emulator refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status, reason, dvnuuid=None):
        ValueError.__init__(self, reason)
        self.status = status
        self.reason = reason
        # The device a malformed message names, when it names one: it is filed under it.
        self.dvnuuid = dvnuuid


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


def token_verdict(body, token, secret):
    """(verdict, reason) of a Things-Message-Token: ``(CHECK_OK, "")`` when it is
    sha256(body + secret), else CHECK_MISSING or CHECK_MISMATCH and the reason answered with
    401."""
    if not token:
        return CHECK_MISSING, "Things-Message-Token header is missing"
    expected = auth.message_token(body, secret)
    # Constant time, and on bytes: compare_digest refuses non-ASCII str.
    given = token.strip().encode("utf-8", "replace")
    if not hmac.compare_digest(given, expected.encode("ascii")):
        if not _TOKEN.match(token.strip()):
            return CHECK_MISMATCH, "Things-Message-Token must be 64 lowercase hex"
        return CHECK_MISMATCH, "Things-Message-Token does not match body and secret"
    return CHECK_OK, ""


def checked_downlink(dvnuuid, body):
    """A downlink body as queued: ``bn`` put in front when the first record has none (as KPN
    does), compact; raises EmulatorError(400) for a body that is not a SenML pack for the
    device."""
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
