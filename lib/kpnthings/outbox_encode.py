"""One reading as the outbox stores it: the payload of a frame (the format is in
kpnthings.outbox's docstring; kpnthings.outbox_read decodes it). Loaded by Outbox.extend and let
go when the device rests before a long wait (Outbox.rest): a resting device stores nothing.
"""

import struct

from kpnthings.outbox import OutboxError

_VALUE_KEYS = ("v", "vb", "vs", "vd")


def encode_record(record):
    """Serialise one reading to the outbox payload bytes (see the module docstring)."""
    if not isinstance(record, dict):
        raise OutboxError("record must be a dict with n and a value")
    name = record.get("n")
    if not isinstance(name, str) or not name:
        raise OutboxError("record field n must be a non-empty string")
    found = [k for k in _VALUE_KEYS if k in record]
    if len(found) != 1:
        raise OutboxError("record %s must have exactly one of v, vb, vs, vd" % name)
    key = found[0]
    value = record[key]
    parts = []
    if key == "v":
        if type(value) is bool or not isinstance(value, (int, float)):
            raise OutboxError("record %s field v must be a number" % name)
        if isinstance(value, float):
            kind, tail = 0, struct.pack("<d", value)
        else:
            if not -(2**63) <= value < 2**63:
                raise OutboxError("record %s field v is out of the 64-bit range" % name)
            kind, tail = 1, struct.pack("<q", value)
    elif key == "vb":
        if type(value) is not bool:
            raise OutboxError("record %s field vb must be true or false" % name)
        kind, tail = (3 if value else 2), b""
    elif key == "vs":
        if not isinstance(value, str):
            raise OutboxError("record %s field vs must be a string" % name)
        raw = value.encode()
        kind, tail = 4, struct.pack("<H", len(raw)) + raw
    else:
        if not isinstance(value, (bytes, bytearray)):
            raise OutboxError("record %s field vd must be bytes" % name)
        kind, tail = 5, struct.pack("<H", len(value)) + bytes(value)
    flags = kind
    unit = record.get("u")
    if unit is not None:
        if not isinstance(unit, str):
            raise OutboxError("record %s field u must be a string" % name)
        flags |= 0x10
    t = record.get("t")
    if t is not None:
        if type(t) is bool or not isinstance(t, int) or not 0 <= t < 2**62:
            raise OutboxError("record %s field t must be an integer time in seconds" % name)
        flags |= 0x20
    if "k" in record:  # untimed, or timed by an RTC kept through a reset
        flags |= 0x40
    raw_name = name.encode()
    if len(raw_name) > 255:
        raise OutboxError("record field n is longer than 255 bytes")
    parts.append(bytes((flags, len(raw_name))))
    parts.append(raw_name)
    if unit is not None:
        raw_unit = unit.encode()
        if len(raw_unit) > 255:
            raise OutboxError("record %s field u is longer than 255 bytes" % name)
        parts.append(bytes((len(raw_unit),)))
        parts.append(raw_unit)
    if t is not None:
        parts.append(struct.pack("<q", t))
    if flags & 0x40:  # the ticks_ms and boot it was taken at, to date it in that boot
        parts.append(struct.pack("<qI", record["k"], record["b"] & 0xFFFFFFFF))
    parts.append(tail)
    return b"".join(parts)
