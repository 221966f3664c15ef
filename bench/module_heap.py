"""What each module holds once imported, on the MicroPython unix port (kpnthings_tools.bench
drives it): for each module named on the command line, in that order (dependencies first, so
each delta is the module's own), gc.mem_alloc() after gc.collect() before and after importing
it. Prints one JSON object: {"base": bytes before any, "modules": [[name, bytes, error], ...]}.

    micropython bench/module_heap.py kpnthings kpnthings.compat kpnthings.auth ...
"""

import gc
import json
import sys


def held_by(name):
    gc.collect()
    before = gc.mem_alloc()
    error = None
    try:
        __import__(name)
    except Exception as e:  # a module that cannot load here is reported, not fatal
        error = "%s: %s" % (type(e).__name__, e)
    gc.collect()
    return gc.mem_alloc() - before, error


def main():
    names = sys.argv[1:]
    gc.collect()
    out = {"base": gc.mem_alloc(), "modules": []}
    for name in names:
        size, error = held_by(name)
        out["modules"].append([name, size, error])
    print(json.dumps(out))


main()
