"""`make bench` on the real chip: the MicroPython 1.28 RPI_PICO_W firmware on an emulated RP2040.

Runs only where $RP2EMU names the emulator (kpnthings_tools.rp2emu). Figures, each beside its
baseline from the same run:

- heap at rest: the deployed set of an HTTPS config on the chip's LittleFS under /lib, imported,
  plus the firmware's boot up to its loop, then gc.collect(); gc.mem_alloc(), read at the start
  of the second cycle. Baseline: micropython-senml + umqtt.simple + the firmware's own frozen
  `requests`, imported.
- CPU per message in RP2040 cycles (deterministic): the firmware path (batch.build_pack over a
  cycle's 3 readings + the token) and the plain Pack path, beside micropython-senml's build,
  to_json and SHA-256.
- the firmware booted from its deployed set for 20 cycles, the Wi-Fi chip failing (it does not
  exist in the emulator): every reading stored on the chip's LittleFS, nothing raised out of
  the loop, heap after collection flat across cycles; and flash erases per reading.

    RP2EMU=/path/to/rp2emu python -m kpnthings_tools.bench_rp2 [--json PATH]

This module drives the run; bench_rp2_files says what goes onto the chip, bench_rp2_figures
runs each figure's script there (bench/rp2/), bench_rp2_table makes the rows.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from . import build, provision, rp2emu
from .bench_rp2_figures import (
    CYCLES,
    REFERENCE_SECRET,  # noqa: F401  (the tests check the chip's tokens with it)
    TARGET_CPU,
    TARGET_HEAP_AT_REST,
    check_tokens,
    measure_cpu,
    measure_firmware_run,
    measure_heap_at_rest,
    measure_imports,
    run_failure,
)
from .bench_rp2_files import (
    BOARD,
    OUT,
    baseline_files,
    bench_config,
    deployed_modules,
    dotted,
    firmware_files,
    library_modules,
)
from .bench_rp2_table import rows, table  # noqa: F401  (bench.run calls rows)

# The firmware's own frozen module, part of the baseline a user would pick.
FROZEN_BASELINE = ("requests",)


def measure(ours_dir, base_dir):
    """Every figure above for the .mpy trees of bench.build_trees() (ours: kpnthings/*.mpy and
    boards/*.mpy; baseline: senml/*.mpy + cbor2.mpy). {"unavailable": why} when the emulator
    cannot run here (RP2EMU unset, node or npm missing); {"error": why} when the set-up failed
    (a module missing from ours_dir, say). A figure that failed has its own "error"."""
    try:
        emu = rp2emu.prepare()
    except rp2emu.Unavailable as e:
        return {"unavailable": str(e)}
    try:
        return _measure(emu, Path(ours_dir), Path(base_dir))
    except (OSError, ValueError, build.BuildError) as e:
        return {"error": "%s: %s" % (type(e).__name__, e)}


def _measure(emu, ours_dir, base_dir):
    started = time.monotonic()
    work = OUT / "work"
    work.mkdir(parents=True, exist_ok=True)
    identity = provision.new_identity()
    config = bench_config(identity, CYCLES)
    modules, source = deployed_modules(config)
    ours_files = firmware_files(ours_dir, modules, work)
    result = {
        "runtime": "MicroPython 1.28 RPI_PICO_W on an emulated RP2040 (rp2040js)",
        "emulator": str(emu),
        "deployed": {
            "modules": modules,
            "source": source,
            "mpy_bytes": sum(Path(p).stat().st_size for p, r in ours_files if r.endswith(".mpy")),
        },
        "host_s": {},
    }
    t = time.monotonic()
    ours_img = OUT / "ours.img"
    lib_img = OUT / "library.img"
    base_img = OUT / "baseline.img"
    lib_files = firmware_files(ours_dir, library_modules(modules), work)
    images = ((ours_img, ours_files), (lib_img, lib_files), (base_img, baseline_files(base_dir)))
    for img, files in images:
        r = rp2emu.build_image(files, img)
        if not r.ok:
            result["error"] = run_failure(r, "copying files to the chip")
            return result
    result["host_s"]["images"] = round(time.monotonic() - t, 1)

    heap = {"target": TARGET_HEAP_AT_REST}
    heap["ours_imports"] = measure_imports(
        ours_img, [dotted(m) for m in modules] + ["boards." + BOARD]
    )
    base_modules = ["senml", "umqtt.simple", *FROZEN_BASELINE]
    heap["baseline"] = measure_imports(base_img, base_modules)
    heap["baseline"]["note"] = (
        "micropython-senml (.mpy) + umqtt.simple 1.7.0 (.mpy, bench/rp2/baseline) + the "
        "firmware's frozen requests, imported"
    )
    at_rest = measure_heap_at_rest(ours_img, work, identity, modules)
    heap["at_rest"] = at_rest
    result["heap"] = heap

    cpu = {"target": TARGET_CPU}
    cpu["ours"] = measure_cpu(lib_img, "ours")
    cpu["baseline"] = measure_cpu(base_img, "baseline")
    if "error" not in cpu["ours"] and "error" not in cpu["baseline"]:
        base = cpu["baseline"]["baseline_cycles"]
        cpu["ratio"] = round(cpu["ours"]["firmware_cycles"] / base, 3)
        cpu["pack_ratio"] = round(cpu["ours"]["pack_cycles"] / base, 3)
        cpu["bad_tokens"] = check_tokens(cpu)
    result["cpu"] = cpu

    result["firmware_run"] = measure_firmware_run(ours_img, work, identity, at_rest)
    result["host_s"]["total"] = round(time.monotonic() - started, 1)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m kpnthings_tools.bench_rp2", description=__doc__)
    ap.add_argument("--json", default=str(OUT / "results.json"), help="where to write the JSON")
    args = ap.parse_args(argv)
    from .bench.trees import build_trees

    ours_dir, base_dir, _ = build_trees("armv6m")
    result = measure(ours_dir, base_dir)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1, sort_keys=True))
    print(table(result))
    print("\nJSON: %s" % args.json)
    return 0 if "unavailable" not in result else 2


if __name__ == "__main__":
    sys.exit(main())
