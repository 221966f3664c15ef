"""SenML in JSON (RFC 8428), with the same output bytes on every runtime.

Build a pack with `Pack` (or `encode` a list of record dicts) to get the exact body to hash and
send. Output never depends on dict order, and floats are written in the shortest form that reads
back to the same float at the runtime's precision. `decode` (a downlink into resolved records)
lives in kpnthings.senml_decode, which a board loads only when a downlink arrives.
"""

from kpnthings import senml_encode, senml_text
from kpnthings.senml_check import (
    _LAB,
    _NOVAL,
    _ORDER,
    MAX_INPUT,
)
from kpnthings.senml_text import (
    _BIG,
    _INF,
    _NBIG,
    _NINF,
    SenMLError,
    _err,
    _name,
    _q,
)

# None: detect the runtime's float width. True/False forces the float32/float64 path, so the
# float32 formatting that ESP32 and rp2 use can be tested on a host with 64-bit floats.
FLOAT32 = None


def format_float(x):
    """Shortest decimal text that reads back to the float x at the runtime precision.

    9.7 gives "9.7" on every runtime (the unix port's repr gives 9.699999999999999). With
    float32 (native, or FLOAT32 = True) x is first rounded to float32 and the shortest text that
    reads back to that float32 is returned. NaN and infinities raise SenMLError.
    """
    return senml_text.format_float(x, FLOAT32)


def encode(records, limit=None):
    """Encode a list of record dicts (RFC 8428 labels) to compact SenML JSON bytes.

    Base fields are written as given; a field whose value is None is left out. Raises
    SenMLError naming the record index and field. With `limit`, a pack that would be longer
    than `limit` bytes is not assembled at all: None is returned instead. The encoder lives in
    kpnthings.senml_encode.
    """
    return senml_encode.encode(records, limit, FLOAT32)


def _text(i, k, x):
    return senml_encode._text(i, k, x, FLOAT32)


class Pack:
    """A pack under construction: base fields, then one record per `add`.

    `encode()` writes the base fields as a record of their own (record 0, as KPN's examples
    do) followed by the added records, so error messages count that base record. With
    merge=True the base fields open the first added record instead (a few bytes less, as
    kpnthings.batch sends them); such a pack needs at least one added record.

    A reading of the usual shape (a name valid after the base name, a number or a boolean, an
    integer time or none, no sum) becomes JSON text as it is added: a cached, checked head per
    sensor, the value text and a closing brace, so encode() only joins. Anything else is kept
    as given and checked by encode(), which raises the SenMLError that names its record.
    """

    _h0 = 3  # which head of a _PC entry record 0 starts with (see _record)

    def __init__(self, base_name=None, base_time=None, base_unit=None, merge=False):
        # JSON pieces in order; a tuple stands for a record that encode() still has to check.
        parts = ["["]  # type: list
        self._parts = parts
        self._slow = False
        self._n = 0
        if base_name is None and base_time is None and base_unit is None:
            self._bn = ""
            return
        if merge:
            self._h0 = 5  # the first record continues the open base record
        else:
            self._n = 1
        self._bn = base_name if type(base_name) is str else None
        bt = base_time
        bnt = None if base_name is None else _base_text(0, base_name)
        but = None if base_unit is None else _base_text(1, base_unit)
        if (
            (base_name is None or bnt is not None)
            and (bt is None or (type(bt) is int and _NBIG < bt < _BIG))
            and (base_unit is None or but is not None)
        ):
            sep = "{"
            if bnt is not None:
                parts.append(bnt)
                sep = ","
            if bt is not None:
                parts.append('{"bt":' if sep == "{" else ',"bt":')
                parts.append(str(bt))
                sep = ","
            if but is not None:
                parts.append(but if sep == "," else "{" + but[1:])
            if not merge:
                parts.append("}")
        else:
            self._base = (base_name, base_time, base_unit)
            self._slow = True
            parts.append(_SLOWM if merge else _SLOW)

    def add(self, name, value=None, unit=None, time=None, sum=None):
        i = self._n
        self._n = i + 1
        # The fast way: a sensor seen before (its head checked and cached), a finite float, an
        # integer or a boolean, an integer time or none, no sum.
        e = _PC.get(name) if type(name) is str else None  # keyed by name: no tuple to allocate
        if (
            e is not None
            and e[1] == unit
            and e[0] == self._bn
            and sum is None
            and (time is None or (type(time) is int and _NBIG < time < _BIG))
        ):
            text = None
            if type(value) is float:
                if e[2] == "v" and _NINF < value < _INF:
                    try:
                        text = format_float(value)
                    except SenMLError:  # finite, but not as a float32: checked below
                        pass
            elif type(value) is int:
                if e[2] == "v" and _NBIG < value < _BIG:
                    text = str(value)
            elif value is True or value is False:
                if e[2] == "vb":
                    text = "true" if value else "false"
            if text is not None:
                parts = self._parts
                parts.append(e[4] if i else e[self._h0])
                parts.append(text)
                parts.append("}" if time is None else ',"t":%d}' % time)
                if len(parts) > 31 and not self._slow:
                    # A long pack (a backlog) is joined as it grows: a list of every piece
                    # would need a large contiguous block, which a fragmented heap may lack.
                    text = "".join(parts)
                    parts.clear()
                    parts.append(text)
                return self
        if value is not None and type(value) not in _VK:
            self._n = i
            raise _err(i, "v", "value must be int, float, bool, str or bytes")
        self._parts.append((i, name, value, unit, time, sum))
        self._slow = True
        return self

    def encode(self):
        if not self._n:
            raise SenMLError("a pack needs at least one record")
        parts = self._parts
        if not self._slow:
            parts.append("]")
            text = "".join(parts)  # only checked ASCII pieces: nothing to escape
            parts.pop()
            return text.encode()
        out = []
        bn = self._bn or ""
        for p in parts:
            if p is _SLOW or p is _SLOWM:
                bn = self._base_record(out, p is _SLOW)
            elif type(p) is tuple:
                _record(out, bn, self._h0, *p)
            else:
                out.append(p)
        out.append("]")
        return "".join(out).encode()

    def _base_record(self, out, close):
        sep = "{"
        for j in range(3):  # bn, bt, bu are the first three labels of _ORDER
            x = self._base[j]
            if x is not None:
                k = _ORDER[j]
                out.append(sep)
                out.append(_LAB[k])
                out.append(_text(0, k, x))
                sep = ","
        if close:
            out.append("}")
        return self._base[0] or ""


_SLOW = ("base",)  # marks the base record that encode() checks
_SLOWM = ("base", "merged")  # the same, left open for the first record
_BT = [None, None, None, None]  # type: list  # (bn, '{"bn":"..."', bu, ',"bu":"..."'): one pack's worth


def _base_text(j, s):
    # '{"bn":"<bn>"' (j 0) or ',"bu":"<bu>"' (j 1) if s is plain text, else None. One entry
    # each: a device keeps its base name, and the check scans the whole string.
    if _BT[2 * j] != s:
        if type(s) is not str or len(s) > 256 or s.strip(_PLAIN):
            return None
        _BT[2 * j + 1] = ('{"bn":"%s"' if j == 0 else ',"bu":"%s"') % s
        _BT[2 * j] = s
    return _BT[2 * j + 1]


def _record(out, bn, h0, i, name, value, unit, time, sum):
    # One added record, checked: the same head cache as the fast path fills it.
    if type(name) is not str or (unit is not None and type(unit) is not str):
        _text(i, "n", name)
        _text(i, "u", unit)
    vk = None if value is None else _VK[type(value)]
    e = _PC.get(name)
    if e is None or e[0] != bn or e[1] != unit or e[2] != vk:
        _name(i, "n", bn, name)
        head = '"n":' + _q(name, i, "n")
        if unit is not None:
            head += ',"u":' + _q(unit, i, "u")
        if vk:
            head += ',"' + vk + '":'
        e = (bn, unit, vk, "{" + head, ",{" + head, "," + head)
        if len(name) <= 64:
            if len(_PC) >= 16:
                _PC.clear()
            _PC[name] = e
    out.append(e[4] if i else e[h0])
    if vk:
        out.append(_text(i, vk, value))
    elif sum is None:
        raise _err(i, "v", _NOVAL)
    if sum is not None:
        out.append(',"s":')
        out.append(_text(i, "s", sum))
    if time is not None:
        out.append(',"t":')
        out.append(_text(i, "t", time))
    out.append("}")


_VK = {bool: "vb", int: "v", float: "v", str: "vs", bytes: "vd", bytearray: "vd"}
# n -> (bn, u, value label, and the checked head '"n":...,"u":...,"v":' opening a record, after
# a record, and after the base fields of a merged first record); see _record
_PC = {}
# Printable ASCII but '"' and '\\': text made of these is its own JSON string body.
_PLAIN = "".join([chr(c) for c in range(32, 127) if c != 34 and c != 92])


def decode(data, now=None):
    """Parse a SenML JSON pack (bytes or str) into resolved records (RFC 8428 section 4.6).

    The parser lives in kpnthings.senml_decode, loaded on the first call: an uplink-only board
    never holds it. Any bad or hostile input raises SenMLError and nothing else.
    """
    from kpnthings.senml_decode import decode

    return decode(data, now, MAX_INPUT)
