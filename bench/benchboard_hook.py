# --- bench hook: kpnthings_tools.bench appends this to a copy of boards/unix.py and compiles the
# result to benchboard.mpy, a board that behaves like "unix" and reports its heap. Bench only:
# never deployed. Lines it prints start with "@@" so they never mix with the firmware's own.
# Only names the firmware already interns (gc, os, sys, micropython, compat): the names this
# hook adds are bench overhead in the qstr count that a board does not have.
import gc
import os

_unix_read_sensors = read_sensors  # noqa: F821  (defined above, in boards/unix.py)
_reads = [0]


def _getenv(name):
    getenv = getattr(os, "getenv", None)
    return getenv(name) if getenv is not None else None


def read_sensors():
    # The device calls this first thing in each cycle: the 2nd call is the start of the 2nd
    # cycle, with the boot finished and one whole cycle (and its kept-alive socket) behind.
    _reads[0] += 1
    if _reads[0] == 2:
        gc.collect()
        print("@@AT_REST %d %d" % (gc.mem_alloc(), gc.mem_free()))
        import sys

        # The library modules the loop holds now, after one whole cycle (downlink included).
        names = [m for m in sys.modules if m.startswith("kpnthings")]
        print("@@MODULES " + " ".join(sorted(names)))
        # Every name a loaded .mpy uses is interned for good, in pools that double in size:
        # one name too many costs a whole new pool (4.6 KB at 618 names on the unix port).
        import micropython

        micropython.qstr_info()  # "qstr pool: n_pool=.., n_qstr=.., ..., n_total_bytes=.."
    return _unix_read_sensors()


if _getenv("KPN_BENCH_FAST_SLEEP"):
    # The idle wait between cycles shrinks to nothing (interval_s is at least 1 s), so draining
    # a backlog over many cycles takes seconds; what the cycles do is unchanged.
    try:
        from kpnthings import compat

        compat.sleep_ms = lambda ms: None
    except (ImportError, AttributeError):
        pass
