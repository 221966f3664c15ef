"""`make bench`: the figures of issue 15 (heap at rest, smallest heap for a full cycle over
verified HTTPS, draining a backlog, .mpy deployed, heap per module, bytes allocated per message)
on the 32-bit runtimes with the 64-bit port beside, and the earlier figures (wire bytes, CPU,
connections), each beside its baseline measured in the same run. One module per figure family:

- runtimes: which MicroPython binaries (MICROPYTHON32_STOCK, MICROPYTHON32), how to run them;
- trees: the .mpy trees and the bench board; pki: the EC and RSA-2048 test chains;
- firmware_run: one run of the real firmware against the emulator; heap_search: the bisection;
- at_rest, full_cycle, backlog, module_heap, per_message, flash, wire: the figures;
- report: the tables; run: main().
"""

from .full_cycle import _full_cycle_ok, measure_full_cycle  # noqa: F401  (the names callers know)
from .run import main  # noqa: F401
