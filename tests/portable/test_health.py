"""Health records (docs/health.md, kpnthings.health): the whole set in the first pack after a
boot, the changing part every health_every cycles after that, none with 0; the boot count kept
on flash across boots and written once a boot; what each record says, and its unit."""

import binascii
import os
import sys

from _device_support import CONFIG, Result, make, values

from kpnthings.outbox import Outbox

WHOLE = ("uptime", "bootCount", "firmware", "outboxDepth", "droppedReadings", "deadLetters")
EVERY = ("uptime", "outboxDepth", "deadLetters")
ONCE = ("bootCount", "firmware", "droppedReadings", "resetCause")


def _tmpdir():
    path = "/tmp/kpn-health-%s" % binascii.hexlify(os.urandom(6)).decode()
    os.mkdir(path)
    return path


def _rmtree(path):
    for name in os.listdir(path):
        os.remove(path + "/" + name)
    os.rmdir(path)


def _device(where, every, *results):
    return make(*results, config=dict(CONFIG, health_every=every), outbox=Outbox(where))


def _heap_names():
    # gc.mem_free is MicroPython's: CPython (which runs these tests too) has no heap records
    import gc

    return ("heapFree", "heapLargest") if hasattr(gc, "mem_free") else ()


def test_first_pack_has_the_whole_set_then_the_changing_part_every_n_cycles():
    where = _tmpdir()
    try:
        dev, tr, _, _, _ = _device(where, 3)
        for _ in range(7):
            dev.cycle()
        assert len(tr.bodies) == 7
        got = [values(tr.pack(i)) for i in range(7)]
        for name in WHOLE + _heap_names():
            assert name in got[0], name
        assert got[0]["bootCount"] == 1
        assert got[0]["firmware"] == __import__("kpnthings").__version__
        assert got[0]["droppedReadings"] == 0
        for i in (3, 6):  # cycles 4 and 7: due again, without what changes only with a boot
            for name in EVERY + _heap_names():
                assert name in got[i], (i, name)
            for name in ONCE:
                assert name not in got[i], (i, name)
        for i in (1, 2, 4, 5):
            assert "uptime" not in got[i] and "outboxDepth" not in got[i], i
            assert got[i]["temperature"] == 21.5  # the readings go as ever
        assert "kpnthings.health" not in sys.modules  # unloaded after each set
    finally:
        _rmtree(where)


class _Watch(Outbox):
    """An outbox that notes, as each pack is written, whether kpnthings.health is loaded."""

    def queued(self):
        self.seen = getattr(self, "seen", []) + ["kpnthings.health" in sys.modules]
        return Outbox.queued(self)


def test_health_every_0_or_absent_sends_none_and_never_loads_the_module():
    for config in (dict(CONFIG, health_every=0), CONFIG, dict(CONFIG, health_every=None)):
        where = _tmpdir()
        try:
            sys.modules.pop("kpnthings.health", None)
            box = _Watch(where)
            dev, tr, _, _, _ = make(config=config, outbox=box)
            for _ in range(4):
                dev.cycle()
            for i in range(4):
                for name in WHOLE:
                    assert name not in values(tr.pack(i)), (config, name)
            assert box.seen and not any(box.seen)
            assert "kpnthings.health" not in sys.modules
        finally:
            _rmtree(where)


def test_boot_count_survives_boots_and_is_written_once_a_boot():
    where = _tmpdir()
    try:
        # Boot 1: its first uplink gets no answer, so the set goes again in the next one, with
        # the same boot number; and it says what went wrong.
        dev, tr, _, _, _ = _device(where, 2, Result(None, "retry", error="timed out"))
        dev.cycle()
        assert values(tr.pack(0))["bootCount"] == 1
        dev.retry_now()
        dev.cycle()
        assert values(tr.pack(1))["bootCount"] == 1
        assert values(tr.pack(1))["lastError"] == "retry"
        assert dev.health == 2  # accepted in cycle 2: due again in cycle 4
        dev.cycle()
        assert "uptime" not in values(tr.pack(2))
        dev.cycle()
        assert values(tr.pack(3))["lastError"] == "retry"  # the last error since the boot
        with open(where + "/boots") as f:
            assert f.read() == "1"
        for boot in (2, 3):  # new boots over the same flash
            dev, tr, _, _, _ = _device(where, 2)
            dev.cycle()
            got = values(tr.pack(0))
            assert got["bootCount"] == boot
            assert "lastError" not in got
        assert "boots.tmp" not in os.listdir(where)
    finally:
        _rmtree(where)


def test_a_set_that_fails_costs_the_set_not_the_uplink():
    where = _tmpdir()
    try:

        class Broken(Outbox):
            def _path(self, name):
                if name.startswith("boots"):
                    raise ValueError("no room for it")
                return Outbox._path(self, name)

        dev, tr, _, logs, _ = make(config=dict(CONFIG, health_every=1), outbox=Broken(where))
        dev.cycle()
        got = values(tr.pack(0))
        assert got["temperature"] == 21.5 and "uptime" not in got
        assert "[kpn] health records failed: ValueError: no room for it" in logs
        assert "kpnthings.health" not in sys.modules
    finally:
        _rmtree(where)


def test_without_an_outbox_the_set_has_no_outbox_records():
    dev, tr, _, _, _ = make(config=dict(CONFIG, health_every=2))
    for _ in range(3):
        dev.cycle()
    first = values(tr.pack(0))
    assert "uptime" in first and "firmware" in first
    for name in ("bootCount", "outboxDepth", "deadLetters", "droppedReadings"):
        assert name not in first
    assert "uptime" not in values(tr.pack(1))
    assert "uptime" in values(tr.pack(2)) and "firmware" not in values(tr.pack(2))


def test_units_and_kinds_of_each_record():
    where = _tmpdir()
    try:
        dev, tr, _, _, _ = _device(where, 5)
        dev.cycle()
        pack = tr.pack(0)
        units = dict((r["n"], r.get("u")) for r in pack if "n" in r)
        assert units["uptime"] == "s"
        for name in _heap_names():
            assert units[name] == "B"
        got = values(pack)
        for name in ("uptime", "bootCount", "outboxDepth", "deadLetters") + _heap_names():
            assert type(got[name]) is int and got[name] >= 0, name
        assert type(got["firmware"]) is str
        if _heap_names():  # found by halving: a block the heap really gives, within what is free
            assert 0 < got["heapLargest"] <= got["heapFree"]
    finally:
        _rmtree(where)


class _Dev:
    def __init__(self, interval_s=60):
        self.config = {"interval_s": interval_s}
        self.outbox = None
        self.board = None


def _records(dev, n, ticks):
    from kpnthings import compat, health, unload

    kept = compat.ticks_ms
    compat.ticks_ms = lambda: ticks
    try:
        return dict((r["n"], r.get("v", r.get("vs"))) for r in health.records(dev, n))
    finally:
        compat.ticks_ms = kept
        unload("health")


def test_uptime_is_put_back_together_across_wraps_of_ticks_ms():
    period = 1 << 30  # ms: ticks_ms's period on the boards
    assert _records(_Dev(), 10, 601000)["uptime"] == 601
    # 20 days of one-minute cycles: ticks_ms wrapped once (12.4 days), and says 7.6 days
    n = 20 * 24 * 60
    ticks = n * 60000 - period
    assert _records(_Dev(), n, ticks)["uptime"] == n * 60
    # cycles longer than interval_s (slow sends) leave the guess short, but within half a period
    assert _records(_Dev(), n - 2000, ticks + 5000)["uptime"] == (n * 60000 + 5000) // 1000


def test_reset_cause_by_name_from_machine():
    class Machine:
        cause = 3

        def reset_cause(self):
            return self.cause

    kept = sys.modules.get("machine")
    fake = sys.modules["machine"] = Machine()
    try:
        want = {1: "power-on", 2: "hard", 3: "watchdog", 4: "deepsleep", 5: "soft", 9: "9"}
        for cause in want:
            fake.cause = cause
            assert _records(_Dev(), 1, 1000)["resetCause"] == want[cause]
    finally:
        if kept is None:
            sys.modules.pop("machine")
        else:
            sys.modules["machine"] = kept


def test_a_backlog_carries_the_set_only_in_the_pack_with_the_newest_readings():
    where = _tmpdir()
    try:
        box = Outbox(where)
        box.extend([{"n": "r%d" % i, "v": i, "t": 1600000000 + i} for i in range(40)])
        dev, tr, _, logs, _ = make(config=dict(CONFIG, health_every=5, max_body=512), outbox=box)
        ends = []  # the index of each cycle's last pack
        for _ in range(3):
            dev.cycle()
            ends.append(len(tr.bodies) - 1)
        with_set = [i for i in range(len(tr.bodies)) if "uptime" in values(tr.pack(i))]
        # One pack carries it: the last of its cycle, beside that cycle's readings (a pack of
        # the backlog's oldest never does; one too full for it leaves it to the next cycle,
        # still due, as the actuators' states).
        assert len(with_set) == 1, (with_set, logs)
        assert with_set[0] in ends and with_set[0] > 0
        assert values(tr.pack(with_set[0]))["temperature"] == 21.5
        assert dev.health == ends.index(with_set[0]) + 1  # the cycle that sent it
        assert len(box) == 0
    finally:
        _rmtree(where)
