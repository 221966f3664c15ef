"""Batching: turn the oldest queued readings into one SenML pack no larger than a body limit.

The first record carries the base fields: `bn`, an integer `bt` from the earliest timed reading
(each record then has an integer offset `t`, left out when 0), and `bu` when every record of the
pack has the same unit. The bytes come from `kpnthings.senml.encode`, so they are identical on
every runtime and are exactly the bytes that get hashed and sent.

Clock rule: a reading taken before the clock was set has no absolute time. A pack never mixes the
two kinds: it holds either a run of timed readings (with `bt`) or a run of untimed ones (no `bt`,
KPN stamps them with the arrival time), ending where the kind changes. Giving an untimed reading
`bt` would stamp it with another reading's time, which is worse than the arrival time.
"""

# Up to this many readings (a cycle's worth) are first tried in one fast encode.
AT_ONCE = 8


def _key(record):
    for k in ("v", "vb", "vs", "vd"):
        if k in record:
            return k
    raise ValueError("record %s has no value (v, vb, vs, vd)" % record.get("n"))


def _pack_records(base_name, readings, extra):
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


def _encode(base_name, readings, extra, limit):
    """The pack's bytes, or None when it would be longer than `limit` (never assembled)."""
    from kpnthings.senml import encode

    return encode(_pack_records(base_name, readings, extra), limit)


def _encode_fast(base_name, readings, extra, limit=None):
    # senml.Pack with the base fields merged into the first record writes the same bytes as
    # encode(_pack_records(...)) without a dict per record. A value whose type does not match
    # its label ({"v": True}) goes the dict way, so encode() refuses it as it always did.
    from kpnthings import senml

    bt = newest = bu = None
    for r in readings:
        t = r.get("t")
        if t is not None:
            if bt is None or t < bt:
                bt = t
            if newest is None or t > newest:
                newest = t
    if len(readings) + len(extra) > 1:
        bu = _common_unit(readings, extra)
    p = senml.Pack(base_name, bt, bu, merge=True)
    for group in (readings, extra):
        for r in group:
            k = _key(r)
            v = r[k]
            if senml._VK.get(type(v)) != k:  # the label Pack would pick for this value
                return senml.encode(_pack_records(base_name, readings, extra), limit)
            t = r.get("t")
            if t is None and group is extra:
                t = newest  # an extra (state, counters) describes now: the newest reading's time
            if t is not None and bt is not None:
                t = t - bt
            p.add(r["n"], v, r.get("u") if bu is None else None, t or None)
    body = p.encode()
    return body if limit is None or len(body) <= limit else None


def _common_unit(readings, extra):
    # The unit every record has (and so goes into bu once), or None.
    bu = None
    for group in (readings, extra):
        for r in group:
            u = r.get("u")
            if u is None:
                return None
            if bu is None:
                bu = u
            elif u != bu:
                return None
    return bu


def build_pack(base_name, records, max_body, extra=()):
    """One pack from the oldest `records` (outbox order): returns (body_bytes, n_used).

    Uses the longest leading run of readings of one kind (timed or untimed) whose pack, with
    every `extra` record (e.g. droppedReadings, actuator state) appended, fits in max_body bytes.
    Extra records may carry an absolute `t`; without one they get the newest reading's time in a
    timed pack and the arrival time otherwise.
    n_used == 0 means no reading fits: the body then holds only the extra records (b"" if there
    are none or they do not fit either). If that happens with records given and extra=(), the
    first reading can never be sent at this max_body: the caller should dead-letter it.
    """
    extra = list(extra)
    n = len(records)
    if n:
        timed = records[0].get("t") is not None
        k = 1
        while k < n and (records[k].get("t") is not None) == timed:
            k += 1
        n = k
    if 0 < n <= AT_ONCE:
        # The usual case, a cycle's readings: one fast encode, kept if it fits.
        body = _encode_fast(base_name, records[:n], extra, max_body)
        if body is not None:
            return body, n
    if n:
        # Adding a reading never shrinks the pack (bt can only move earlier, bu can only go), so
        # the size grows with the count. Double the count until it no longer fits, then bisect:
        # no encode is much larger than max_body, which keeps a small heap unfragmented.
        best = None
        k = 1
        while True:
            body = _encode(base_name, records[:k], extra, max_body)
            if body is None:
                break
            best = (body, k)
            if k == n:
                return best
            k = min(n, 2 * k)
        body = None
        if best is not None:
            lo, hi = best[1] + 1, k - 1
            while lo <= hi:
                mid = (lo + hi) // 2
                body = _encode(base_name, records[:mid], extra, max_body)
                if body is not None:
                    best, lo = (body, mid), mid + 1
                else:
                    hi = mid - 1
            return best
    if extra:
        body = _encode(base_name, (), extra, max_body)
        if body is not None:
            return body, 0
    return b"", 0
