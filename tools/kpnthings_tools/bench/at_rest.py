"""Heap at rest in the loop: gc.mem_alloc() after gc.collect() at the start of the second cycle
of the real firmware, HTTPS verified against the emulator, no sensors configured, .mpy in RAM.

The bench board (bench/benchboard_hook.py on top of boards/unix.py) prints the figure from its
second read_sensors() call, which the device makes first thing in its second cycle: the boot
is over, one whole cycle is behind, and on the Pico W model the kept-alive TLS socket (its
record buffers in the GC heap) counts.
"""

from . import firmware_run

TARGET = 32 * 1024
MARK = "@@AT_REST "


def measure(runtime, arch, chain):
    """{"bytes", "free", "runtime", "chain"} or {"error"}."""
    run = firmware_run.run_firmware(runtime, arch, chain=chain, cycles=2)
    lines = [x for x in run.stdout.splitlines() if x.startswith(MARK)]
    accepted = len(run.accepted)
    if run.proc is None or run.proc.returncode != 0 or not lines or accepted != 2:
        return {"error": "at-rest run failed:\n" + run.stdout[-3000:], "runtime": runtime.name}
    alloc, free = (int(x) for x in lines[0][len(MARK) :].split())
    return {
        "bytes": alloc,
        "free": free,
        "runtime": runtime.name,
        "chain": chain.name if chain is not None else None,
        "target": TARGET,
    }
