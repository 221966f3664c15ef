"""Runs portable test modules under the MicroPython unix port.

Usage: micropython tests/mp_run.py MODULE [MODULE ...]
Prints one JSON line per test: {"m": module, "t": test, "r": "pass"|"fail"|"skip", "e": text}.
tests/conftest.py turns those lines into pytest results, one per test and runtime.
"""

import gc
import io
import json
import sys


def _describe(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    return buf.getvalue()


def run_module(modname):
    try:
        mod = __import__(modname)
    except Exception as e:  # an import error fails every test of the module
        print(json.dumps({"m": modname, "t": "*", "r": "fail", "e": _describe(e)}))
        return
    support = __import__("_support")
    skip = support.Skip
    for name in sorted(dir(mod)):
        if not name.startswith("test_"):
            continue
        fn = getattr(mod, name)
        if not callable(fn):
            continue
        result = {"m": modname, "t": name, "r": "pass", "e": ""}
        try:
            with support.KeptModules():  # what a test unloads comes back for the next one
                fn()
        except skip as e:
            result["r"] = "skip"
            result["e"] = str(e)
        except Exception as e:
            result["r"] = "fail"
            result["e"] = _describe(e)
        print(json.dumps(result))
        gc.collect()


for _m in sys.argv[1:]:
    run_module(_m)
