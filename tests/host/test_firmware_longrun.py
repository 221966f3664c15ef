"""Long run of the firmware itself: firmware/main.py (kpnthings.app, the Device loop with the real
Outbox, Client, batch and backoff) from the ESP32 .mpy files on the MicroPython unix port with a
fixed -X heapsize, 10 000 cycles against the emulator. The heap in use after gc.collect() must
not grow, no MemoryError may occur, and no reading may go missing.

Two servers: the emulator's own HTTP server (every pack accepted), and a front end that hands
requests to the same emulator but answers some with 503 (the device backs off for about a
second, queues, then drains its backlog several packs a cycle) and some with 400 (the pack goes
to the dead-letter store).

The heap is sampled by the test-only "crashtest" board (tests/host/boards_crash/crashtest.py)
at the start of every EVERY-th cycle, inside read_sensors, so each sample is taken at the same
point of the loop, with the number of sockets the device holds open then. The board also shrinks
the idle wait between cycles (config's interval_s is at least 1 s), so 10 000 cycles take
seconds, not hours; backoff waits stay real.

The same mixed run on the Pico W model, over verified HTTPS: test_firmware_longrun_picow.py.
"""

import pytest
from _firmware_support import (
    appended,
    env_for,
    firmware_cmd,
    lines,
    pack_sizes,
)
from _longrun_support import (
    CYCLES,
    PER_CYCLE,
    early_late,
    failed_cycles,
    heap_samples,
    longrun_config,
    mixed_answers,
    run_polling,
    uplink_outcomes,
)
from _outbox_support import FrontServer, new_emulator, queued_seqs

HEAPSIZE = "160K"  # about 1.6 times what the loaded library and the loop hold (64-bit port)
EVERY = 250
RUNTIME = "mpy-xtensawin"


# Draining a backlog (after 503 backoffs) at 160K, the heap as fragmented by the live records
# of a full pack could not always give the body's own 1 KB block (56 KB free in pieces): cycles
# failed with MemoryError, nothing lost. senml.encode no longer builds a list of every piece, nor
# a full-size str before the bytes, nor any candidate pack larger than max_body; what remains
# is fragmentation on this 64-bit port, so the mixed run gets a fixed 192K.
MIXED_HEAPSIZE = "192K"
_BOARD = {"per_cycle": PER_CYCLE, "heap_every": EVERY}


@pytest.mark.parametrize("server", ["emulator", "mixed"])
def test_firmware_ten_thousand_cycles_without_heap_growth(
    tmp_path, mp_env, mpy_built, capsys, server
):
    emulator = new_emulator()
    if server == "emulator":
        http = emulator.serve()
        try:
            env = env_for(mp_env, RUNTIME, longrun_config(tmp_path, http.url), **_BOARD)
            text, elapsed, got = run_polling(tmp_path, firmware_cmd(HEAPSIZE), env, emulator)
            delivered = got.seqs()  # before shutdown, which closes the emulator's database
        finally:
            http.shutdown()
    else:
        with FrontServer(emulator, script=mixed_answers) as front:
            # a backlog of a second's readings stays far below the bound: nothing is dropped
            config = longrun_config(tmp_path, front.url, outbox_max_bytes=1 << 18)
            env = env_for(mp_env, RUNTIME, config, **_BOARD)
            text, elapsed, got = run_polling(tmp_path, firmware_cmd(MIXED_HEAPSIZE), env, emulator)
            delivered = got.seqs()
    out_lines = lines(text)
    assert "[boot] done after %d cycles" % CYCLES in out_lines
    heap = heap_samples(out_lines, EVERY)
    used = [h[1] for h in heap[1:]]  # the first sample still holds start-up garbage
    # A plain socket is a few hundred bytes: over HTTP, every sample is compared with every other.
    early, late = early_late(used)
    assert early is not None, used
    sizes = pack_sizes(out_lines)
    outcomes = uplink_outcomes(out_lines)
    queued, box = queued_seqs(tmp_path / "outbox")
    dead = [int(r["v"]) for r in box.dead_letters() if r["n"] == "seq"]
    with capsys.disabled():
        print(
            "\nfirmware long run (%s, %s): %d cycles, %d readings, uplinks %s (largest pack %d), "
            "backing off in %d cycles; heap %s, in use after collect: first %d, min %d, max %d "
            "(early mean %.0f, late mean %.0f), free min %d; delivered %d, dead-lettered %d, "
            "queued %d; %.1f s (%.2f ms a cycle)"
            % (
                server,
                RUNTIME,
                CYCLES,
                CYCLES * PER_CYCLE,
                dict(sorted(outcomes.items())),
                max(sizes),
                sum(1 for x in out_lines if ": backing off after " in x),
                MIXED_HEAPSIZE if server == "mixed" else HEAPSIZE,
                heap[0][1],
                min(used),
                max(used),
                early,
                late,
                min(h[2] for h in heap),
                len(delivered),
                len(dead),
                len(queued),
                elapsed,
                1000 * elapsed / CYCLES,
            )
        )
    assert late - early < 256, (early, late)
    assert max(used) - min(used) < 2048, used
    # And no reading went missing, none arrived twice.
    everything = list(range(CYCLES * PER_CYCLE))
    assert sorted(appended(out_lines)) == everything
    assert sorted(delivered + dead + queued) == everything
    assert box.dropped == 0
    if server == "emulator":
        assert delivered and not dead and not queued
    else:
        assert {"200 accepted", "400 malformed", "503 retry"} <= set(outcomes), outcomes
        assert len(dead) == box.dead_count and dead
    # Last, so that a failed cycle cannot hide a loss: no cycle failed.
    failures = failed_cycles(out_lines)
    assert "MemoryError" not in text and not failures, "%d failed cycles: %s" % (
        len(failures),
        failures[:3],
    )
