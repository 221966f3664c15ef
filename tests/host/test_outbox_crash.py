"""Crash test: the outbox loop on the MicroPython unix port is killed with SIGKILL at random
instants while it appends, sends and acknowledges against the emulator. After every restart,
the readings delivered plus the readings still queued must hold every reading ever appended.

Odd trials talk to the emulator's own HTTP server; even ones to a front end that hands each
request to the same emulator but acknowledges TCP at once, so sends are fast and more kills land
in acknowledging and compaction rather than in the wait for a reply.

A reading counts as appended once the driver printed it, which it does only after
Outbox.append returned (the frame is on "flash"). Duplicates are allowed (at-least-once), at
most one batch per crash; each reading is dated T0 + its number, so the emulator, which tells a
duplicate by name and time alone, must count exactly the readings delivered twice. The figure
per 1000 readings is reported.
"""

import os
import random
import signal
import subprocess
import time

import pytest
from _outbox_support import (
    SECRET,
    UUID,
    Delivered,
    FrontServer,
    build_mpy,
    driver_cmd,
    duplicate_figure,
    mp_env,
    new_emulator,
    parse_events,
    queued_seqs,
    run_driver,
    sends,
)

from kpnthings.auth import base_name
from kpnthings.batch import build_pack

TRIALS = int(os.environ.get("KPN_CRASH_TRIALS", "200"))


@pytest.mark.slow
def test_sigkill_at_random_instants_loses_nothing(tmp_path, capsys, record_property):
    seed = int(os.environ.get("KPN_CRASH_SEED", "0")) or random.randrange(1, 2**31)
    rng = random.Random(seed)
    mpy = build_mpy(tmp_path / "mpy")
    box_dir = tmp_path / "outbox"
    emulator = new_emulator(str(tmp_path / "emulator.db"))
    server = emulator.serve()
    front = FrontServer(emulator).__enter__()
    try:
        got = Delivered(emulator)
        appended = set()
        max_used = 1
        dup_per_trial = []
        kill_phases = {"A": 0, "S": 0, "other": 0}
        before = before_unique = 0
        for trial in range(TRIALS):
            cfg = {
                "dir": str(box_dir),
                "url": server.url if trial % 2 else front.url,
                "uuid": UUID,
                "secret": SECRET,
                "first": trial * 1000000,
                "per_cycle": 4,
                "random": True,
                "max_body": 300,  # several packs per flush
                "max_bytes": 8192,  # 1 KB segments: rollover and compaction happen often
                "timeout_s": 2,
            }
            proc = subprocess.Popen(
                driver_cmd(cfg),
                env=mp_env(mpy),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            time.sleep(rng.uniform(0.02, 0.4))
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
            text = out.decode()
            assert b"Traceback" not in err, err.decode()[-2000:]
            events = parse_events(text)
            last = events[-1][0] if events else "other"
            kill_phases[last if last in kill_phases else "other"] += 1
            appended.update(int(e[1]) for e in events if e[0] == "A")
            for s in sends(events):
                max_used = max(max_used, s[2])
            seqs = got.seqs()
            dup_per_trial.append((len(seqs) - before) - (len(set(seqs)) - before_unique))
            before, before_unique = len(seqs), len(set(seqs))
            queued, box = queued_seqs(box_dir, max_bytes=8192)
            assert box.dropped == 0  # the bound is never reached here, so nothing may go
            missing = appended - set(seqs) - set(queued)
            assert not missing, "trial %d (seed %d): lost %s" % (trial, seed, sorted(missing)[:20])

        # Finally let the device drain its queue: everything appended reaches the emulator.
        cfg = dict(cfg, first=TRIALS * 1000000, readings=1, random=False, per_cycle=1)
        run_driver(cfg, path=mpy)
        appended.add(TRIALS * 1000000)
        seqs = got.seqs()
        queued, _ = queued_seqs(box_dir, max_bytes=8192)
        assert queued == []
        lost = appended - set(seqs)
        duplicates = len(seqs) - len(set(seqs))
        with capsys.disabled():
            print(
                "\ncrash test (seed %d): trials=%d readings=%d lost=%d duplicates=%d "
                "(max per crash %d, largest pack %d readings); last event before the kill: %s"
                % (
                    seed,
                    TRIALS,
                    len(appended),
                    len(lost),
                    duplicates,
                    max(dup_per_trial),
                    max_used,
                    kill_phases,
                )
            )
        assert not lost
        assert len(appended) > TRIALS  # the kills did land while readings were flowing
        # At-least-once, never worse: a crash resends at most the batch in flight, and no pack
        # can hold more readings than the smallest ones that fit in max_body.
        smallest = [{"n": "seq", "v": i, "t": 1760000000 + i} for i in range(64)]
        largest_pack = build_pack(base_name(UUID), smallest, 300)[1]
        assert max_used <= largest_pack
        assert max(dup_per_trial) <= largest_pack
        assert got.duplicates == duplicates, (got.duplicates, duplicates)
        with capsys.disabled():
            duplicate_figure(
                "outbox crash test (%d kills)" % TRIALS,
                duplicates,
                len(set(seqs)),
                record_property,
            )
    finally:
        front.__exit__(None, None, None)
        server.shutdown()
