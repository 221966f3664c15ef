"""Outage test of the firmware itself: firmware/main.py (kpnthings.app, the Device loop with the
real Outbox, Client, batch and backoff) from the ESP32 .mpy files on the MicroPython unix port,
against the emulator behind a front end that, for many cycles each, refuses connections (its
listening socket is closed), answers 503, and hangs past the client's timeout_s; after each
outage it recovers, and the run ends with the server healthy.

Every reading appended (the test-only "crashtest" board prints "A n" once Outbox.extend
stored it) must reach the emulator at least once (here exactly once: no crash, and no reply is
cut) and, de-duplicated, in time order; at the end nothing may be left queued. Reading n is
dated T0 + n, so the emulator's duplicate count (same name and time) must equal the readings
delivered twice; the figure per 1000 readings is reported. The backoff must
show in the timing: within each outage the device's announced waits ("next try in S s") grow
from retry_base_s towards retry_cap_s, and the time between two tries is at least the wait
chosen in between (lower bounds only: equal jitter puts the n-th wait in [c/2, c],
c = min(cap, base * 2**n); see kpnthings.backoff).

Phases are driven by what the device does, not by the clock: an outage lasts until the device
has failed ATTEMPTS times in that way and MIN_CYCLES cycles have passed, and the server stays
healthy until the backlog has drained; an outage starts between two requests, so that no reply
is cut (which would be a fourth kind of failure, and allow duplicates). The board shrinks the
idle wait between cycles to MS_PER_S ms per configured second (about ten cycles a second);
backoff waits stay real.

Times of the tries: the device's log lines, stamped by this test as they arrive on the pipe (a
line "-> <status> retry" is printed after its try ended and before the wait is set, so two such
stamps are at least the wait apart), and, for 503 and hang, the front server's own log of the
requests it received. A refused connect never reaches a server process, so it has only the first.
"""

import itertools
import os
import re
import subprocess
import threading
import time

from _firmware_support import ROOT, appended, env_for, firmware_cmd
from _firmware_support import write_config as write_cfg
from _outbox_support import (
    SEQ_NAME,
    Delivered,
    FrontServer,
    duplicate_figure,
    new_emulator,
    queued_seqs,
)

RUNTIME = "mpy-xtensawin"
T0 = 1700000000  # reading n is dated T0 + n: one name and time per reading
MS_PER_S = 100  # real ms of idle wait per configured second: interval_s 1 -> ~10 cycles a second
TIMEOUT_S = 1
BASE_S = 1
CAP_S = 4
ATTEMPTS = 5  # failed tries per outage: waits with ceilings 1, 2, 4, 4 s (the cap), then recovery
MIN_CYCLES = 30  # and at least this many cycles per outage
# Three outages of at most ~11 s of waits each (plus 5 s of timeouts for the hang) and up to a
# cap's wait to recover take at most ~50 s, ~500 cycles (typically ~40 s); the rest is healthy.
CYCLES = 600
# Each stamp is taken by a thread of this process, which may run a little late: a late first
# stamp shortens a measured gap. Lower bounds are checked less this much.
STAMP_SLACK_MS = 30
RUN_LIMIT_S = 300  # only so that a hung firmware cannot hang the test suite
# (mode set on the front server, what the device's log line says about such a failed try)
OUTAGES = (("refuse", "refused"), ("503", "HTTP 503"), ("hang", "timed out"))

SEND = re.compile(
    r"^\[kpn\] uplink (\d+): (\d+) readings \+ \d+ states, \d+ bytes"
    r" -> (\d+|no answer) (\w+)(?: \((.*)\))?$"
)
HELD = re.compile(
    r"^\[kpn\] uplink (\d+): backing off after retry, next try in (\d+) s; (\d+) readings queued$"
)


class StampedLines:
    """The firmware's stdout, read as it comes; each complete line with the monotonic time (s)
    at which it arrived."""

    def __init__(self, stream):
        self.lines = []  # (t, text); list.append is atomic, readers take a snapshot by length
        self._stream = stream
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        fd = self._stream.fileno()
        buf = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            now = time.monotonic()
            buf += chunk
            *done, buf = buf.split(b"\n")
            for raw in done:
                self.lines.append((now, raw.decode(errors="replace")))

    def join(self, timeout):
        self._thread.join(timeout)

    def texts(self, start=0):
        return [x for _, x in self.lines[start:]]


class RequestLog:
    """FrontServer's script: answers in the front's current mode and notes (time, mode) of every
    request it received (refused connects never get here)."""

    def __init__(self):
        self.front: FrontServer | None = None  # set once the front exists
        self.entries = []

    def __call__(self, n):
        assert self.front is not None
        mode = self.front.mode  # called under the front's lock, after the request was read
        self.entries.append((time.monotonic(), mode))
        return mode


def _ceiling_ms(k):
    return min(CAP_S * 1000, BASE_S * 1000 * 2**k)


def _parse(stamped):
    """Tries and waits from the stamped lines: (tries, runs).

    tries: dicts t, cycle, readings, status, outcome, error, held (the backing-off lines after
    it: (t, S, queued)). runs: the failed tries between two accepted ones, each a list of
    (try, next try), where the next try is the following one (failed, or the recovering one).
    """
    tries = []
    for t, text in stamped:
        m = SEND.match(text)
        if m:
            tries.append(
                {
                    "t": t,
                    "cycle": int(m.group(1)),
                    "readings": int(m.group(2)),
                    "status": m.group(3),
                    "outcome": m.group(4),
                    "error": m.group(5) or "",
                    "held": [],
                }
            )
            continue
        m = HELD.match(text)
        if m:
            assert tries and tries[-1]["outcome"] == "retry", text
            tries[-1]["held"].append((t, int(m.group(2)), int(m.group(3))))
    runs, run = [], []
    for i, x in enumerate(tries):
        if x["outcome"] == "accepted":
            if run:
                runs.append(run)
            run = []
        else:
            assert x["outcome"] == "retry", x
            run.append((x, tries[i + 1] if i + 1 < len(tries) else None))
    assert not run, "the run ended inside an outage"
    return tries, runs


def _drive(front, proc, out, got, phases, raced):
    """Switch the front server through the outages, each until the device has shown it enough,
    then healthy until the backlog has drained. Appends (mode, start, healthy again, drained,
    first line index) to `phases`, and to `raced` whether a switch came too late to be sure
    that no request was in flight."""
    started = time.monotonic()

    def wait(what, done):
        while True:
            result = done()
            if result:
                return result
            if proc.poll() is not None:
                tail = "\n".join(out.texts()[-5:])
                raise AssertionError(
                    "the firmware ended (exit %s; %d cycles configured) while waiting for %s:\n%s"
                    % (proc.returncode, CYCLES, what, tail)
                )
            assert time.monotonic() - started < RUN_LIMIT_S, "still waiting for " + what
            time.sleep(0.02)

    def drained():
        want = set(appended(out.texts()))
        return bool(want) and want <= set(got.seqs())

    def idle():
        # The device's last line is an accepted reply that emptied its queue (it has acked as
        # many readings as it appended): it now sleeps until its next cycle, with no request
        # in flight whose reply a switch would cut. (Cutting one on a kept-alive connection is
        # invisible in the log: the client resends on a new connection, KPN stores it twice.)
        texts = out.texts()
        if not texts or not texts[-1].endswith("-> 200 accepted"):
            return 0
        acked = sum(
            int(m.group(2)) for m in map(SEND.match, texts) if m and m.group(4) == "accepted"
        )
        return len(texts) if acked == len(appended(texts)) else 0

    wait("the first accepted readings", drained)
    for mode, says in OUTAGES:
        seen = wait("a moment between two requests", idle)
        t_start = time.monotonic()
        front.set_mode(mode)
        first = len(out.lines)
        # Only if this test was too slow to switch before the next cycle's send (one reading).
        raced.append(first != seen)

        def shown(first=first, says=says):
            texts = out.texts(first)
            failed = sum(1 for x in texts if " retry (" in x and says in x)
            cycles = sum(1 for x in texts if x.startswith("R "))
            return failed >= ATTEMPTS and cycles >= MIN_CYCLES

        wait("%d tries failing with %r" % (ATTEMPTS, says), shown)
        t_ok = time.monotonic()
        front.set_mode("ok")
        wait("the backlog to drain after %s" % mode, drained)
        phases.append((mode, t_start, t_ok, time.monotonic(), first))


def test_firmware_outages_deliver_everything_in_order_with_visible_backoff(
    tmp_path, mp_env, mpy_built, capsys, record_property
):
    emulator = new_emulator()
    log = RequestLog()
    front = FrontServer(emulator, script=log)
    log.front = front
    config = write_cfg(
        tmp_path / "config.json",
        front.url,
        outbox_dir=str(tmp_path / "outbox"),
        cycles=CYCLES,
        timeout_s=TIMEOUT_S,
        retry_base_s=BASE_S,
        retry_cap_s=CAP_S,
    )
    env = env_for(mp_env, RUNTIME, config, ms_per_s=MS_PER_S, t0=T0)
    got = Delivered(emulator)
    phases, raced = [], []
    started = time.monotonic()
    with front, open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen(
            firmware_cmd(), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err
        )
        out = StampedLines(proc.stdout)
        try:
            _drive(front, proc, out, got, phases, raced)
            proc.wait(RUN_LIMIT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            out.join(10)
            if proc.stdout is not None:
                proc.stdout.close()
        elapsed = time.monotonic() - started
        seqs = got.seqs()
    texts = out.texts()
    text = "\n".join(texts) + (tmp_path / "err.txt").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "[boot] done after %d cycles" % CYCLES in texts, text[-3000:]
    failures = [x for x in texts if x.startswith("[kpn] cycle ") or " failed" in x]
    assert not failures, failures[:3]

    # Every reading handed out was appended (no crash here), and reached KPN.
    everything = list(range(sum(int(x.split()[2]) for x in texts if x.startswith("R "))))
    assert sorted(appended(texts)) == everything
    assert set(seqs) == set(everything), sorted(set(everything) - set(seqs))[:20]
    # In time order: across the deliveries, de-duplicated, the sequence numbers rise and the
    # resolved record times never go back.
    first_seen, times = [], []
    seen = set()
    for name, value, t in got.records:
        if name == SEQ_NAME and int(value) not in seen:
            seen.add(int(value))
            first_seen.append(int(value))
            times.append(t)
    assert first_seen == everything
    assert all(a <= b for a, b in itertools.pairwise(times))
    duplicates = len(seqs) - len(set(seqs))
    tries, runs = _parse(out.lines)
    # No crash here, so a duplicate needs a reply lost after KPN stored the pack: a try that
    # failed in a way this test did not order, or a switch too late to be sure no request was
    # in flight (its pack: the one reading of the cycle after an emptied queue).
    ordered = tuple(says for _, says in OUTAGES)
    cut = [
        x for x in tries if x["outcome"] == "retry" and not any(s in x["error"] for s in ordered)
    ]
    assert duplicates <= sum(x["readings"] for x in cut) + sum(raced), (duplicates, cut, raced)
    assert got.duplicates == duplicates, (got.duplicates, duplicates)
    # Nothing is left queued, nothing was dropped or dead-lettered.
    queued, box = queued_seqs(tmp_path / "outbox")
    assert queued == [] and box.dropped == 0 and box.dead_count == 0

    assert len(runs) == len(OUTAGES), [[x["error"] or x["status"] for x, _ in r] for r in runs]
    assert len(phases) == len(OUTAGES)
    figures = []
    for (mode, says), run, phase in zip(OUTAGES, runs, phases, strict=True):
        kinds = [x["error"] for x, _ in run]
        assert sum(1 for e in kinds if says in e) >= ATTEMPTS, (mode, kinds)
        announced, gaps, bounds = [], [], []
        for k, (x, nxt) in enumerate(run):
            ceiling = _ceiling_ms(k)
            assert nxt is not None and x["held"], (mode, k)  # cycles went on inside the wait
            t_try = x["t"]
            first_s = x["held"][0][1]
            # The announced wait counts down, never above this try's ceiling: the cap holds.
            held_s = [s for _, s, _ in x["held"]]
            assert held_s == sorted(held_s, reverse=True), (mode, k, held_s)
            assert first_s * 1000 <= ceiling, (mode, k, first_s, ceiling)
            # ... and agrees with the jittered lower bound: announced x ms after the try, the
            # remaining S s (rounded up) plus x is at least c/2.
            since_ms = 1000 * (x["held"][0][0] - t_try)
            assert first_s * 1000 + since_ms + STAMP_SLACK_MS >= ceiling // 2, (mode, k, first_s)
            # The next try came no sooner than the chosen wait: at least c/2 after this try,
            # and at least (S - 1) s after every "next try in S s" (S s rounded up).
            gap_ms = 1000 * (nxt["t"] - t_try)
            assert gap_ms + STAMP_SLACK_MS >= ceiling // 2, (mode, k, gap_ms, ceiling)
            for t_held, s, _ in x["held"]:
                assert 1000 * (nxt["t"] - t_held) + STAMP_SLACK_MS >= (s - 1) * 1000, (mode, k)
            announced.append(first_s)
            gaps.append(round(gap_ms))
            bounds.append(ceiling // 2)
        # The growth is visible in the log: the first wait is announced as 1 s (it is at most
        # base), later ones at their doubled, jittered, capped size: 2 s or more.
        assert announced[0] == 1 and max(announced[2:]) >= 2, (mode, announced)
        # The readings of the outage's cycles stayed queued meanwhile.
        queued_most = max(q for x, _ in run for _, _, q in x["held"])
        assert queued_most >= MIN_CYCLES - 1, (mode, queued_most)
        # The server's own log: requests received in this mode, one per try of that kind, at
        # least the same waits apart (a hanging one also holds the client for its timeout).
        server = [t for t, m in log.entries if m == mode]
        server_gaps, server_bounds = [], []
        if mode != "refuse":
            ks = [k for k, (x, _) in enumerate(run) if says in x["error"]]
            assert len(server) == len(ks), (mode, len(server), ks)
            extra = TIMEOUT_S * 1000 if mode == "hang" else 0
            for (k, t1), (_, t2) in itertools.pairwise(zip(ks, server, strict=True)):
                gap_ms = 1000 * (t2 - t1)
                assert gap_ms + STAMP_SLACK_MS >= _ceiling_ms(k) // 2 + extra, (mode, k, gap_ms)
                server_gaps.append(round(gap_ms))
                server_bounds.append(_ceiling_ms(k) // 2 + extra)
        cycles = sum(1 for t, x in out.lines if x.startswith("R ") and phase[1] <= t <= phase[3])
        figures.append(
            "  %-6s %5.1f s outage + %4.1f s to recover, ~%d cycles, %d tries (%s),"
            " queued up to %d;"
            "\n         announced waits %s s, gaps between tries %s ms (lower bounds %s ms),"
            " server-seen gaps %s ms (lower bounds %s ms)"
            % (
                mode,
                phase[2] - phase[1],
                phase[3] - phase[2],
                cycles,
                len(run),
                ", ".join(sorted(set(e or "?" for e in kinds))),
                queued_most,
                announced,
                gaps,
                bounds,
                server_gaps or "-",
                server_bounds or "-",
            )
        )
    accepted = sum(1 for x in tries if x["outcome"] == "accepted")
    with capsys.disabled():
        print(
            "\nfirmware outage test (%s, timeout_s %d, retry %d..%d s): %d cycles, %d readings "
            "appended, %d delivered (%d duplicates, %d replies cut, %d late switches), %d queued "
            "at the end; "
            "%d tries (%d accepted); %.1f s\n%s"
            % (
                RUNTIME,
                TIMEOUT_S,
                BASE_S,
                CAP_S,
                CYCLES,
                len(everything),
                len(set(seqs)),
                duplicates,
                len(cut),
                sum(raced),
                len(queued),
                len(tries),
                accepted,
                elapsed,
                "\n".join(figures),
            )
        )
        duplicate_figure("firmware outage test", duplicates, len(everything), record_property)
