"""Test-only board "crashtest": the real firmware (kpnthings.app, Device, Outbox, Client) on the
unix port, with readings a test can account for one by one. Never shipped to a board.

Each reading is ("seq", n, None) with n unique and increasing across restarts: the next n is
kept in a small state file, renamed into place before read_sensors returns, so a SIGKILL never
hands out a number twice. A number handed out whose process then died before Outbox.append
returned was never appended; the test finds those by the lines below.

What the board changes, and why (all of it set up at import, before wiring builds the Device):
- Outbox.extend (the device stores a cycle's readings with one call) is wrapped to print
  "A <n>" for each reading it stored, after the real call returned: a printed reading is on
  "flash", exactly as in the outbox driver's crash test.
- kpnthings.compat.sleep_ms sleeps KPN_CRASHTEST_MS_PER_S real ms per configured second
  (config's interval_s is at least 1 s): the idle wait between cycles shrinks, nothing else does
  (backoff waits are measured in ticks and stay real). KPN_CRASHTEST_GAPS_MS ("500,6000"),
  if set, replaces it: each sleep call sleeps the next of these ms in turn, whatever it was
  asked; with interval_s 1 that is one idle wait between two cycles each.
- With KPN_CRASHTEST_T0 set, Device.read dates reading n at T0 + n seconds instead of the
  clock's second: a real sensor is read once a cycle, and cycles are at least a second apart,
  so name and time identify a reading (how KPN and the emulator tell a duplicate); here many
  cycles run in one second, and the emulator would take readings of one second for duplicates.
- With KPN_CRASHTEST_MAX_IDLE_MS set, every kpnthings.http_client.Connection reuses a kept-alive
  connection idle up to that many ms (1000000000: the idle rule off; the device's own default
  is http_client.MAX_IDLE_MS), for the test that measures what the rule is worth.

Lines on stdout, one print each (a SIGKILL may cut only the last one):
  R <first> <count>          numbers first..first+count-1 handed out (state file already updated)
  A <n>                      reading n appended
  H <cycle> <mem_alloc> <mem_free> <sockets> <queued>   heap after gc.collect(), every
                             KPN_CRASHTEST_HEAP_EVERY cycles, with the state it depends on: the
                             sockets the process holds open (from /proc/self/fd; -1 where there
                             is none: a kept-alive TLS connection holds its mbedTLS buffers in the
                             heap on a Pico W) and the readings queued in the outbox (-1 before
                             the first append); with KPN_CRASHTEST_MEM_INFO set, followed by
                             micropython.mem_info()'s lines, whose "max free sz" (in 16-byte
                             blocks on a 32-bit port) is the largest hole a TLS buffer could take

Environment: KPN_CRASHTEST_STATE (state file; unset: count from 0 in RAM),
KPN_CRASHTEST_PER_CYCLE (readings per cycle, default 1), KPN_CRASHTEST_HEAP_EVERY (0: never),
KPN_CRASHTEST_MS_PER_S (default 1), KPN_CRASHTEST_GAPS_MS, KPN_CRASHTEST_MEM_INFO (set:
mem_info() after each H line), KPN_CRASHTEST_T0 and KPN_CRASHTEST_MAX_IDLE_MS (unset: the
firmware's own).
"""

import gc
import os

PINS = set(range(0, 40)) | {"LED"}
OUTPUT_PINS = PINS
ACTUATORS = {}
HAS_WIFI = False
CLOCK_TRUSTED = True


def _env(name):
    getenv = getattr(os, "getenv", None)
    return getenv(name) if getenv is not None else None


def _env_int(name, default):
    v = _env(name)
    return int(v) if v else default


_STATE = _env("KPN_CRASHTEST_STATE")
_PER_CYCLE = _env_int("KPN_CRASHTEST_PER_CYCLE", 1)
_HEAP_EVERY = _env_int("KPN_CRASHTEST_HEAP_EVERY", 0)
_MS_PER_S = _env_int("KPN_CRASHTEST_MS_PER_S", 1)
_GAPS_MS = [int(x) for x in (_env("KPN_CRASHTEST_GAPS_MS") or "").split(",") if x]
_MEM_INFO = _env_int("KPN_CRASHTEST_MEM_INFO", 0)
_T0 = _env_int("KPN_CRASHTEST_T0", 0)
_MAX_IDLE_MS = _env_int("KPN_CRASHTEST_MAX_IDLE_MS", 0)
_counter = [0, 0, 0]  # next number, cycles, sleep calls
_outbox = [None]  # the device's Outbox, once it appended


def _load():
    if _STATE is None:
        return 0
    try:
        with open(_STATE) as f:
            return int(f.read())
    except OSError:  # first boot of a test run
        return 0


def _save(n):
    # Written whole to a temporary file and renamed: a kill leaves the old or the new number.
    tmp = _STATE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(n))
    os.rename(tmp, _STATE)


def _open_sockets():
    # A socket the device holds (kept alive, or not yet collected) is an open descriptor.
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return -1
    n = 0
    for name in names:
        try:
            if os.stat("/proc/self/fd/" + name)[0] & 0o170000 == 0o140000:  # S_IFSOCK
                n += 1
        except OSError:  # the descriptor listdir itself had open
            pass
    return n


def read_sensors():
    n = _counter[0]
    _counter[0] = n + _PER_CYCLE
    _counter[1] += 1
    if _STATE is not None:
        _save(n + _PER_CYCLE)
    print("R %d %d" % (n, _PER_CYCLE))
    if _HEAP_EVERY and _counter[1] % _HEAP_EVERY == 0:
        gc.collect()  # first, so that a dropped socket's finaliser has closed it
        sockets = _open_sockets()
        queued = -1 if _outbox[0] is None else len(_outbox[0])
        gc.collect()  # and again, for what counting allocated
        print("H %d %d %d %d %d" % (_counter[1], gc.mem_alloc(), gc.mem_free(), sockets, queued))
        if _MEM_INFO:
            import micropython

            micropython.mem_info()
    return [("seq", n + i, None) for i in range(_PER_CYCLE)]


def _install():
    from kpnthings import compat
    from kpnthings.outbox import Outbox

    real_extend = Outbox.extend
    real_sleep = compat.sleep_ms

    def extend(self, records):
        refused = real_extend(self, records)
        _outbox[0] = self
        for record in records:
            if record.get("n") == "seq" and not [r for r, _ in refused if r is record]:
                print("A %d" % record["v"])
        return refused

    def sleep_ms(ms):
        if _GAPS_MS:
            ms = _GAPS_MS[_counter[2] % len(_GAPS_MS)]
            _counter[2] += 1
        else:
            ms = ms * _MS_PER_S // 1000
        if ms > 0:
            real_sleep(ms)

    Outbox.extend = extend
    compat.sleep_ms = sleep_ms
    if _T0:
        from kpnthings.device import Device

        real_read = Device.read

        def read(self):
            out = real_read(self)
            for record in out:
                if record.get("n") == "seq":
                    record["t"] = _T0 + record["v"]
            return out

        Device.read = read
    if _MAX_IDLE_MS:
        # The board is imported before the uplink makes its client, and http_client stays
        # loaded while the device does not rest (interval_s below idle_close_s).
        from kpnthings import http_client

        real_init = http_client.Connection.__init__

        def init(self, *args, **kw):
            kw["max_idle_ms"] = _MAX_IDLE_MS
            real_init(self, *args, **kw)

        http_client.Connection.__init__ = init


_counter[0] = _load()
_install()
