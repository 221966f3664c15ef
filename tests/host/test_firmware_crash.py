"""Crash test of the firmware itself: firmware/main.py (kpnthings.app, the Device loop with the
real Outbox, Client, batch and backoff) on the MicroPython unix port, SIGKILLed at 200 random
instants while it appends, sends and acknowledges against one emulator. After every restart the
readings delivered plus the readings still queued hold every reading ever appended; at the end
the firmware drains its queue and nothing is lost.

The test-only board "crashtest" (tests/host/boards_crash/crashtest.py) hands out readings
("seq", n) numbered across restarts, dated T0 + n, and prints "A n" once Outbox.extend stored
it. A number handed out whose process died before its append returned was never appended: the
test allows that only for the last cycle of a killed run, and reports how often it happened.

Duplicates (at least once: a kill between a send and its ack sends that pack again) are counted
twice: from the numbers delivered, and by the emulator from name and time alone; the two must
agree, no crash may add more than one pack, and the figure per 1000 readings is reported.

Trials alternate between the .py sources and the ESP32 .mpy files, and between the emulator's
own HTTP server and a front end that hands each request to the same emulator but answers faster
(more kills land in acknowledging and compaction instead of the wait for a reply).
"""

import os
import random
import signal
import subprocess
import time

from _firmware_support import appended, env_for, firmware_cmd, lines, pack_sizes, run_to_end
from _firmware_support import write_config as write_cfg
from _outbox_support import (
    UUID,
    Delivered,
    FrontServer,
    duplicate_figure,
    new_emulator,
    queued_seqs,
)

from kpnthings.auth import base_name
from kpnthings.batch import build_pack

TRIALS = int(os.environ.get("KPN_CRASH_TRIALS", "200"))
MAX_BODY = 256  # the smallest config allows: a pack holds a few readings, acks come often
MAX_BYTES = 8192  # 1 KB segments: rollover and compaction happen often
RUNTIMES = ("micropython-src", "mpy-xtensawin")
T0 = 1700000000  # reading n is dated T0 + n: one name and time per reading


def _read_state(path):
    try:
        return int(path.read_text())
    except FileNotFoundError:
        return 0


def _phase(out_lines):
    """Where the kill landed, from the last complete line (approximate: lines lag the work)."""
    for x in reversed(out_lines):
        if x.startswith("R "):
            return "appending"
        if x.startswith("A "):
            # the cycle's last reading is in: peek, build, send
            cycle = _last_cycle(out_lines)
            return "sending" if cycle and int(x[2:]) == cycle[-1] else "appending"
        if x.startswith("[kpn] uplink"):
            return "acknowledging"  # a send returned: ack, compaction, the next read, the wait
    return "boot"


def _last_cycle(out_lines):
    for x in reversed(out_lines):
        if x.startswith("R "):
            first, count = (int(v) for v in x[2:].split())
            return list(range(first, first + count))
    return []


def test_firmware_sigkilled_at_random_instants_loses_nothing(
    tmp_path, mp_env, mpy_built, capsys, record_property
):
    seed = int(os.environ.get("KPN_CRASH_SEED", "0")) or random.randrange(1, 2**31)
    rng = random.Random(seed)
    box_dir = tmp_path / "outbox"
    state = tmp_path / "state"
    config = tmp_path / "config.json"
    emulator = new_emulator(str(tmp_path / "emulator.db"))
    server = emulator.serve()
    front = FrontServer(emulator).__enter__()
    started = time.monotonic()
    try:
        got = Delivered(emulator)
        must_have = set()  # appended (printed) or seen stored at some point: may never vanish
        handed_total = 0
        never_appended = []  # (trial, seqs): handed out, process killed before the append
        dup_per_trial = []
        largest_used = 0
        phases = {}
        before = before_unique = 0
        for trial in range(TRIALS):
            runtime = RUNTIMES[trial % 2]
            url = front.url if (trial // 2) % 2 else server.url
            per_cycle = rng.randint(1, 8)  # up to three packs a cycle at MAX_BODY
            write_cfg(
                config,
                url,
                outbox_dir=str(box_dir),
                outbox_max_bytes=MAX_BYTES,
                max_body=MAX_BODY,
            )
            env = env_for(mp_env, runtime, config, state=state, per_cycle=per_cycle, t0=T0)
            first = _read_state(state)
            proc = subprocess.Popen(
                firmware_cmd(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            time.sleep(rng.uniform(0.03, 0.3))
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
            text = out.decode() + err.decode()
            assert proc.returncode == -signal.SIGKILL, text[-3000:]  # it was still running
            assert "Traceback" not in text, text[-3000:]
            for bad in ("[kpn] cycle ", "outbox append failed", "reading seq dropped"):
                assert bad not in text, text[-3000:]
            out_lines = lines(out.decode())
            phase = _phase(out_lines)
            phases[phase] = phases.get(phase, 0) + 1
            printed = set(appended(out_lines))
            largest_used = max([largest_used] + pack_sizes(out_lines))
            end = _read_state(state)
            handed_total += end - first

            seqs = got.seqs()
            queued, box = queued_seqs(box_dir, max_bytes=MAX_BYTES)
            assert box.dropped == 0  # the bound is never reached here, so nothing may go
            present = set(seqs) | set(queued)
            must_have |= printed
            missing = must_have - present
            assert not missing, "trial %d (seed %d, %s): lost %s" % (
                trial,
                seed,
                runtime,
                sorted(missing)[:20],
            )
            must_have |= present
            # Handed out but neither printed nor stored: only the killed cycle's own readings.
            gap = sorted(set(range(first, end)) - printed - present)
            if gap:
                assert gap[0] >= end - per_cycle, "trial %d (seed %d): %s never appended" % (
                    trial,
                    seed,
                    gap,
                )
                never_appended.append((trial, gap))
            dup_per_trial.append((len(seqs) - before) - (len(set(seqs)) - before_unique))
            before, before_unique = len(seqs), len(set(seqs))

        # Finally the firmware runs to its end: the backlog drains, every reading arrives.
        write_cfg(
            config,
            server.url,
            outbox_dir=str(box_dir),
            outbox_max_bytes=MAX_BYTES,
            max_body=MAX_BODY,
            cycles=20,
        )
        proc = run_to_end(
            firmware_cmd(),
            env_for(mp_env, RUNTIMES[0], config, state=state, per_cycle=1, t0=T0),
            timeout=120,
        )
        out_lines = lines(proc.stdout)
        must_have |= set(appended(out_lines))
        largest_used = max([largest_used] + pack_sizes(out_lines))
        seqs = got.seqs()
        queued, box = queued_seqs(box_dir, max_bytes=MAX_BYTES)
        lost = must_have - set(seqs)
        duplicates = len(seqs) - len(set(seqs))
        dup_per_trial.append((len(seqs) - before) - (len(set(seqs)) - before_unique))
        elapsed = time.monotonic() - started
        with capsys.disabled():
            print(
                "\nfirmware crash test (seed %d): trials=%d readings=%d lost=%d duplicates=%d "
                "(max per crash %d, largest pack %d readings); handed out but killed before "
                "the append: %d readings in %d trials; kills landed after: %s; %.1f s"
                % (
                    seed,
                    TRIALS,
                    len(must_have),
                    len(lost),
                    duplicates,
                    max(dup_per_trial),
                    largest_used,
                    sum(len(g) for _, g in never_appended),
                    len(never_appended),
                    dict(sorted(phases.items())),
                    elapsed,
                )
            )
        assert queued == [] and box.dropped == 0
        assert not lost, sorted(lost)[:20]
        assert set(seqs) <= set(range(_read_state(state)))  # nothing made up
        assert len(must_have) > TRIALS  # the kills did land while readings were flowing
        # Kills landed in every part of the loop (attribution from the last printed line).
        assert {"appending", "sending", "acknowledging"} <= set(phases), phases
        # At-least-once, never worse: a crash resends at most the pack in flight, and no pack
        # holds more readings than the smallest ones that fit in max_body.
        smallest = [{"n": "seq", "v": i, "t": 1760000000} for i in range(64)]
        largest_pack = build_pack(base_name(UUID), smallest, MAX_BODY)[1]
        assert largest_used <= largest_pack
        assert max(dup_per_trial) <= largest_pack
        # The emulator tells each of them by name and time alone, and finds no other.
        assert got.duplicates == duplicates, (got.duplicates, duplicates)
        with capsys.disabled():
            duplicate_figure(
                "firmware crash test (%d kills)" % TRIALS,
                duplicates,
                len(set(seqs)),
                record_property,
            )
    finally:
        front.__exit__(None, None, None)
        server.shutdown()
