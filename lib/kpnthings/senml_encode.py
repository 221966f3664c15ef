"""SenML records (dicts with RFC 8428 labels) to compact JSON bytes: kpnthings.senml's `encode`,
and the checked text of one field that its Pack writes for what its fast path cannot.

Apart from kpnthings.senml so that each stays a page long; the float width (senml.FLOAT32) is
handed in, so this module imports nothing back.
"""

from kpnthings import senml_text
from kpnthings.senml_check import (
    _BOOL,
    _DATA,
    _KIND,
    _LAB,
    _NOVAL,
    _NUM,
    _ONE,
    _ORDER,
    _ROLE,
    _STR,
    _check,
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


def _text(i, k, x, f32):
    # Validated JSON text of value x for label k. The common valid cases come first, inline;
    # anything else goes through _check, which raises with the record and field.
    t = type(x)
    kind = _KIND.get(k)
    if kind == _NUM and t is float and _NINF < x < _INF:
        try:
            return senml_text.format_float(x, f32)
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


def encode(records, limit, f32):
    """Encode a list of record dicts (RFC 8428 labels) to compact SenML JSON bytes, floats at
    float32 width if `f32` (None: the runtime's).

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
            text = _text(i, k, x, f32)
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
