"""Signed updates at boot (config "update", docs/updates.md): report a rolled-back version, hold
a version on trial until KPN accepts an uplink, and ask the update host for an offer.

kpnthings.wiring loads this at boot for a config with "update" only, and unloads it; the
download, the checks and the switch (kpnthings.update_apply, kpnthings.update_verify) load only
when an offer names a newer version. kpnthings.flush calls trusted() after the first accepted
uplink of a version on trial (Device.update holds its version until then).
"""

import os

from kpnthings import __version__, update_boot


def version_key(text):
    """(major, minor, patch) of "1.2.0"; ValueError for anything else."""
    parts = text.split(".")
    if len(parts) != 3:
        raise ValueError("version %r: not MAJOR.MINOR.PATCH" % text[:20])
    return tuple(int(x) for x in parts)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _report(dev, name, version, log):
    # An outbox record survives resets until KPN accepts it; without an outbox, the log only.
    log("[update] %s %s" % (name, version))
    if dev.outbox is not None:
        dev._store([{"n": name, "vs": version}])


def run(dev, cadata, base, log):
    """At boot: the report of a rollback, the trial's hold, else one poll of config
    update.url (?v=the running version). An offer of a newer version is applied at once by
    kpnthings.update_apply, which resets the board; any failure leaves everything as it was."""
    bad = _read("u/failed")
    if bad:
        _report(dev, "updateFailed", bad, log)
        # kept as u/bad: the version is never taken again, however often it is offered
        os.rename("u/failed", "u/bad")
    else:
        bad = _read("u/bad")
    w = update_boot.read()
    if w is not None and len(w) == 8:
        dev.update = w[2]
        log(
            "[update] %s on trial, boot %s of %s: trusted after KPN accepts an uplink"
            % tuple(w[2:5])
        )
        return
    cfg = dev.config
    want = cfg["update"]
    try:
        offer = _poll(cfg, want, cadata)
    except (OSError, ValueError) as e:  # the update host is down or answers nonsense: no update
        log("[update] no offer: %s" % e)
        return
    if offer is None:
        return
    version, url = offer
    if version == bad:
        log("[update] %s refused: it failed here before" % version)
        return
    if version_key(version) <= version_key(__version__):
        log("[update] %s refused: not newer than %s" % (version, __version__))
        return
    from kpnthings import unload, update_apply

    try:
        update_apply.apply(dev, version, url, cadata, base, w, log)
    except (OSError, ValueError) as e:
        log("[update] %s refused, nothing changed: %s" % (version, e))
    finally:
        unload("update_apply", "update_verify")


def _poll(cfg, want, cadata):
    """(version, release url) the update host offers, or None (204: nothing offered)."""
    import json

    from kpnthings import dial
    from kpnthings.http_client import Connection

    tls, host, port, path = dial.split_url(want["url"])
    ctx = dial.make_tls_context(cadata, cfg["tls_insecure"]) if tls else None
    conn = Connection(host, port, ctx, timeout_ms=cfg["timeout_s"] * 1000, write_buffer=0)
    try:
        got = conn.request("GET", (path or "/") + "?v=" + __version__)
    finally:
        conn.close()
    if got.status == 204:
        return None
    if got.status != 200:
        raise ValueError("update host answered %d" % got.status)
    offer = json.loads(got.body)
    version = offer["version"]
    version_key(version)
    return version, offer["url"]


def trusted(dev):
    """After KPN accepted an uplink of a version on trial: trust it (the marker loses its trial
    fields) and report it as `updated`."""
    version = dev.update
    dev.update = None
    w = update_boot.read()
    if w is not None and len(w) == 8 and w[2] == version:
        update_boot.write([str(int(w[0]) + 1), w[1], w[2]])
        _report(dev, "updated", version, dev._info)
