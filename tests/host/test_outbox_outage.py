"""Outage test: for many cycles the server refuses connections, then answers 503, then hangs;
between and after, it recovers. The outbox loop runs on the MicroPython unix port throughout.

Every reading must arrive, in time order, exactly once (no crash here, so no duplicates: the
emulator, which tells one by name and time, must count none either), and
the backoff must show in the timing: within each failure run the device's chosen delays double
(with jitter) and the time it actually stayed idle between two tries is at least that delay.
"""

import subprocess
import threading
import time

from _outbox_support import (
    SECRET,
    SEQ_NAME,
    UUID,
    Delivered,
    FrontServer,
    driver_cmd,
    duplicate_figure,
    mp_env,
    new_emulator,
    parse_events,
)

T0 = 1760000000
BASE_MS = 50
CAP_MS = 800
INTERVAL_MS = 50
READINGS = 300  # 15 s of readings at one per 50 ms cycle: the outages happen while appending
# Long enough for at least five tries each (a hanging try also costs the 300 ms deadline).
PHASES = [("ok", 1.0), ("refuse", 3.0), ("ok", 1.0), ("503", 3.0), ("ok", 1.0), ("hang", 4.0)]


def _failure_runs(events):
    """Consecutive failed sends, each as a list of (start, end, status, W delay)."""
    runs, run = [], []
    pending = None
    for e in events:
        if e[0] == "S":
            if e[5] == "accepted":
                if run:
                    runs.append(run)
                run = []
                pending = None
            else:
                pending = [int(e[1]), int(e[2]), e[4], None]
                run.append(pending)
        elif e[0] == "W" and pending is not None:
            pending[3] = int(e[2])
    if run:
        runs.append(run)
    return runs


def test_outages_deliver_everything_in_order_with_visible_backoff(tmp_path, record_property):
    emulator = new_emulator()
    with FrontServer(emulator) as front:
        cfg = {
            "dir": str(tmp_path / "outbox"),
            "url": front.url,
            "uuid": UUID,
            "secret": SECRET,
            "readings": READINGS,
            "interval_ms": INTERVAL_MS,
            "base_ms": BASE_MS,
            "cap_ms": CAP_MS,
            "timeout_s": 0.3,  # the client's deadline: a hanging server costs 300 ms a try
            "max_body": 600,
        }
        proc = subprocess.Popen(
            driver_cmd(cfg), env=mp_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out = {}

        def collect():
            out["o"], out["e"] = proc.communicate()

        reader = threading.Thread(target=collect)
        reader.start()
        try:
            for mode, seconds in PHASES:
                front.set_mode(mode)
                time.sleep(seconds)
            front.set_mode("ok")
            reader.join(90)
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(10)
        assert proc.returncode == 0, out.get("e", b"").decode()[-3000:]
        events = parse_events(out["o"].decode())

    # Every reading arrived exactly once, in time order.
    got = [(r["v"], r["t"]) for r in front.accepted if r["n"] == SEQ_NAME]
    assert [v for v, _ in got] == list(range(READINGS))
    assert [t for _, t in got] == [T0 + i for i in range(READINGS)]
    assert events[-1] == ["D", "0", "0", "0"]
    stored = Delivered(emulator)
    assert sorted(stored.seqs()) == list(range(READINGS))
    assert stored.duplicates == 0
    duplicate_figure("outbox outage test", stored.duplicates, READINGS, record_property)

    runs = [r for r in _failure_runs(events) if len(r) >= 5]
    statuses = [set(f[2] for f in r) for r in runs]
    # refused, 503 and hang each made a run of failures (refused and hang have no status)
    assert any("503" in s for s in statuses), statuses
    assert sum(1 for s in statuses if s == {"None"}) >= 2, statuses
    for run in runs:
        delays = [f[3] for f in run]
        assert None not in delays
        # The chosen delays: equal jitter around a doubling ceiling, from the base to the cap.
        for k, d in enumerate(delays):
            ceiling = min(CAP_MS, BASE_MS * 2**k)
            assert ceiling - ceiling // 2 <= d <= ceiling, (k, delays)
        # The timing: the device really stayed idle at least that long between two tries.
        idle = [run[k + 1][0] - run[k][1] for k in range(len(run) - 1)]
        for k, gap in enumerate(idle):
            assert gap >= delays[k] - 2, (k, idle, delays)  # 2 ms: tick rounding
        # The growth is visible: from the 4th try on the device waits at least 4 x base_ms,
        # at least 4 times its first delay (at most base_ms); 3 times leaves room for ticks.
        assert idle[-1] >= 3 * delays[0], (idle, delays)
    # Readings kept being taken (and queued) during the outages.
    starts = [f[0] for r in runs for f in r]
    assert len(starts) >= 12
