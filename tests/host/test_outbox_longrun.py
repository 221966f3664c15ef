"""Long run: 10 000 cycles of the outbox loop on the MicroPython unix port with a fixed heap.

The library runs as the .mpy files a board gets. The server mixes in 503s (backoff and backlog),
401s (the fixed backoff) and 400s (dead letters), so every path of the loop runs thousands of
times. After a gc.collect() the heap in use must not grow, and no MemoryError may occur.
"""

import pytest
from _outbox_support import (
    SECRET,
    SEQ_NAME,
    UUID,
    FrontServer,
    build_mpy,
    new_emulator,
    queued_seqs,
    run_driver,
    sends,
)

CYCLES = 10000
HEAPSIZE = "160K"  # about 2.5 times what the loaded library and the loop hold (64-bit port)
EVERY = 250


def _script(n):
    if n % 211 == 0:
        return 400
    if n % 97 == 0:
        return 401
    if n % 10 == 0:
        return "503"
    return "ok"


@pytest.mark.slow
def test_ten_thousand_cycles_without_heap_growth(tmp_path, capsys):
    mpy = build_mpy(tmp_path / "mpy")
    emulator = new_emulator()
    with FrontServer(emulator, script=_script) as front:
        cfg = {
            "dir": str(tmp_path / "outbox"),
            "url": front.url,
            "uuid": UUID,
            "secret": SECRET,
            "cycles": CYCLES,
            "interval_ms": 1,
            "per_cycle": 1,
            "base_ms": 1,
            "cap_ms": 8,
            "fixed_ms": 3,
            "heap_every": EVERY,
            "max_body": 512,
        }
        events = run_driver(cfg, timeout=600, heapsize=HEAPSIZE, path=mpy)
    heap = [(int(e[1]), int(e[2])) for e in events if e[0] == "H"]
    assert heap[-1][0] == CYCLES  # ran to the end: no MemoryError, no crash
    used = [h for _, h in heap[1:]]  # the first sample still holds start-up garbage
    third = len(used) // 3
    early = sum(used[:third]) / third
    late = sum(used[-third:]) / third
    s = sends(events)
    outcomes = {o: sum(1 for x in s if x[4] == o) for o in {x[4] for x in s}}
    with capsys.disabled():
        print(
            "\nlong run: %d cycles, heap %s, in use after collect: min %d max %d "
            "(early mean %.0f, late mean %.0f); sends %s"
            % (CYCLES, HEAPSIZE, min(used), max(used), early, late, outcomes)
        )
    assert late - early < 256, (early, late)
    assert max(used) - min(used) < 2048, used
    assert {"accepted", "retry", "unauthorized", "malformed"} <= set(outcomes)

    # And nothing went missing on the way.
    appended = {int(e[1]) for e in events if e[0] == "A"}
    assert len(appended) == CYCLES
    delivered = [r["v"] for r in front.accepted if r["n"] == SEQ_NAME]
    queued, box = queued_seqs(tmp_path / "outbox")
    dead = [r["v"] for r in box.dead_letters()]
    assert len(dead) == box.dead_count
    assert appended == set(delivered) | set(queued) | set(dead)
    assert len(delivered) == len(set(delivered))
