"""SenML labels and the check of one label's value (RFC 8428 sections 4.3-4.5), shared by the
pack API (kpnthings.senml) and the downlink parser (kpnthings.senml_decode).
"""

from kpnthings.senml_text import _BIG, _NBIG, _err

# Upper bound on decode input, in bytes (or characters for str): the parse cost and heap stay
# bounded whatever a server or attacker sends. Raise it here (or senml.MAX_INPUT, which
# senml.decode passes on) if a deployment needs larger packs.
MAX_INPUT = 16384

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
_ONE = "a record holds exactly one of v, vs, vb, vd"
_NOVAL = "record has no value (v, vs, vb, vd) and no sum (s)"


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
