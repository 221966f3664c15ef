"""SenML in JSON (RFC 8428), with the same output bytes on every runtime.

Build a pack with `Pack` (or `encode` a list of record dicts) to get the exact body to hash and
send. Output never depends on dict order, and floats are written in the shortest form that reads
back to the same float at the runtime's precision. `decode` (a downlink into resolved records)
lives in kpnthings.senml_decode, which a board loads only when a downlink arrives.
"""

# Upper bound on decode input, in bytes (or characters for str): the parse cost and heap stay
# bounded whatever a server or attacker sends. Raise it here if a deployment needs larger packs.
MAX_INPUT = 16384

# None: detect the runtime's float width. True/False forces the float32/float64 path, so the
# float32 formatting that ESP32 and rp2 use can be tested on a host with 64-bit floats.
FLOAT32 = None

# 1 + 2**-30 rounds to 1 only when floats have a 24-bit mantissa (ESP32, rp2 builds).
_NATIVE32 = 1.0 + 2.0**-30 == 1.0
# Powers of ten that are exact floats (10**22 is the largest exact double), built from ints so
# that no libm pow() rounding can make runtimes differ.
_P10 = [10**i for i in range(23)]
_P = [float(i) for i in _P10]
_BIG = 10**20  # larger integers are refused both ways: bounded work, and no JSON reader chokes
_NBIG = -_BIG  # a constant: writing -_BIG in a check would allocate a big integer each time

# Encoding order of RFC 8428 labels and the kind of value each holds.
_ORDER = ("bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut")
_STR, _NUM, _INT, _BOOL, _DATA = "snibd"
_KIND = {}
_ROLE = {}  # 0: base field; 1: makes a record a measurement (n u s t ut); 2: a value
_LAB = {}  # label -> its JSON text '"n":' (one string each: module heap counts on a board)
for _i, _k in enumerate(_ORDER):
    _KIND[_k] = "snsnnissnsbdnnn"[_i]
    _ROLE[_k] = (_i > 5) + (7 < _i < 12)
    _LAB[_k] = '"' + _k + '":'
# No loop names left behind: MicroPython grows a module's table of globals only once it is full,
# and a full table makes every lookup of a builtin (type, round, str) scan it whole.
del _i, _k
_INF = float("inf")
_NINF = -_INF  # a constant: -_INF in a check would allocate a float each time
# Largest exact integer candidate and most decimals tried, at the native float width.
_LIM = (16777216, 10) if _NATIVE32 else (9007199254740992, 22)
_SUR = chr(0xD800)
_QC = {}  # str -> JSON literal, bounded cache (see _q)
_NC = {}  # str -> holds only name characters, bounded cache (see _chars_ok)
_NAMECH = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-:./_"
_ALNUM = _NAMECH[:62]
_ONE = "a record holds exactly one of v, vs, vb, vd"
_NOVAL = "record has no value (v, vs, vb, vd) and no sum (s)"


class SenMLError(ValueError):
    """A pack that cannot be encoded or decoded; the message names the record and field."""


def _err(i, k, msg):
    return SenMLError("record %d: field '%s': %s" % (i, k, msg))


def _r32(x):
    import struct

    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:  # beyond float32 range: refused as not finite
        return x * 1e308


def _fmt(neg, digits, k):
    # Place the point the way CPython's repr does: plain notation for 1e-4 <= |x| < 1e16.
    digits = digits.rstrip("0")
    n = len(digits)
    if -4 <= k < 16:
        if k >= n - 1:
            s = digits + "0" * (k - n + 1) + ".0"
        elif k >= 0:
            s = digits[: k + 1] + "." + digits[k + 1 :]
        else:
            s = "0." + "0" * (-k - 1) + digits
    else:
        s = (
            digits[0]
            + ("." + digits[1:] if n > 1 else "")
            + ("e-%02d" % -k if k < 0 else "e+%02d" % k)
        )
    return "-" + s if neg else s


def format_float(x):
    """Shortest decimal text that reads back to the float x at the runtime precision.

    9.7 gives "9.7" on every runtime (the unix port's repr gives 9.699999999999999). With
    float32 (native, or FLOAT32 = True) x is first rounded to float32 and the shortest text that
    reads back to that float32 is returned. NaN and infinities raise SenMLError.
    """
    f32 = FLOAT32
    if f32 is None and 0 < x < _INF:
        # A positive finite float at native precision (most readings) skips the set-up below,
        # which would come to the same values.
        f32 = host32 = neg = False
        lim, top = _LIM
    else:
        if f32 is None:
            f32 = _NATIVE32
        host32 = f32 and not _NATIVE32
        if host32:
            x = _r32(x)
        if not _NINF < x < _INF:  # comparisons allocate nothing; x - x would (a boxed float)
            raise SenMLError("%r is not a finite number" % x)
        if x == 0:
            return "-0.0" if str(x)[0] == "-" else "0.0"
        neg = x < 0
        if neg:
            x = -x
        lim, top = (16777216, 10) if f32 else (9007199254740992, 22)
    # Fast path: d / 10**n with d and 10**n both exact floats is one correctly rounded IEEE
    # division, i.e. exactly what a correct reader computes from the text "d e-n". So it proves
    # the round trip without trusting the runtime's float parser, which on MicroPython can be
    # one unit off. Candidates with n < 0 are never needed here: below 2**53 (2**24) a float
    # that equals an integer is that integer, and the trailing zeros are stripped anyway.
    if x >= lim:  # too large for an exact candidate (and for any fraction)
        return _exact(neg, x, f32)
    if x == int(x):  # n = 0: an integer, no float to allocate
        return "%s%d.0" % ("-" if neg else "", int(x))
    p = _P
    n = 1
    while n <= top:
        d = round(x * p[n])
        if d >= lim:
            break
        if d:
            y = d / p[n]
            if host32:
                y = _r32(y)
            if y < x:
                # Just above a power of two the gap below x is half the gap above, so the
                # candidate above may read back as x when the nearer one below does not.
                d += 1
                y = d / p[n]
                if host32:
                    y = _r32(y)
            if y == x:
                # Common shapes in one %-format each (heap per message counts on a board).
                sign = "-" if neg else ""
                if d % 10:
                    if x >= 1:
                        q = _P10[n]
                        return "%s%d.%0*d" % (sign, d // q, n, d % q)
                    if d * 10000 >= _P10[n]:  # x >= 1e-4: plain notation
                        return "%s0.%0*d" % (sign, n, d)
                s = str(d)
                return _fmt(neg, s, len(s) - 1 - n)
        n += 1
    return _exact(neg, x, f32)


def _exact(neg, x, f32):
    # Same search with exact integers, for what the fast path cannot prove (more digits than
    # an exact float holds, far exponents). Runtime float formatting is not used: MicroPython's
    # differs from CPython's in the 17th digit, and identical bytes everywhere is the point.
    import struct

    if f32:
        b = struct.unpack("<I", struct.pack("<f", x))[0]
        fb, bias = 23, 150
    else:
        b = struct.unpack("<Q", struct.pack("<d", x))[0]
        fb, bias = 52, 1075
    f = b & ((1 << fb) - 1)
    ex = b >> fb
    m = f | (1 << fb) if ex else f
    e = ex - bias if ex else 1 - bias
    # x = m * 2**e; in units of 2**(e-2) the values that read back as x lie between 4m - lo
    # and 4m + 2 (ends included when m is even: ties round to even). Just above a power of
    # two the gap below is half as wide.
    lo = 1 if f == 0 and ex > 1 else 2
    n = -int((e + fb + 1) * 0.30103) - 1
    while True:
        p = 10 ** abs(n)
        num = m << e if e > 0 else m
        den = 1 if e > 0 else 1 << -e
        if n > 0:
            num *= p
        else:
            den *= p
        d0, r = divmod(num, den)
        if 2 * r > den or (2 * r == den and d0 & 1):
            d0 += 1
        # As in the fast path, above a power of two the next candidate up may also fit.
        for d in (d0, d0 + 1) if lo == 1 else (d0,):
            if d:
                a = d << (2 - e) if e < 2 else d
                bb = 1 << (e - 2) if e > 2 else 1
                if n < 0:
                    a *= p
                else:
                    bb *= p
                lo_ok = a > (4 * m - lo) * bb or (m & 1 == 0 and a == (4 * m - lo) * bb)
                hi_ok = a < (4 * m + 2) * bb or (m & 1 == 0 and a == (4 * m + 2) * bb)
                if lo_ok and hi_ok:
                    s = str(d)
                    return _fmt(neg, s, len(s) - 1 - n)
        n += 1


def _q(s, i=0, k="vs"):
    # JSON string literal. Names and units repeat in every message, so their literals are
    # cached (bounded); the scans for characters to escape or refuse run once per string.
    t = _QC.get(s)
    if t is None:
        # A lone surrogate has no UTF-8 form (MicroPython would write CESU bytes ED A0..BF).
        if s and max(s) >= _SUR and _surrogate(s):
            raise _err(i, k, "string holds a lone surrogate, not valid UTF-8")
        t = s
        if '"' in s or "\\" in s or (s and min(s) < " "):
            out = []
            for c in s:
                if c == '"' or c == "\\":
                    out.append("\\" + c)
                elif c < " ":
                    out.append("\\u%04x" % ord(c))
                else:
                    out.append(c)
            t = "".join(out)
        t = '"' + t + '"'
        if len(s) <= 64:  # long values (a vs of kilobytes) are not kept alive by the cache
            if len(_QC) >= 32:
                _QC.clear()
            _QC[s] = t
    return t


def _chars_ok(s):
    # True if s only holds name characters; strip() is empty exactly then (one C-level call,
    # as MicroPython's re cannot express the class). Cached like _q: names repeat.
    ok = _NC.get(s)
    if ok is None:
        ok = not s.strip(_NAMECH)
        if len(s) <= 64:
            if len(_NC) >= 32:
                _NC.clear()
            _NC[s] = ok
    return ok


def _name(i, k, bn, n):
    # ^[A-Za-z0-9][A-Za-z0-9\-:./_]*$ on bn + n, without building bn + n.
    c = bn[:1] or n[:1]
    if c == "" or c not in _ALNUM or not _chars_ok(bn) or not _chars_ok(n):
        raise _err(i, k, "name %r is not a valid SenML name" % (bn + n))


def _check(i, k, x):
    # Validate the value of label k; returns its kind. Shared by encode and decode.
    kind = _KIND.get(k)
    t = type(x)
    if kind == _NUM:
        if t is float:
            if x != x or x - x:
                raise _err(i, k, "%r is not a finite number" % x)
        elif t is not int:
            raise _err(i, k, "must be a number")
        elif not _NBIG < x < _BIG:
            raise _err(i, k, "integer out of range")
    elif kind == _STR:
        if t is not str:
            raise _err(i, k, "must be a string")
    elif kind == _BOOL:
        if t is not bool:
            raise _err(i, k, "must be a boolean")
    elif kind == _INT:
        if t is not int or not 0 < x <= 10:
            raise _err(i, k, "must be an integer from 1 to 10")
    elif kind == _DATA:
        if not isinstance(x, (bytes, bytearray, memoryview)):
            raise _err(i, k, "must be bytes")
    else:
        raise _err(i, k, "unknown field")
    return kind


def _text(i, k, x):
    # Validated JSON text of value x for label k. The common valid cases come first, inline;
    # anything else goes through _check, which raises with the record and field.
    t = type(x)
    kind = _KIND.get(k)
    if kind == _NUM and t is float and _NINF < x < _INF:
        try:
            return format_float(x)
        except SenMLError:  # finite, but not once rounded to float32
            raise _err(i, k, "not a finite float32") from None
    if kind == _NUM and t is int and _NBIG < x < _BIG:
        return str(x)
    if kind == _STR and t is str:
        return _q(x, i, k)
    kind = _check(i, k, x)
    if kind == _BOOL:
        return "true" if x else "false"
    if kind == _DATA:
        import binascii

        b = binascii.b2a_base64(bytes(x)).replace(b"+", b"-").replace(b"/", b"_")
        return '"' + b.rstrip(b"=\n").decode() + '"'
    return str(x)  # bver


def encode(records, limit=None):
    """Encode a list of record dicts (RFC 8428 labels) to compact SenML JSON bytes.

    Base fields are written as given; a field whose value is None is left out. Raises
    SenMLError naming the record index and field. With `limit`, a pack that would be longer
    than `limit` bytes is not assembled at all: None is returned instead (batch.build_pack
    probes sizes this way without ever allocating an oversize body).
    """
    if not isinstance(records, (list, tuple)) or not records:
        raise SenMLError("a pack needs at least one record")
    # One string per record in `out`: a list of every piece of a full pack would need one
    # large contiguous block, which a fragmented heap may not have (seen at 1 KB packs).
    out = []
    total = 1  # the closing "]"
    bn = ""
    ver = None
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise SenMLError("record %d: must be a dict" % i)
        for k in r:
            if k not in _KIND:
                raise _err(i, k, "unknown field")
        rec = ["[{" if i == 0 else ",{"]
        first = True
        nvals = 0
        meas = False
        name = None
        for k in _ORDER:  # fixed order; no sorted() list per record
            x = r.get(k)
            if x is None:
                continue
            role = _ROLE[k]
            text = _text(i, k, x)
            if k == "n":
                name = x
            elif k == "bn":
                bn = x
            elif k == "bver":
                if ver is not None and x != ver:
                    raise _err(i, k, "differs from an earlier bver")
                ver = x
            if role:  # a measurement, not base fields only
                meas = True
                if role == 2:
                    nvals += 1
                    if nvals > 1:
                        raise _err(i, k, _ONE)
            if not first:
                rec.append(",")
            rec.append(_LAB[k])
            rec.append(text)
            first = False
        if first:
            raise SenMLError("record %d: is empty" % i)
        if meas:
            if not nvals and r.get("s") is None:
                raise _err(i, "v", _NOVAL)
            _name(i, "bn" if name is None else "n", bn, name or "")
        rec.append("}")
        # Bytes per record, joined once at the end: the only block as large as the pack is
        # the body itself (no full-size str first, then its bytes).
        part = "".join(rec).encode()
        rec = None
        total += len(part)
        if limit is not None and total > limit:
            return None
        out.append(part)
    out.append(b"]")
    return b"".join(out)


def _surrogate(x):
    if isinstance(x, str):
        try:
            x = x.encode()
        except UnicodeError:
            return True
    i = x.find(b"\xed")
    while i >= 0:
        if i + 1 < len(x) and x[i + 1] >= 0xA0:
            return True
        i = x.find(b"\xed", i + 1)
    return False


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

    return decode(data, now)
