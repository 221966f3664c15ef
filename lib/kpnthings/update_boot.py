"""The version a board boots, picked by firmware/boot.py before anything else of kpnthings loads.

The installed library (lib/kpnthings) is the base; an update lives in a version folder, u/a or
u/b, each a whole kpnthings package. The marker u/boot says which one boots, as one line:

    GEN SLOT VERSION .                         trusted: SLOT (u/a, u/b; "-": the base) boots
    GEN SLOT VERSION TRIES K OLDSLOT OLDVER .  on trial: SLOT boots while TRIES < K, each boot
                                               counted before the new code runs; then OLDSLOT

It is written as u/boot.tmp, then renamed over u/boot, as the outbox writes its commit file:
the valid copy with the highest GEN wins, which also covers a FAT rename (target removed first).
A copy cut short lacks its final "." and is ignored. The K-th boot of a trial that never reached
KPN (kpnthings.update.trusted was not called) writes u/failed (the version, for the
`updateFailed` report) and a marker trusting OLDSLOT again. Nothing here trusts the new version.
"""

import os
import sys

# Paths as whole literals, and the slot in the marker as its folder ("u/a"): each string a
# module holds is an interned name for good, and this module loads at every boot.


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
    """Replace the marker with `fields` (GEN first, "." appended here), atomically."""
    with open("u/boot.tmp", "w") as f:
        f.write(" ".join(fields) + " .\n")
    os.rename("u/boot.tmp", "u/boot")


def run():
    """Count a trial boot, roll a spent trial back, and put the chosen folder first on
    sys.path. Returns the marker's fields after this boot's change (None: the base)."""
    w = read()
    if w is not None and len(w) == 8:
        tries = int(w[3]) + 1
        if tries > int(w[4]):  # K boots, no accepted uplink: back to the old version
            with open("u/failed", "w") as f:
                f.write(w[2])
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
