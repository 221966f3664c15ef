"""Signed updates on the board, at boot (config "update", docs/updates.md).

firmware/boot_update.py (deployed as boot.py with config "update") calls run() before anything
else of kpnthings loads: it picks the version to boot. The installed library (lib/kpnthings) is
the base; an update lives in a version folder, u/a or u/b, each a whole kpnthings package. The
marker u/boot says which one boots, as one line:

    GEN SLOT VERSION .                         trusted: SLOT (u/a, u/b; "-": the base) boots
    GEN SLOT VERSION TRIES K OLDSLOT OLDVER .  on trial: SLOT boots while TRIES < K, each boot
                                               counted before the new code runs; then OLDSLOT

It is written as u/boot.tmp, then renamed over u/boot, as the outbox writes its commit file:
the valid copy with the highest GEN wins, which also covers a FAT rename (target removed first).
A copy cut short lacks its final "." and is ignored. The K-th boot of a trial that never reached
KPN writes the version to u/bad with a "!" (to report) and a marker trusting OLDSLOT again.

kpnthings.wiring calls boot() once the Device exists: the rollback reported (`updateFailed`),
a version on trial held (Device.update) until kpnthings.flush calls ack() at the first accepted
uplink, or the update host polled. Only an offer of a newer version loads kpnthings.update_apply
(download, checks, switch) and kpnthings.update_verify. Each caller unloads this module after.
Paths are whole literals and the names few: every short string and name here is interned for
good on a board, at every boot.
"""

import os
import sys

from kpnthings import __version__


def read():
    """The marker's fields (a list of str), newest valid copy; None when there is none."""
    best = None
    for name in ("u/boot", "u/boot.tmp"):
        try:
            with open(name) as f:
                w = f.read().split()
            if len(w) in (4, 8) and w[-1] == "." and (best is None or int(w[0]) > int(best[0])):
                best = w
        except (OSError, ValueError):
            pass  # missing, or cut short by a power cut: the other copy counts
    return best


def write(fields):
    """Replace the marker with `fields` (GEN first; the final "." added here), atomically."""
    with open("u/boot.tmp", "w") as f:
        f.write(" ".join(fields + ["."]) + "\n")
    os.rename("u/boot.tmp", "u/boot")


def run():
    """At boot.py: count a trial boot, roll a spent trial back, and put the chosen folder first
    on sys.path. Returns the marker's fields after this boot's change (None: the base)."""
    w = read()
    if w is not None and len(w) == 8:
        tries = int(w[3]) + 1
        if tries > int(w[4]):  # K boots, no accepted uplink: back to the old version
            with open("u/bad", "w") as f:
                f.write(w[2] + " !")  # "!": not reported yet (boot() reports it)
            w = [str(int(w[0]) + 1), w[5], w[6], "."]
        else:
            w = [str(int(w[0]) + 1), w[1], w[2], str(tries)] + w[4:7] + ["."]
        write(w[:-1])
    if w is not None and w[1] != "-":
        sys.path.insert(0, w[1])
    # This module and its package came from the base: they go, so that main.py imports the
    # chosen folder's afresh, and so that none of this stays in the heap.
    for name in list(sys.modules):
        if name == "kpnthings" or name.startswith("kpnthings."):
            del sys.modules[name]
    return w


def _newer(offered):
    # "1.10.0" > "1.9.2": compared as whole numbers; ValueError for anything else
    a = [int(x) for x in offered.split(".")]
    b = [int(x) for x in __version__.split(".")]
    if len(a) != 3:
        raise ValueError("version %s is not MAJOR.MINOR.PATCH" % offered[:20])
    return a > b


def boot(dev, cadata, base, log):
    """From kpnthings.wiring, once the Device exists: the report of a rollback, the trial's
    hold, else one poll of config update.url (?v=the running version). An offer of a newer
    version is applied at once by kpnthings.update_apply, which resets the board; any failure
    leaves everything as it was."""
    try:
        with open("u/bad") as f:
            bad = f.read().split()
    except OSError:
        bad = [None]
    if len(bad) > 1:  # rolled back at this boot: reported through the outbox, kept refused
        log("[update] updateFailed %s: rolled back to %s" % (bad[0], __version__))
        if dev.outbox is not None:
            dev._store([{"n": "updateFailed", "vs": bad[0]}])
        with open("u/bad", "w") as f:
            f.write(bad[0])
    w = read()
    if w is not None and len(w) == 8:
        dev.update = w[2]
        log(
            "[update] %s on trial, boot %s of %s: trusted once KPN accepts an uplink"
            % tuple(w[2:5])
        )
        return
    cfg = dev.config
    import json

    from kpnthings import dial
    from kpnthings.http_client import Connection

    try:
        tls, host, port, path = dial.split_url(cfg["update"]["url"])
        ctx = dial.make_tls_context(cadata, cfg["tls_insecure"]) if tls else None
        conn = Connection(host, port, ctx, timeout_ms=cfg["timeout_s"] * 1000, write_buffer=0)
        try:
            got = conn.request("GET", "%s?v=%s" % (path or "/", __version__))
        finally:
            conn.close()
        if got.status == 204:
            return
        if got.status != 200:
            raise ValueError("update host answered %d" % got.status)
        offer = json.loads(got.body)
        version = offer["version"]
        if version == bad[0]:
            log("[update] %s refused: it failed here before" % version)
            return
        if not _newer(version):
            log("[update] %s refused: not newer than %s" % (version, __version__))
            return
    except (OSError, ValueError, KeyError, TypeError) as e:  # down, or answers nonsense
        log("[update] no offer: %s" % e)
        return
    from kpnthings import unload, update_apply

    try:
        update_apply.apply(dev, version, offer["url"], cadata, base, w, log)
    except (OSError, ValueError, KeyError, TypeError) as e:
        log("[update] %s refused, nothing changed: %s" % (version, e))
    finally:
        unload("update_apply", "update_verify")


def ack(dev):
    """From kpnthings.flush, after KPN accepted an uplink of a version on trial: trust it (the
    marker loses its trial fields) and report it as `updateApplied`."""
    version = dev.update
    dev.update = None
    w = read()
    if w is not None and len(w) == 8 and w[2] == version:
        write([str(int(w[0]) + 1), w[1], w[2]])
        dev._info("[update] %s trusted: KPN accepted its uplink" % version)
        if dev.outbox is not None:
            dev._store([{"n": "updateApplied", "vs": version}])
