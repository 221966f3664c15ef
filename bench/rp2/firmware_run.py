"""The firmware on the emulated Pico W, as main.py starts it, with a probe per cycle.

kpnthings_tools.bench_rp2 runs this through the raw REPL, after a line that sets PRELOAD (modules
to import before the boot: the whole deployed set for the heap-at-rest figure, or none),
OUTBOX_DIR, OUTBOX_MAX and DEAD_MAX (where and how wiring opens the outbox). The board's
read_sensors is wrapped: at the start of each cycle it collects and prints the heap in use
(@@HEAP), and it counts the readings the board gave (@@READ). After the loop the outbox on the
chip's LittleFS is opened again and its records counted (@@STORED). Kept short: the chip
compiles this file, as it compiles main.py, and its bytecode stays in the heap while it runs.
"""

import gc
import sys

from boards import pico_w

_read = pico_w.read_sensors


def _probed():
    gc.collect()
    print("@@HEAP", gc.mem_alloc())
    out = _read()
    print("@@READ", len(out))
    return out


pico_w.read_sensors = _probed
for name in PRELOAD:  # noqa: F821 (set by the runner)
    __import__(name)
try:
    from kpnthings import app

    app.main()
except SystemExit as e:
    print("@@EXIT", e.args[0] if e.args else 0)
except Exception as e:
    print("@@RAISED %s: %s" % (type(e).__name__, e))
    sys.print_exception(e)
from kpnthings.outbox import Outbox  # noqa: E402

print("@@STORED", len(Outbox(OUTBOX_DIR, OUTBOX_MAX, DEAD_MAX)))  # noqa: F821
