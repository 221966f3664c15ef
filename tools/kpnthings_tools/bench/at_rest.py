"""Heap at rest in the loop: gc.mem_alloc() after gc.collect() at the start of the second cycle
of the real firmware, HTTPS verified against the emulator, no sensors configured, .mpy in RAM.

The bench board (bench/benchboard_hook.py on top of boards/unix.py) prints the figure from its
second read_sensors() call, which the device makes first thing in its second cycle: the boot
is over, one whole cycle is behind, and on the Pico W model the kept-alive TLS socket (its
record buffers in the GC heap) counts.
"""

from . import firmware_run, runtimes, trees

TARGET = 32 * 1024
MARK = "@@AT_REST "


def measure(runtime, arch, chain):
    """{"bytes", "free", "runtime", "chain"} or {"error"}."""
    # 1 s cycles for speed; idle_close_s 0 makes the device rest between them as it does
    # between the default 60 s cycles (idle_close_s defaults to 30).
    run = firmware_run.run_firmware(
        runtime, arch, chain=chain, cycles=2, config={"idle_close_s": 0}
    )
    lines = [x for x in run.stdout.splitlines() if x.startswith(MARK)]
    accepted = len(run.accepted)
    if run.proc is None or run.proc.returncode != 0 or not lines or accepted != 2:
        return {"error": "at-rest run failed:\n" + run.stdout[-3000:], "runtime": runtime.name}
    alloc, free = (int(x) for x in lines[0][len(MARK) :].split())
    stand_in = stand_in_bytes(runtime, arch)
    pools = _qstr_pools(run.stdout)
    return {
        # Interned names (qstrs) are never freed and their pools double: say how many there are,
        # since one new identifier in any module the firmware loads can cost a whole pool.
        "qstr_pools": pools.get("n_pool"),
        "qstrs": pools.get("n_qstr"),
        "qstr_bytes": pools.get("n_total_bytes"),
        "bytes": alloc,
        "free": free,
        # The host's `machine` stand-in (tests/fakes/machine.py, loaded when a downlink drives
        # a pin) is built into a board's firmware, where it holds no heap.
        "stand_in_bytes": stand_in,
        "board_bytes": alloc - stand_in if stand_in is not None else None,
        "runtime": runtime.name,
        "chain": chain.name if chain is not None else None,
        "target": TARGET,
    }


def _qstr_pools(stdout):
    """The numbers of micropython.qstr_info()'s summary line, by name ({} if absent)."""
    for line in stdout.splitlines():
        if line.startswith("qstr pool:"):
            out = {}
            for part in line[len("qstr pool:") :].split(","):
                name, _, value = part.strip().partition("=")
                if value.isdigit():
                    out[name] = int(value)
            return out
    return {}


_STAND_IN = """
import gc
gc.collect()
a = gc.mem_alloc()
import machine
machine.Pin("LED", machine.Pin.OUT).value(1)
gc.collect()
print(gc.mem_alloc() - a)
"""


def stand_in_bytes(runtime, arch):
    """Heap the host's machine stand-in holds once imported and a pin made, on `runtime`, from
    the same short path as in the firmware run (its path is interned too)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "f").symlink_to(trees.fakes(arch), target_is_directory=True)
        proc = runtimes.run(runtime, ["f"], "-c", _STAND_IN, cwd=tmp)
    try:
        return int(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
