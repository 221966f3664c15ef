"""Batching: the oldest queued readings as one SenML pack, written straight into a buffer.

The first record carries the base fields: `bn`, an integer `bt` from the earliest timed reading
(each record then has an integer offset `t`, left out when 0), and `bu` when every record of the
pack has the same unit. The bytes are those kpnthings.senml.encode writes for the same records,
identical on every runtime, and they are exactly the bytes that get hashed and sent.

`write_pack` lays the pack out in a caller's bytearray, one record at a time, and stops before
the first reading that would not fit: no list of pieces, no body string, no copy of the records.
The device keeps one such buffer for its whole life, so a flush needs the same heap whether the
backlog holds one reading or a thousand. `build_pack` is the same as bytes, for tests and tools.

Clock rule: a reading taken before the clock was set has no absolute time. A pack never mixes the
two kinds: it holds either a run of timed readings (with `bt`) or a run of untimed ones (no `bt`,
KPN stamps them with the arrival time), ending where the kind changes. Giving an untimed reading
`bt` would stamp it with another reading's time, which is worse than the arrival time.
"""

from kpnthings.senml_text import _BIG, _INF, _NBIG, _NINF, _err, _name, _q, format_float

_KEYS = ("v", "vb", "vs", "vd")
# name -> (bn, unit written, value label, b'"n":"temperature","u":"Cel","v":'): a sensor's
# checked record head, built once (bounded: a board has a handful of sensors).
_HEADS = {}
_BASE = [None, None, None, b""]  # (bn, bt, bu, the base fields' text): see _base


def _key(record):
    for k in _KEYS:
        if k in record:
            return k
    raise ValueError("record %s has no value (v, vb, vs, vd)" % record.get("n"))


def _number(p, k, x):
    t = type(x)
    if t is float and _NINF < x < _INF:
        try:
            return format_float(x).encode()
        except ValueError:  # finite, but not once rounded to float32
            raise _err(p, k, "not a finite float32") from None
    if t is int and _NBIG < x < _BIG:
        return b"%d" % x
    if t is float:
        raise _err(p, k, "%r is not a finite number" % x)
    raise _err(p, k, "must be a number" if t is not int else "integer out of range")


def _value(p, k, x):
    # The JSON text of value x under label k, as bytes; SenMLError names record p.
    if k == "v":
        return _number(p, k, x)
    t = type(x)
    if k == "vb":
        if t is bool:
            return b"true" if x else b"false"
        raise _err(p, k, "must be a boolean")
    if k == "vs":
        if t is str:
            return _q(x, p, k).encode()
        raise _err(p, k, "must be a string")
    if t is bytes or t is bytearray:
        import binascii

        b = binascii.b2a_base64(bytes(x)).replace(b"+", b"-").replace(b"/", b"_")
        return b'"' + b.rstrip(b"=\n") + b'"'
    raise _err(p, k, "must be bytes")


def _head(p, bn, name, unit, k):
    # The cache entry for this sensor's '"n":...,"u":...,"<k>":', checked once and kept.
    if type(name) is not str:
        raise _err(p, "n", "must be a string")
    if unit is not None and type(unit) is not str:
        raise _err(p, "u", "must be a string")
    head = '"n":' + _q(name, p, "n")
    if unit is not None:
        head += ',"u":' + _q(unit, p, "u")
    _name(p, "n", bn, name)
    e = (bn, unit, k, (head + ',"' + k + '":').encode())
    if len(name) <= 64:
        if len(_HEADS) >= 16:
            _HEADS.clear()
        _HEADS[name] = e
    return e


def _base(bn, bt, bu):
    # '[{"bn":...,"bt":...,"bu":...,' opening record 0; one pack's worth is kept.
    if _BASE[0] != bn or _BASE[1] != bt or _BASE[2] != bu:
        text = b'[{"bn":' + _q(bn, 0, "bn").encode()
        if bt is not None:
            text += b',"bt":%d' % bt
        if bu is not None:
            text += b',"bu":' + _q(bu, 0, "bu").encode()
        _BASE[:] = [bn, bt, bu, text + b","]
    return _BASE[3]


def _record(buf, i, p, bn, r, t, bt, bu):
    """Record p (0 opens the pack with the base fields) at buf[i:]; the end, or -1 when it
    does not fit (or i is -1 already). One copy into the buffer per record: on the RP2040 each
    slice assignment costs as much as a dozen dict lookups."""
    k = "v" if "v" in r else _key(r)
    name = r["n"]
    unit = None if bu is not None else r.get("u")
    e = _HEADS.get(name)
    if e is None or e[0] != bn or e[1] != unit or e[2] != k:
        e = _head(p, bn, name, unit, k)
    x = r[k]
    value = None
    if k == "v" and type(x) is float and _NINF < x < _INF:  # the usual reading, inline
        try:
            value = format_float(x).encode()
        except ValueError:  # not finite as a float32: _value names the record
            pass
    if value is None:
        value = _value(p, k, x)
    if t is not None and bt is not None:
        t = t - bt
    tail = b"," + b'"t":' + _number(p, "t", t) + b"}" if t else b"}"
    data = b"".join((_base(bn, bt, bu) if p == 0 else b",{", e[3], value, tail))
    j = i + len(data)
    if i < 0 or j > len(buf):
        return -1
    buf[i:j] = data
    return j


def _readings(buf, i, bn, records, k, bt, bu):
    for p in range(k):
        r = records[p]
        i = _record(buf, i, p, bn, r, r.get("t"), bt, bu)
        if i < 0:
            break
    return i


def _extras(buf, i, bn, extra, p, bt, bu, newest):
    # The extra records (state, counters) after p readings, then the closing "]". An extra
    # without a time describes now: the newest reading's time, or none in an untimed pack.
    for r in extra:
        t = r.get("t")
        i = _record(buf, i, p, bn, r, newest if t is None else t, bt, bu)
        if i < 0:
            return -1
        p += 1
    if i < 0 or i >= len(buf):
        return -1
    buf[i] = 93  # "]"
    return i + 1


_MIXED = object()  # "the records so far have no unit in common"


def _common(unit, r):
    # The unit the records so far share, after one more: None before any, _MIXED if none.
    u = r.get("u")
    return _MIXED if u is None or (unit is not None and unit != u) else u


def _bu(unit, count):
    # bu of a pack of `count` records sharing `unit`: a record alone keeps its own unit.
    return None if count < 2 or unit is _MIXED else unit


def write_pack(buf, base_name, records, extra=(), start=0):
    """Write one pack into `buf` (a bytearray) at `start`: returns (end, n_used).

    `records` has a length and is indexed in rising order: a list, or kpnthings.outbox.Queued,
    which reads each reading from flash when asked for it.

    Uses the longest leading run of readings of one kind (timed or untimed) whose pack, with
    every `extra` record (e.g. droppedReadings, actuator state) appended, fits in the buffer.
    Extra records may carry an absolute `t`; without one they get the newest reading's time in a
    timed pack and the arrival time otherwise.
    n_used == 0 means no reading fits: the pack then holds only the extra records (end == start
    if there are none or they do not fit either). If that happens with records given and
    extra=(), the first reading can never be sent at this size: the caller should dead-letter it.
    Raises SenMLError (a ValueError) for a record that is not valid SenML, naming its position.
    """
    # The base fields of the pack for the first k readings: bt the earliest time, the newest
    # time for extras, bu the unit every record shares (a record alone keeps its own unit).
    # A reading that changes them means the pack is written again; in outbox order (times
    # rising, one sensor set) that happens at most once, at the second reading.
    ex_unit = None
    for r in extra:
        ex_unit = _common(ex_unit, r)
    bt = newest = None
    unit = ex_unit
    n_extra = len(extra)
    end = ready = -1  # end of the pack for `used` readings; end of those readings
    used = 0
    timed = None
    n = len(records)
    while used < n:
        r = records[used]  # a list, or the outbox's view that reads each from flash
        t = r.get("t")
        if timed is None:
            timed = t is not None
        elif (t is not None) != timed:
            break  # the run of one kind ends here
        nbt = t if t is not None and (bt is None or t < bt) else bt
        nnew = t if t is not None and (newest is None or t > newest) else newest
        # _common and _bu, inline: this loop runs once per reading of every pack.
        u = r.get("u")
        nunit = _MIXED if u is None or (unit is not None and unit != u) else u
        count = used + 1 + n_extra
        nbu = None if count < 2 or nunit is _MIXED else nunit
        obu = None if count < 3 or unit is _MIXED else unit
        append = used and nbt == bt and nbu == obu
        if append:
            i = _record(buf, ready, used, base_name, r, t, bt, obu)
        else:
            i = _readings(buf, start, base_name, records, used + 1, nbt, nbu)
        if i < 0:
            e = -1
        elif n_extra:
            e = _extras(buf, i, base_name, extra, used + 1, nbt, nbu, nnew)
        elif i < len(buf):  # no extras: just the closing "]"
            buf[i] = 93
            e = i + 1
        else:
            e = -1
        if e < 0:
            if used:  # put back the pack that fitted
                if not append:
                    ready = _readings(buf, start, base_name, records, used, bt, obu)
                end = _extras(buf, ready, base_name, extra, used, bt, obu, newest)
            break
        bt, newest, unit, ready, end = nbt, nnew, nunit, i, e
        used += 1
    if used:
        return end, used
    if extra:
        # _extras writes record 0 with the base fields: a pack of the extras alone.
        end = _extras(buf, start, base_name, extra, 0, None, _bu(ex_unit, n_extra), None)
        if end >= 0:
            return end, 0
    return start, 0


def build_pack(base_name, records, max_body, extra=()):
    """write_pack as bytes: (body, n_used) for a body of at most max_body bytes (b"" if
    nothing fits). The device writes into its own buffer instead; this is for tests and tools."""
    buf = bytearray(max_body)
    end, used = write_pack(buf, base_name, records, extra)
    return bytes(buf[:end]), used
