"""Long run of the firmware itself: firmware/main.py (kpnthings.app, the Device loop with the real
Outbox, Client, batch and backoff) from the ESP32 .mpy files on the MicroPython unix port with a
fixed -X heapsize, 10 000 cycles against the emulator. The heap in use after gc.collect() must
not grow, no MemoryError may occur, and every reading must arrive.

The heap is sampled by the test-only "crashtest" board (tests/host/boards_crash/crashtest.py)
at the start of every EVERY-th cycle, inside read_sensors, so each sample is taken at the same
point of the loop. The board also shrinks the idle wait between cycles (config's interval_s is
at least 1 s), so 10 000 cycles take seconds, not hours.
"""

import os
import subprocess
import time

from _firmware_support import ROOT, appended, env_for, firmware_cmd, lines, pack_sizes
from _firmware_support import write_config as write_cfg
from _outbox_support import Delivered, new_emulator, queued_seqs

CYCLES = int(os.environ.get("KPN_LONGRUN_CYCLES", "10000"))
HEAPSIZE = "160K"  # about 1.6 times what the loaded library and the loop hold (64-bit port)
EVERY = 250
PER_CYCLE = 3  # readings per cycle: segments roll over and are compacted every few cycles
RUNTIME = "mpy-xtensawin"
TIMEOUT_S = 900


def test_firmware_ten_thousand_cycles_without_heap_growth(tmp_path, mp_env, mpy_built, capsys):
    emulator = new_emulator()
    server = emulator.serve()
    try:
        config = write_cfg(
            tmp_path / "config.json",
            server.url,
            outbox_dir=str(tmp_path / "outbox"),
            cycles=CYCLES,
        )
        env = env_for(mp_env, RUNTIME, config, per_cycle=PER_CYCLE, heap_every=EVERY)
        got = Delivered(emulator)
        started = time.monotonic()
        # Output to a file, and the emulator polled while the firmware runs: its API lists at
        # most 1000 messages per call, newest first.
        with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
            proc = subprocess.Popen(
                firmware_cmd(HEAPSIZE), cwd=ROOT, env=env, stdout=out, stderr=err
            )
            try:
                while proc.poll() is None and time.monotonic() - started < TIMEOUT_S:
                    got.poll()
                    time.sleep(0.1)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        elapsed = time.monotonic() - started
        delivered = got.seqs()
    finally:
        server.shutdown()
    stdout = (tmp_path / "out.txt").read_text()
    text = stdout + (tmp_path / "err.txt").read_text()
    assert proc.returncode == 0, text[-3000:]
    out_lines = lines(stdout)
    for bad in ("MemoryError", "Traceback", "[kpn] cycle ", "failed: "):
        assert bad not in text, text[-3000:]
    assert "[boot] done after %d cycles" % CYCLES in out_lines
    heap = [tuple(int(v) for v in x.split()[1:]) for x in out_lines if x.startswith("H ")]
    assert [h[0] for h in heap] == list(range(EVERY, CYCLES + 1, EVERY))
    used = [h[1] for h in heap[1:]]  # the first sample still holds start-up garbage
    third = len(used) // 3
    early = sum(used[:third]) / third
    late = sum(used[-third:]) / third
    sizes = pack_sizes(out_lines)
    with capsys.disabled():
        print(
            "\nfirmware long run (%s): %d cycles, %d readings, %d uplinks, heap %s, in use after "
            "collect: first %d, min %d, max %d (early mean %.0f, late mean %.0f), free min %d; "
            "%.1f s (%.2f ms a cycle)"
            % (
                RUNTIME,
                CYCLES,
                CYCLES * PER_CYCLE,
                len(sizes),
                HEAPSIZE,
                heap[0][1],
                min(used),
                max(used),
                early,
                late,
                min(h[2] for h in heap),
                elapsed,
                1000 * elapsed / CYCLES,
            )
        )
    assert late - early < 256, (early, late)
    assert max(used) - min(used) < 2048, used
    # And every reading arrived, once: the emulator accepted every pack.
    assert sorted(appended(out_lines)) == list(range(CYCLES * PER_CYCLE))
    assert sorted(delivered) == list(range(CYCLES * PER_CYCLE))
    queued, box = queued_seqs(tmp_path / "outbox")
    assert queued == [] and box.dropped == 0
