"""The health panel of a device on the emulator's dashboard, from the health records its accepted
messages carried (docs/health.md): the latest value of each, and three warnings a person should
look at before the board stops.

- ``heap``: the largest free block (``heapLargest``) of the last ``FALLING`` reports of one boot,
  each lower than the one before: a heap that fragments, whose next TLS handshake may not fit;
- ``outbox``: the outbox (``outboxDepth``) of the last ``GROWING`` reports, each deeper than the
  one before: uplinks do not get through, or not fast enough, and the bound will drop readings;
- ``resets``: ``RESETS`` boots or more within ``RESET_WINDOW_S`` (from ``bootCount``, which a
  board reports once a boot): the board keeps restarting (see its ``resetCause``).

``panel(base_name, messages)`` takes the stored messages, oldest first (emulator_store), and
gives the dict the API shows as a device's ``health`` (None before any health record).
"""

import itertools

from kpnthings.health import _LAST_ERROR, _WORDS

# The record names, in the order kpnthings.health lists them: from its own word table, so the
# board, the panel, the config check and the bench name the same records.
HEALTH_NAMES = tuple(w.decode() for w in _WORDS.split()[: _LAST_ERROR + 1])
FALLING = 3
GROWING = 3
RESETS = 3
RESET_WINDOW_S = 24 * 3600


def _reports(base_name, messages):
    """[(time, {name: value})]: one per accepted message with a health record, oldest first."""
    out = []
    for m in messages:
        if m.get("outcome") != "accepted" or not m.get("records"):
            continue
        found = {}
        when = None
        for rec in m["records"]:
            name = rec.get("n", "")
            if not name.startswith(base_name):
                continue
            name = name[len(base_name) :]
            if name in HEALTH_NAMES and name != "droppedReadings":  # that one goes without health
                for key in ("v", "vs"):
                    if key in rec:
                        found[name] = rec[key]
                when = rec.get("t", when)
        if any(k != "droppedReadings" for k in found):
            out.append((when or 0, found))
    return out


def _runs(values, want, count):
    """True if the last `count` values each step `want` (-1 down, +1 up) from the one before."""
    if len(values) < count:
        return False
    tail = values[-count:]
    return all((b - a) * want > 0 for a, b in itertools.pairwise(tail))


def _boots_within(reports, window):
    """Boots that began within `window` s of the newest report, from the bootCount records."""
    counts = [(t, r["bootCount"]) for t, r in reports if isinstance(r.get("bootCount"), int)]
    if not counts:
        return 0
    newest = reports[-1][0]
    inside = [c for t, c in counts if t >= newest - window]
    before = [c for t, c in counts if t < newest - window]
    if not inside:
        return 0
    if before:
        return max(inside) - before[-1]
    return max(inside) - min(inside) + 1  # the boots between two reports count too


def panel(base_name, messages):
    """{"latest", "at", "reports", "history", "warnings"} or None (no health record yet)."""
    reports = _reports(base_name, messages)
    if not reports:
        return None
    latest = {}
    for _, found in reports:
        latest.update(found)
    # one boot's heap only: a reset frees it again
    boot_start = max(
        (i for i, (_, r) in enumerate(reports) if "bootCount" in r),
        default=0,
    )
    largest = [r["heapLargest"] for _, r in reports[boot_start:] if "heapLargest" in r]
    depth = [r["outboxDepth"] for _, r in reports if "outboxDepth" in r]
    boots = _boots_within(reports, RESET_WINDOW_S)
    warnings = []
    if _runs(largest, -1, FALLING):
        warnings.append(
            {
                "kind": "heap",
                "text": "largest free block falling: %s B"
                % " > ".join(str(x) for x in largest[-FALLING:]),
            }
        )
    if _runs(depth, 1, GROWING):
        warnings.append(
            {
                "kind": "outbox",
                "text": "outbox growing: %s readings"
                % " < ".join(str(x) for x in depth[-GROWING:]),
            }
        )
    if boots >= RESETS:
        cause = latest.get("resetCause")
        warnings.append(
            {
                "kind": "resets",
                "text": "%d boots in 24 h%s" % (boots, " (last: %s)" % cause if cause else ""),
            }
        )
    return {
        "latest": latest,
        "at": reports[-1][0],
        "reports": len(reports),
        "history": {"heapLargest": largest[-10:], "outboxDepth": depth[-10:]},
        "warnings": warnings,
    }
