"""Peak heap to drain a backlog, beside one pack: the smallest stable -X heapsize for the
firmware to send a pre-filled outbox of 1000 readings to the end, against the smallest for the
same run with an empty outbox, whose cycles each send one pack of their own reading. Both over
verified HTTPS, with the same config (an outbox big enough for the backlog), the same bench
board and the same number of cycles; only the outbox's contents differ. (The baseline was one
cycle until 2026-12: 512 B of the difference it showed was the heap's growth over 80 cycles,
not the backlog.)

The backlog is written before boot with the device's own Outbox class (kpnthings.outbox, whose
on-flash format is the same under CPython). The idle wait between cycles is cut to nothing
(KPN_BENCH_FAST_SLEEP), so the drain takes seconds; what each cycle does is unchanged.
"""

from . import firmware_run, heap_search

BACKLOG = 1000
# Enough cycles for the device to send everything (it sends a few packs per cycle), and some
# cycles with nothing queued after that; the run checks that all of it arrived.
DRAIN_CYCLES = 80
OUTBOX_BYTES = 96 * 1024
TARGET_DIFF = 2 * 1024
_CONFIG = {"outbox_max_bytes": OUTBOX_BYTES}
_ENV = {"KPN_BENCH_FAST_SLEEP": "1"}


def _backlog_arrived(accepted, backlog):
    """How many of the backlog's readings the emulator accepted: they are the ones stamped
    before the last backlog time (the board's own readings carry the host's clock)."""
    last = firmware_run.backlog_records(backlog)[-1]["t"] if backlog else 0
    n = 0
    for m in accepted:
        for rec in m.get("records") or ():
            t = rec.get("t")
            if t is not None and t <= last:
                n += 1
    return n


def drain_ok(runtime, arch, chain, heapsize, backlog=BACKLOG):
    """(passed, output): every backlog reading accepted once, every cycle's own readings sent,
    the outbox empty at the end."""
    cycles = DRAIN_CYCLES
    run = firmware_run.run_firmware(
        runtime,
        arch,
        heapsize=heapsize,
        chain=chain,
        cycles=cycles,
        prefill=firmware_run.backlog_records(backlog) if backlog else None,
        config=_CONFIG,
        env_extra=_ENV,
        timeout=120,
    )
    ok = (
        run.proc is not None
        and run.proc.returncode == 0
        and run.left == 0
        and len(run.accepted) >= cycles  # every cycle sent its own readings
        and _backlog_arrived(run.accepted, backlog) == backlog
    )
    return ok, run.stdout


def measure(runtime, arch, chain):
    """{"drain_bytes", "one_pack_bytes", "diff_bytes", ...}; both by heap_search."""
    one = heap_search.smallest_stable_heap(lambda s: drain_ok(runtime, arch, chain, s, 0))
    drain = heap_search.smallest_stable_heap(lambda s: drain_ok(runtime, arch, chain, s))
    out = {
        "runtime": runtime.name,
        "chain": chain.name if chain is not None else None,
        "backlog_readings": BACKLOG,
        "one_pack": one,
        "drain": drain,
        "target_diff": TARGET_DIFF,
    }
    if "min_heap_bytes" in one and "min_heap_bytes" in drain:
        out["one_pack_bytes"] = one["min_heap_bytes"]
        out["drain_bytes"] = drain["min_heap_bytes"]
        out["diff_bytes"] = drain["min_heap_bytes"] - one["min_heap_bytes"]
    return out
