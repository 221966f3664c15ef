"""What the firmware long runs share (test_firmware_longrun.py on the 64-bit port,
test_firmware_longrun_picow.py on the Pico W model): how long they run, the mixed front end's
answers, the config, the runner that polls the emulator while the firmware runs, and the readers
of what the crashtest board and the device print.
"""

import os
import subprocess
import time

from _firmware_support import ROOT
from _firmware_support import write_config as write_cfg
from _outbox_support import Delivered

CYCLES = int(os.environ.get("KPN_LONGRUN_CYCLES", "10000"))
PER_CYCLE = 3  # readings per cycle: segments roll over and are compacted every few cycles
TIMEOUT_S = 900


def mixed_answers(n):
    """The mixed front end's FrontServer script: 400 to every 211th request, 503 to every
    1009th, the emulator's own answer to the rest."""
    if n % 211 == 0:
        return 400
    if n % 1009 == 0:
        return "503"
    return "ok"


def longrun_config(tmp_path, url, **changes):
    """The crashtest board's config.json for a run of CYCLES cycles, its outbox in tmp_path."""
    return write_cfg(
        tmp_path / "config.json",
        url,
        outbox_dir=str(tmp_path / "outbox"),
        cycles=CYCLES,
        **changes,
    )


def run_polling(tmp_path, cmd, env, emulator):
    """Run the firmware to its end, polling the emulator meanwhile (its API lists at most 1000
    messages per call, newest first); returns (stdout + stderr, seconds, Delivered)."""
    got = Delivered(emulator)
    started = time.monotonic()
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        try:
            while proc.poll() is None and time.monotonic() - started < TIMEOUT_S:
                got.poll()
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    stdout = (tmp_path / "out.txt").read_text()
    text = stdout + (tmp_path / "err.txt").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return text, elapsed, got


def heap_samples(out_lines, every):
    """The board's samples: (cycle, in use after collect, free, sockets open, readings queued),
    one per `every` cycles."""
    heap = [tuple(int(v) for v in x.split()[1:]) for x in out_lines if x.startswith("H ")]
    assert [h[0] for h in heap] == list(range(every, CYCLES + 1, every))
    return heap


def early_late(used, mean=True):
    """The means (or the least) of the first and the last third of `used`; (None, None) when
    there are fewer than 9 samples to compare."""
    third = len(used) // 3
    if third < 3:
        return None, None
    if not mean:
        return min(used[:third]), min(used[-third:])
    return sum(used[:third]) / third, sum(used[-third:]) / third


def uplink_outcomes(out_lines):
    """{answer ("200 accepted", "503 retry", ...): uplinks}, from the device's uplink lines."""
    outcomes = {}
    for x in out_lines:
        if x.startswith("[kpn] uplink ") and " -> " in x:
            key = x.split(" -> ", 1)[1].split(" (", 1)[0]
            outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


def failed_cycles(out_lines):
    """The lines that say a cycle or a step of one failed."""
    return [x for x in out_lines if x.startswith("[kpn] cycle ") or "failed: " in x]
