"""Heap held by a set of modules once imported on the chip (kpnthings_tools.bench_rp2 runs it).

Set before it runs: MODULES, the dotted names to import. Prints the heap in use after
gc.collect() before and after the imports (@@HEAP before / after).
"""

import gc

gc.collect()
print("@@HEAP before", gc.mem_alloc())
for name in MODULES:  # noqa: F821 (set by the runner)
    __import__(name)
gc.collect()
print("@@HEAP after", gc.mem_alloc())
