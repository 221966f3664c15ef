"""Response classes, end to end on the MicroPython unix port (PROTOCOL.md's table):
401 and 404 keep every reading and retry on the long fixed backoff until the Portal is fixed;
400 moves the rejected batch to the dead-letter store and the queue goes on; a full queue drops
its oldest readings and the next accepted uplink reports how many (droppedReadings).
"""

import subprocess
import threading
import time

from _outbox_support import (
    SECRET,
    SEQ_NAME,
    UUID,
    FrontServer,
    driver_cmd,
    mp_env,
    new_emulator,
    parse_events,
    queued_seqs,
    run_driver,
    sends,
)

OTHER_SECRET = "Zyxwvutsrq9876543210Ponmlkjihg17"
OTHER_UUID = "0b9e1c2d-3f4a-4b5c-8d6e-7f8091a2b3c4"
FIXED_MS = 200


class _Async:
    """The driver in the background; its stdout lines are collected as they come."""

    def __init__(self, cfg):
        self.proc = subprocess.Popen(
            driver_cmd(cfg), env=mp_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.lines = []
        self.err = b""
        self._t = threading.Thread(target=self._collect)
        self._t.start()

    def _collect(self):
        for line in self.proc.stdout:
            self.lines.append(line.decode())
        self.err = self.proc.stderr.read()

    def wait_for(self, line, timeout=30):
        deadline = time.monotonic() + timeout
        while line not in self.lines and time.monotonic() < deadline:
            time.sleep(0.05)
        assert line in self.lines, "driver never printed %r" % line

    def finish(self):
        self._t.join(60)
        if self.proc.poll() is None:
            self.proc.kill()
            self._t.join(10)
        self.proc.wait(10)
        assert self.proc.returncode == 0, self.err.decode()[-3000:]
        return parse_events("".join(self.lines))


def _fix_later_and_check(tmp_path, cfg_over, fix, outcome, uuid=UUID):
    emulator = new_emulator()
    server = emulator.serve()
    try:
        cfg = {
            "dir": str(tmp_path / "outbox"),
            "url": server.url,
            "uuid": uuid,
            "secret": SECRET,
            "readings": 5,
            "interval_ms": 20,
            "fixed_ms": FIXED_MS,
        }
        cfg.update(cfg_over)
        driver = _Async(cfg)
        time.sleep(1.5)
        fix(emulator)  # e.g. the secret corrected in the Portal
        events = driver.finish()
        got = [
            r["v"]
            for m in emulator.device_messages(uuid)
            if m["outcome"] == "accepted"
            for r in m["records"]
        ]
    finally:
        server.shutdown()
    s = sends(events)
    refused = [x for x in s if x[4] == outcome]
    assert len(refused) >= 3  # it kept trying while refused...
    assert s[-1][4] == "accepted"  # ...and got through once fixed
    # ...on the long fixed backoff, which shows in the timing
    waits = [int(e[2]) for e in events if e[0] == "W"]
    assert waits == [FIXED_MS] * len(refused)
    for k in range(len(s) - 1):
        if s[k][4] == outcome:
            assert s[k + 1][0] - s[k][1] >= FIXED_MS - 2
    # Nothing was lost or dead-lettered while refused.
    assert got == [0, 1, 2, 3, 4]
    assert events[-1] == ["D", "0", "0", "0"]


def test_401_keeps_readings_and_retries_on_the_long_backoff(tmp_path):
    def fix(emulator):
        emulator.add_device(UUID, OTHER_SECRET)

    _fix_later_and_check(tmp_path, {"secret": OTHER_SECRET}, fix, "unauthorized")


def test_404_keeps_readings_until_the_device_is_registered(tmp_path):
    def fix(emulator):
        emulator.add_device(OTHER_UUID, SECRET)

    _fix_later_and_check(tmp_path, {"uuid": OTHER_UUID}, fix, "unknown_device", uuid=OTHER_UUID)


def test_400_moves_the_batch_to_the_dead_letter_store_and_goes_on(tmp_path):
    emulator = new_emulator()
    with FrontServer(emulator, script=lambda n: 400 if n == 2 else "ok") as front:
        cfg = {
            "dir": str(tmp_path / "outbox"),
            "url": front.url,
            "uuid": UUID,
            "secret": SECRET,
            "readings": 6,
            "per_cycle": 1,
        }
        events = run_driver(cfg)
    delivered = [r["v"] for r in front.accepted if r["n"] == SEQ_NAME]
    assert [x[3] for x in sends(events)] == ["200", "400", "200", "200", "200", "200"]
    assert delivered == [0, 2, 3, 4, 5]
    queued, box = queued_seqs(tmp_path / "outbox")
    assert queued == []
    assert [r["v"] for r in box.dead_letters()] == [1]
    assert box.dead_count == 1
    assert not [e for e in events if e[0] == "W"]  # no backoff: retrying cannot help


def test_the_emulators_own_400_dead_letters_a_pack_it_cannot_use(tmp_path):
    emulator = new_emulator()
    server = emulator.serve()
    try:
        cfg = {
            "dir": str(tmp_path / "outbox"),
            "url": server.url,
            "uuid": UUID,
            "secret": SECRET,
            "bn": "urn:dev:IMEI:356938035643809:",  # not this device's DVNUUID base name
            "readings": 4,
            "per_cycle": 2,
        }
        events = run_driver(cfg)
        statuses = [m["status"] for m in emulator.messages()]
    finally:
        server.shutdown()
    assert statuses and set(statuses) == {400}
    assert events[-1] == ["D", "0", "0", "4"]
    _, box = queued_seqs(tmp_path / "outbox")
    assert sorted(r["v"] for r in box.dead_letters()) == [0, 1, 2, 3]


def test_full_queue_drops_oldest_and_reports_the_count(tmp_path):
    emulator = new_emulator()
    total = 300
    with FrontServer(emulator) as front:
        front.set_mode("503")
        cfg = {
            "dir": str(tmp_path / "outbox"),
            "url": front.url,
            "uuid": UUID,
            "secret": SECRET,
            "readings": total,
            "per_cycle": 5,
            "interval_ms": 5,
            "base_ms": 5,
            "cap_ms": 40,
            "max_bytes": 2048,  # about 80 readings
        }
        driver = _Async(cfg)
        driver.wait_for("A %d\n" % (total - 1))  # all appended while KPN answers 503
        front.set_mode("ok")
        events = driver.finish()
    delivered = [r["v"] for r in front.accepted if r["n"] == SEQ_NAME]
    reports = [r["v"] for r in front.accepted if r["n"].endswith(":droppedReadings")]
    dropped = total - len(delivered)
    assert dropped > 0
    assert delivered == list(range(dropped, total))  # the newest are kept, in order
    assert sum(reports) == dropped  # and the loss is reported, exactly
    assert events[-1] == ["D", "0", "0", "0"]  # the count was cleared once reported
