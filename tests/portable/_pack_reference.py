"""The specification of a batch pack as record dicts, for senml.encode to turn into bytes.

kpnthings.batch writes packs straight into a buffer; the tests check that its bytes are exactly
what senml.encode makes of these dicts (the pack this module describes field by field).
"""


def _key(record):
    for k in ("v", "vb", "vs", "vd"):
        if k in record:
            return k
    raise ValueError("record %s has no value (v, vb, vs, vd)" % record.get("n"))


def pack_records(base_name, readings, extra):
    """The record dicts for one pack (base fields in the first record)."""
    rows = list(readings) + list(extra)
    bt = None
    for r in readings:
        t = r.get("t")
        if t is not None and (bt is None or t < bt):
            bt = t
    newest = None
    if bt is not None:
        for r in readings:
            if newest is None or r["t"] > newest:
                newest = r["t"]
    bu = rows[0].get("u") if len(rows) > 1 else None
    if bu is not None:
        for r in rows:
            if r.get("u") != bu:
                bu = None
                break
    out = []
    for i, r in enumerate(rows):
        k = _key(r)
        rec = {"n": r["n"], k: r[k]}
        if bu is None and r.get("u") is not None:
            rec["u"] = r["u"]
        t = r.get("t")
        if t is None and i >= len(readings) and newest is not None:
            t = newest  # an extra (state, counters) describes now: the newest reading's time
        if t is not None:
            if bt is not None:
                t = t - bt
            if t:
                rec["t"] = t
        out.append(rec)
    first = out[0]
    first["bn"] = base_name
    if bt is not None:
        first["bt"] = bt
    if bu is not None:
        first["bu"] = bu
    return out
